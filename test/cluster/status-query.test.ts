/**
 * The status query and the sender's `wait-for: ready` against a real API server, which pages its
 * lists at the `limit` asked for: a namespace of 600 Kustomizations is six pages of fluxhook's 100.
 * Flux's controllers are played by the test, which writes their status as they would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { webhookPath } from "../../shared";
import { ROOT, runToEnd } from "../support/process";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  gitRepository,
  installFlux,
  kustomization,
  namespace,
  readyPath,
  receiver,
  requestedAt,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
  type KubeObject,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

let plane: ControlPlane;
let server: FluxhookProcess;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
  server = await startFluxhookProcess(plane);
});
afterAll(async () => {
  await server?.stop();
  await deleteAllReceivers(plane);
});

const REVISION = `main@sha1:${"3b".repeat(20)}`;

/** Writes status as a Flux controller would (the status subresource, as the admin). */
function setStatus(kind: string, ns: string, name: string, status: Record<string, unknown>) {
  plane.kubectl([
    "patch",
    kind,
    "-n",
    ns,
    name,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status }),
  ]);
}

const ready = (status: "True" | "False", reason: string, message: string) => ({
  type: "Ready",
  status,
  reason,
  message,
  lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
});

/**
 * A namespace of `total` Kustomizations: `consumers` use GitRepository "app" (named to sort last, so
 * they are on the last page), the others use another source.
 */
function crowdedNamespace(ns: string, total: number, consumers: readonly string[]): KubeObject[] {
  const others = Array.from({ length: total - consumers.length }, (_, i) =>
    kustomization(ns, `other-${String(i).padStart(4, "0")}`, { kind: "GitRepository", name: "elsewhere" }),
  );
  return [...others, ...consumers.map((name) => kustomization(ns, name, { kind: "GitRepository", name: "app" }))];
}

describe("the status query on a real API server", () => {
  test("finds the consumers of a source on the sixth page of its namespace's Kustomizations", async () => {
    const ns = uniqueNamespace("pages");
    const token = crypto.randomUUID();
    const consumers = ["zz-uses-app-1", "zz-uses-app-2", "zz-uses-app-3"];
    apply(plane, namespace(ns), gitRepository(ns, "app"), tokenSecret(ns, "r-token", token));
    apply(plane, ...crowdedNamespace(ns, 600, consumers));
    apply(
      plane,
      receiver(
        ns,
        "r",
        { type: "generic", secretRef: { name: "r-token" }, resources: [{ kind: "GitRepository", name: "app" }] },
        token,
      ),
    );
    const path = await readyPath(plane, ns, "r");
    expect(path).toBe(webhookPath(token, "r", ns));
    const delivered = await fetch(`${server.urls.receiverAddr}${path}`, {
      method: "POST",
      body: "{}",
      headers: { "Content-Type": "application/json" },
    });
    const targets = ((await delivered.json()) as { targets: Record<string, string>[] }).targets;
    const query = {
      targets: targets.map(({ kind, namespace, name, requestedAt }) => ({ kind, namespace, name, requestedAt })),
    };
    const res = await fetch(`${server.urls.receiverAddr}${path}/status`, {
      method: "POST",
      body: JSON.stringify(query),
      headers: { "Content-Type": "application/json" },
    });
    const answer = (await res.json()) as { targets: { consumers?: { name: string }[]; consumersTruncated?: true }[] };
    expect(res.status).toBe(200);
    expect(answer.targets[0]!.consumers?.map((c) => c.name)).toEqual(consumers);
    expect(answer.targets[0]!.consumersTruncated).toBeUndefined();
  });

  test("wait-for: ready fails on a failing Kustomization on the last page, naming it", async () => {
    const ns = uniqueNamespace("waitfor");
    const token = crypto.randomUUID();
    const healthy = ["a-uses-app"];
    apply(plane, namespace(ns), gitRepository(ns, "app"), tokenSecret(ns, "r-token", token));
    apply(plane, ...crowdedNamespace(ns, 600, [...healthy, "zz-broken"]));
    apply(
      plane,
      receiver(
        ns,
        "r",
        { type: "generic", secretRef: { name: "r-token" }, resources: [{ kind: "GitRepository", name: "app" }] },
        token,
      ),
    );
    await readyPath(plane, ns, "r");

    // Flux's controllers, played here: once the delivery asked, the source fetches and the
    // Kustomizations apply, one of them failing.
    const controllers = (async () => {
      const asked = await waitFor(
        "the delivery's requestedAt",
        () => requestedAt(plane, "gitrepositories", ns, "app"),
        60_000,
      );
      setStatus("gitrepositories", ns, "app", {
        lastHandledReconcileAt: asked,
        artifact: {
          revision: REVISION,
          path: "x",
          url: "http://x/x.tar.gz",
          digest: `sha256:${"0".repeat(64)}`,
          lastUpdateTime: new Date().toISOString(),
        },
        conditions: [ready("True", "Succeeded", `stored artifact for revision '${REVISION}'`)],
      });
      for (const name of healthy)
        setStatus("kustomizations", ns, name, {
          lastAppliedRevision: REVISION,
          lastAttemptedRevision: REVISION,
          conditions: [ready("True", "ReconciliationSucceeded", `Applied revision: ${REVISION}`)],
        });
      setStatus("kustomizations", ns, "zz-broken", {
        lastAttemptedRevision: REVISION,
        conditions: [ready("False", "BuildFailed", "kustomize build failed: missing resource")],
      });
    })();
    const sent = await runToEnd(
      ["node", join(ROOT, "action/dist/cli.js")]
        .concat(["--address", server.urls.receiverAddr, "--receiver", `${ns}/r`, "--receiver-type", "generic"])
        .concat(["--event", "push", "--payload", "{}", "--wait-for", "ready", "--wait-timeout-seconds", "60"]),
      { cwd: ROOT, env: { PATH: process.env.PATH, FLUXHOOK_TOKEN: token } },
    );
    await controllers;
    expect({ exitCode: sent.exitCode, names: /zz-broken/.test(sent.stderr) }).toEqual({ exitCode: 1, names: true });
  });
});
