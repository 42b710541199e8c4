/**
 * fluxhook's watches on a real API server that goes away: kube-apiserver restarted while etcd's
 * history is compacted, so the versions fluxhook watched from are gone (410 Gone): it re-lists,
 * sees what changed meanwhile, and keeps serving the Receivers it knew throughout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  get,
  gitRepository,
  githubDelivery,
  installFlux,
  namespace,
  readyPath,
  receiver,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

const RECEIVERS = "receivers.notification.toolkit.fluxcd.io";
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

function aReceiver(ns: string, name: string, token: string) {
  return [
    tokenSecret(ns, `${name}-token`, token),
    receiver(
      ns,
      name,
      {
        type: "github",
        events: ["ping"],
        secretRef: { name: `${name}-token` },
        resources: [{ kind: "GitRepository", name: "app" }],
      },
      token,
    ),
  ];
}

async function ping(path: string, token: string) {
  const res = await fetch(`${server.urls.receiverAddr}${path}`, {
    method: "POST",
    ...githubDelivery(token, "ping", JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 })),
  });
  return res.status;
}

describe("watches across a kube-apiserver restart and an etcd compaction", () => {
  test("410 Gone: fluxhook re-lists, sees the changes it missed, and served throughout", async () => {
    const ns = uniqueNamespace("watch");
    const [kept, gone, added] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      ...aReceiver(ns, "kept", kept),
      ...aReceiver(ns, "gone", gone),
    );
    const keptPath = await readyPath(plane, ns, "kept");
    await readyPath(plane, ns, "gone");

    // fluxhook paused: what changes now reaches it only through its next list.
    server.proc.kill("SIGSTOP");
    try {
      apply(plane, ...aReceiver(ns, "added", added));
      plane.kubectl(["delete", RECEIVERS, "-n", ns, "gone", "--wait=false"]);
      // Writes fluxhook does not watch move etcd's revision past everything it saw.
      for (let i = 0; i < 5; i++)
        apply(plane, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `bump-${i}`, namespace: ns } });
      await plane.restartApiServer({ whileStopped: async () => void (await plane.compactEtcd()) });
    } finally {
      server.proc.kill("SIGCONT");
    }

    await waitFor(
      "a re-list after 410",
      () => server.lines.some((l) => /watch history expired, re-listing/.test(l.msg)),
      60_000,
    );
    await readyPath(plane, ns, "added", 60_000);
    await waitFor(
      "the deleted Receiver gone (Flux's finalizer removed)",
      () => get(plane, RECEIVERS, ns, "gone") === undefined,
      60_000,
    );
    expect(await ping(keptPath, kept)).toBe(200);
    const health = await fetch(`${server.urls.healthAddr}/readyz`);
    expect(health.status).toBe(200);
  });

  test("a crash (connections reset while fluxhook is paused): it re-lists and catches up", async () => {
    const ns = uniqueNamespace("crash");
    const [kept, added] = [crypto.randomUUID(), crypto.randomUUID()];
    apply(plane, namespace(ns), gitRepository(ns, "app"), ...aReceiver(ns, "kept", kept));
    const keptPath = await readyPath(plane, ns, "kept");
    server.proc.kill("SIGSTOP");
    try {
      await plane.restartApiServer({ kill: true });
      apply(plane, ...aReceiver(ns, "added", added));
    } finally {
      server.proc.kill("SIGCONT");
    }
    await readyPath(plane, ns, "added", 60_000);
    expect(await ping(keptPath, kept)).toBe(200);
  });
});
