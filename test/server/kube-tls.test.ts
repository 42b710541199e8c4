/**
 * Real clusters speak TLS with a private CA. Under Bun, client-node's undici dispatcher (which
 * carries that CA) is ignored; this checks that fluxhook's Bun transport verifies the API server
 * against the kubeconfig's CA, refuses it without, and sends the user's credentials.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { KubeConfig } from "@kubernetes/client-node";
import { createKubeClient } from "../../server/kube/client";
import { silentLogger } from "../../server/runtime/log";
import { makeTestPki } from "../support/tls";
import { GIT } from "../support/kinds";

const pki = makeTestPki();
const seen: { method: string; path: string; auth: string | null; contentType: string | null }[] = [];
const api = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  tls: { cert: pki.cert, key: pki.key },
  fetch(req) {
    const path = new URL(req.url).pathname;
    seen.push({
      method: req.method,
      path,
      auth: req.headers.get("authorization"),
      contentType: req.headers.get("content-type"),
    });
    if (path === "/apis/source.toolkit.fluxcd.io/v1") {
      return Response.json({
        kind: "APIResourceList",
        groupVersion: GIT,
        resources: [
          {
            name: "gitrepositories",
            singularName: "gitrepository",
            namespaced: true,
            kind: "GitRepository",
            verbs: ["get", "list", "patch"],
          },
        ],
      });
    }
    return Response.json({
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: "app", namespace: "flux-system" },
    });
  },
});
afterAll(() => api.stop(true));

function client(caData: string | undefined) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `https://127.0.0.1:${api.port}`, caData, skipTLSVerify: false }],
    users: [{ name: "u", token: "test-bearer" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return createKubeClient({ kubeConfig: kc, log: silentLogger });
}
const ref = { apiVersion: GIT, kind: "GitRepository", namespace: "flux-system", name: "app" };

describe("kube client over TLS", () => {
  test("verifies the server with the kubeconfig's CA and sends the bearer token", async () => {
    seen.length = 0;
    const result = await client(Buffer.from(pki.ca).toString("base64")).annotateObject(ref, {
      "reconcile.fluxcd.io/requestedAt": "x",
    });
    expect(result).toEqual({ ok: true, value: undefined });
    expect(seen.at(-1)).toEqual({
      method: "PATCH",
      path: "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/app",
      auth: "Bearer test-bearer",
      contentType: "application/merge-patch+json",
    });
  });

  test("refuses a server its CA did not sign", async () => {
    seen.length = 0;
    const result = await client(undefined).annotateObject(ref, { "reconcile.fluxcd.io/requestedAt": "x" });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain("certificate");
    expect(seen).toEqual([]);
  });
});
