/**
 * Start-up against a cluster that already holds many Receivers, each with its own Secret, through
 * the real client and the test API server: a namespace whose Secrets are mostly referenced is read
 * in pages (one LIST per page) instead of one GET per Secret; a namespace with a few is read
 * Secret by Secret; a change after start-up is read as before.
 */
import { describe, expect, test } from "bun:test";
import type { KubeObject } from "../kube";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import { SECRET_LIST_MIN_READS } from "../../server/limits";
import { webhookPath } from "../../shared";
import { startStack, waitFor } from "../support/stack";
import { GIT } from "../support/kinds";

const PAGE = 4;
const MANY = SECRET_LIST_MIN_READS + 2;

const secret = (namespace: string, name: string, token: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  data: { token: Buffer.from(token).toString("base64") },
});
const receiver = (namespace: string, name: string, secretName: string): KubeObject => ({
  apiVersion: RECEIVER_API_VERSION,
  kind: "Receiver",
  metadata: { name, namespace },
  spec: { type: "generic", secretRef: { name: secretName }, resources: [{ kind: "GitRepository", name: "app" }] },
});

/** `many`: MANY Receivers with a Secret each, and a Secret none references; `few`: two Receivers. */
function cluster(): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const ns of ["many", "few"]) {
    objects.push({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: ns }, spec: {} });
    for (let i = 0; i < (ns === "many" ? MANY : 2); i++) {
      objects.push(secret(ns, `token-${i}`, `${ns}-${i}`), receiver(ns, `r-${i}`, `token-${i}`));
    }
  }
  objects.push(secret("many", "unrelated", "not-a-receiver-token"));
  return objects;
}

describe("Secrets at start-up", () => {
  test("a namespace of Receivers' Secrets is read in pages, a namespace with few Secret by Secret", async () => {
    await using stack = await startStack({}, { listPageSize: PAGE }, cluster());
    for (const [ns, n] of [
      ["many", MANY],
      ["few", 2],
    ] as const)
      for (let i = 0; i < n; i++)
        expect(await stack.readyPath(ns, `r-${i}`)).toBe(webhookPath(`${ns}-${i}`, `r-${i}`, ns));

    const gets = stack.api.requests.filter((r) => r.method === "GET" && /\/secrets\/[^/]+$/.test(r.path));
    expect(gets.map((r) => r.path).sort()).toEqual([
      "/api/v1/namespaces/few/secrets/token-0",
      "/api/v1/namespaces/few/secrets/token-1",
    ]);
    // The Secrets of `many` whole (not the metadata watch's list), in pages of PAGE.
    const pages = stack.api.requests.filter(
      (r) =>
        r.method === "GET" &&
        !r.watch &&
        r.path === "/api/v1/namespaces/many/secrets" &&
        !r.accept?.includes("PartialObjectMetadata"),
    );
    expect(pages.length).toBe(Math.ceil((MANY + 1) / PAGE));
    expect(pages.every((r) => r.query.limit === String(PAGE) && r.status === 200)).toBe(true);

    // A rotation after start-up is read by itself, as ever.
    stack.api.resetRequests();
    stack.api.store.patch("v1", "Secret", "many", "token-3", {
      data: { token: Buffer.from("rotated").toString("base64") },
    });
    const rotated = webhookPath("rotated", "r-3", "many");
    await waitFor("the rotated token to be served", async () => (await stack.post(rotated)).status === 200);
    expect(stack.api.requests.filter((r) => r.method === "GET" && /\/secrets/.test(r.path) && !r.watch).length).toBe(1);
  });
});
