/**
 * fluxhook reaches a real cluster as users run it: a kubeconfig that carries a CA and client
 * certificates (as kind, EKS and kubeadm write them), the compiled binary, deploy/standalone's RBAC.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { githubExample } from "../support/payloads";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  gitRepository,
  githubDelivery,
  installFlux,
  namespace,
  readyPath,
  receiver,
  requestedAt,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
});
afterAll(() => deleteAllReceivers(plane));

describe("reaching a real cluster", () => {
  test("files mode annotates through a kubeconfig that carries a CA, without a dry run", async () => {
    const ns = uniqueNamespace("files");
    apply(plane, namespace(ns), gitRepository(ns, "webapp"));
    const token = `files-${crypto.randomUUID()}`;
    const file = join(tmpdir(), `receivers-${ns}.yaml`);
    writeFileSync(
      file,
      [
        tokenSecret(ns, "webhook-token", token),
        receiver(
          ns,
          "github",
          {
            type: "github",
            events: ["push"],
            secretRef: { name: "webhook-token" },
            resources: [{ kind: "GitRepository", name: "webapp" }],
          },
          token,
        ),
      ]
        .map((o) => stringify(o))
        .join("---\n"),
    );
    await using server = await startFluxhookProcess(plane, {
      args: [`--receivers-file=${file}`],
      deploymentArgs: false,
    });
    const { webhookPath } = await import("../../shared");
    const delivery = githubDelivery(token, "push", githubExample("push"));
    const res = await fetch(`${server.urls.receiverAddr}${webhookPath(token, "github", ns)}`, {
      method: "POST",
      ...delivery,
    });
    const body = await res.json();
    expect({ status: res.status, reason: body.reason }).toEqual({ status: 200, reason: "1 of 1 target annotated" });
    expect(requestedAt(plane, "gitrepositories", ns, "webapp")).toBeString();
    expect(server.lines.filter((l) => /dry|does not answer/.test(l.msg))).toEqual([]);
  });

  test("cluster mode with deploy/standalone's RBAC: Ready on the real CRD, a push annotates a real GitRepository", async () => {
    const ns = uniqueNamespace("cluster");
    const token = `cluster-${crypto.randomUUID()}`;
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "webapp"),
      tokenSecret(ns, "webhook-token", token),
      receiver(
        ns,
        "github",
        {
          type: "github",
          events: ["push"],
          secretRef: { name: "webhook-token" },
          resources: [{ kind: "GitRepository", name: "webapp" }],
        },
        token,
      ),
    );
    await using server = await startFluxhookProcess(plane);
    const path = await readyPath(plane, ns, "github");
    const delivery = githubDelivery(token, "push", githubExample("push"));
    const res = await fetch(`${server.urls.receiverAddr}${path}`, { method: "POST", ...delivery });
    expect(res.status).toBe(200);
    await waitFor("requestedAt on the GitRepository", () => requestedAt(plane, "gitrepositories", ns, "webapp"));
    expect(server.errors()).toEqual([]);
  });
});
