/**
 * Running for real: several replicas with one writer elected through a Lease (hand-over on
 * shutdown, takeover when the holder dies), Events on Receivers (aggregated), and a SIGTERM that
 * loses no accepted delivery.
 */
import { describe, expect, test } from "bun:test";
import { webhookPath } from "../../shared";
import type { LeaderElectionConfig } from "../../server/config";
import { createKubeClient } from "../../server/kube/client";
import { EVENT_AGGREGATIONS_KEPT, EventRecorder, eventName } from "../../server/observe/events";
import type { EventRecord } from "../../server/kube/port";
import { LEASE_NAME } from "../../server/kube/leader";
import { silentLogger } from "../../server/runtime/log";
import { startFluxhook, type Fluxhook } from "../../server/server";
import { startKubeApiServer, type KubeApiServer } from "../kube";
import { githubExample } from "../support/payloads";
import { receiverObjects, startStack, TEST_CONFIG, waitFor } from "../support/stack";
import { githubHeaders } from "../support/signer";
import { LOOPBACK_PORTS, spawnServer } from "../support/process";
import { GIT, RECEIVER } from "../support/kinds";

const push = githubExample("push");
const headers = (token: string) => githubHeaders(token, push);

function seed(api: KubeApiServer, ns: string, name: string, token: string) {
  const targets = [{ apiVersion: GIT, kind: "GitRepository", name }];
  for (const object of receiverObjects(ns, name, { type: "github", token, targets })) api.store.create(object);
}

const ready = (api: KubeApiServer, ns: string, name: string) =>
  waitFor(`${ns}/${name} Ready`, () =>
    (api.store.get(RECEIVER, "Receiver", ns, name) as any)?.status?.conditions?.some(
      (c: any) => c.type === "Ready" && c.status === "True",
    ),
  );

describe("leader election", () => {
  // Short enough for the takeover to be waited out, long enough that a stalled event loop on a
  // loaded machine does not make the leader miss its renewal.
  const election = (releaseOnCancel: boolean): LeaderElectionConfig => ({
    namespace: "flux-system",
    leaseDurationMs: 2500,
    renewDeadlineMs: 2000,
    retryPeriodMs: 100,
    releaseOnCancel,
  });
  const replica = (api: KubeApiServer, releaseOnCancel: boolean) =>
    startFluxhook({
      config: { ...TEST_CONFIG, leaderElection: election(releaseOnCancel) },
      log: silentLogger,
      kube: createKubeClient({
        kubeConfig: api.kubeConfig(),
        log: silentLogger,
        tuning: { watchBackoff: { baseMs: 10, capMs: 100 } },
      }),
      tuning: { secretReadBackoff: { baseMs: 10, capMs: 30_000 } },
    });

  test("one writer among replicas, hand-over on shutdown, takeover when the holder dies", async () => {
    await using api = await startKubeApiServer();
    const a = await replica(api, true);
    await waitFor("a to lead", () => a.isLeader());
    const b = await replica(api, false);
    const c = await replica(api, true);
    const replicas: Fluxhook[] = [a, b, c];
    try {
      await waitFor("b and c to sync", () => b.ready() && c.ready());
      expect(replicas.map((r) => r.isLeader())).toEqual([true, false, false]);

      // Every replica serves; only the leader wrote the status, once.
      seed(api, "apps", "one", "t1");
      await ready(api, "apps", "one");
      for (const r of replicas) {
        await waitFor(
          "the replica to index the receiver",
          async () =>
            (
              await fetch(r.receiverUrl + webhookPath("t1", "one", "apps"), {
                method: "POST",
                body: push,
                headers: headers("t1"),
              })
            ).status === 200,
        );
      }
      expect(
        api.count({
          method: "PATCH",
          path: "/apis/notification.toolkit.fluxcd.io/v1/namespaces/apps/receivers/one/status",
        }),
      ).toBe(1);
      // Flux's finalizer too: added once, by the leader.
      await waitFor("the finalizer", () =>
        (api.store.get(RECEIVER, "Receiver", "apps", "one") as any)?.metadata.finalizers?.includes(
          "finalizers.fluxcd.io",
        ),
      );
      expect(
        api.count({ method: "PATCH", path: "/apis/notification.toolkit.fluxcd.io/v1/namespaces/apps/receivers/one" }),
      ).toBe(1);
      // And its reconcile Event: one Succeeded, written once, by the leader.
      const succeeded = await waitFor("the Succeeded Event", () => {
        const found = (api.store.list("v1", "Event", "apps") as any[]).filter(
          (e) => e.reason === "Succeeded" && e.involvedObject.name === "one",
        );
        return found.length > 0 ? found : undefined;
      });
      expect(succeeded.map((e) => [e.type, e.count])).toEqual([["Normal", 1]]);

      // Hand-over: a releases the Lease on shutdown and another replica takes it at its next try.
      await a.stop();
      const next = await waitFor("a new leader", () => [b, c].find((r) => r.isLeader()));
      seed(api, "apps", "two", "t2");
      await ready(api, "apps", "two");

      // Takeover: the holder dies without releasing (b does not release); the other waits out the lease.
      const other = next === b ? c : b;
      if (next === c) {
        // Make b the holder first, by stopping c with release.
        await c.stop();
        await waitFor("b to lead", () => b.isLeader());
        const d = await replica(api, true);
        replicas.push(d);
        await b.stop();
        await waitFor("d to take over after the lease expired", () => d.isLeader(), 15_000);
      } else {
        await b.stop();
        await waitFor("c to take over after the lease expired", () => other.isLeader(), 15_000);
      }
      const lease = api.store.get("coordination.k8s.io/v1", "Lease", "flux-system", LEASE_NAME) as any;
      expect(lease.spec.leaseTransitions).toBeGreaterThanOrEqual(2);
    } finally {
      for (const r of replicas) await r.stop();
    }
  });
});

describe("Kubernetes Events", () => {
  /** An API server and fluxhook with apps/webapp Ready (token "good"); `url` is its webhook. */
  async function withWebapp(body: (api: KubeApiServer, url: string) => Promise<void>) {
    await using api = await startKubeApiServer();
    const server = await startFluxhook({
      config: TEST_CONFIG,
      log: silentLogger,
      kube: createKubeClient({ kubeConfig: api.kubeConfig(), log: silentLogger }),
    });
    try {
      seed(api, "apps", "webapp", "good");
      await ready(api, "apps", "webapp");
      await body(api, server.receiverUrl + webhookPath("good", "webapp", "apps"));
    } finally {
      await server.stop();
    }
  }

  test("a rejected delivery is a Warning Event on its Receiver, and a reconcile request a Normal one", async () => {
    await withWebapp(async (api, url) => {
      expect(
        (await fetch(url, { method: "POST", body: push, headers: { ...headers("good"), "X-GitHub-Event": "push" } }))
          .status,
      ).toBe(200);
      expect((await fetch(url, { method: "POST", body: push, headers: headers("forged") })).status).toBe(400);
      const events = await waitFor("two Events", () => {
        // Delivery Events; the Receiver's own (Succeeded on Ready) are tested in flux-parity.test.ts.
        const list = (api.store.list("v1", "Event", "apps") as any[]).filter((e) => e.reason !== "Succeeded");
        return list.length === 2 ? list : undefined;
      });
      const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
      expect(byReason.ReconcileRequested).toMatchObject({
        type: "Normal",
        count: 1,
        involvedObject: { kind: "Receiver", name: "webapp", namespace: "apps" },
        message: "push delivery: 1 of 1 target annotated: GitRepository/apps/webapp annotated",
      });
      expect(byReason.DeliveryRejected).toMatchObject({
        type: "Warning",
        count: 1,
        message: "push delivery: signature mismatch (X-Hub-Signature-256)",
      });
      expect(byReason.DeliveryRejected.involvedObject.uid).toBe(
        (api.store.get(RECEIVER, "Receiver", "apps", "webapp") as any).metadata.uid,
      );
    });
  });

  test("a redelivery of a handled delivery is a DuplicateDelivery Event, not a reconcile request", async () => {
    await withWebapp(async (api, url) => {
      const delivery = { ...headers("good"), "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958" };
      for (let i = 0; i < 2; i++)
        expect((await fetch(url, { method: "POST", body: push, headers: delivery })).status).toBe(200);
      const events = await waitFor("two Events", () => {
        // Delivery Events; the Receiver's own (Succeeded on Ready) are tested in flux-parity.test.ts.
        const list = (api.store.list("v1", "Event", "apps") as any[]).filter((e) => e.reason !== "Succeeded");
        return list.length === 2 ? list : undefined;
      });
      const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
      expect(byReason.ReconcileRequested).toMatchObject({ type: "Normal", count: 1 });
      expect(byReason.DuplicateDelivery).toMatchObject({
        type: "Normal",
        count: 1,
        message:
          'push delivery: duplicate delivery "72d3162e-cc78-11e3-81ab-4c9367dc0958": already handled, nothing annotated',
      });
    });
  });

  test("a flood is aggregated into one Event per window", async () => {
    await using api = await startKubeApiServer();
    const kube = createKubeClient({ kubeConfig: api.kubeConfig(), log: silentLogger });
    const recorder = new EventRecorder({
      kube,
      log: silentLogger,
      uidOf: () => "uid-1",
      windowMs: 200,
    });
    const outcome = {
      kind: "rejected" as const,
      status: 400,
      reason: "signature mismatch (X-Hub-Signature-256)",
      receiver: { namespace: "apps", name: "webapp" },
      receiverType: "github",
      event: "push",
    };
    for (let i = 0; i < 50; i++) recorder.observe(outcome);
    const event = await waitFor("the aggregated count", () => {
      const [e] = api.store.list("v1", "Event", "apps") as any[];
      return e?.count === 50 ? e : undefined;
    });
    expect(event.reason).toBe("DeliveryRejected");
    expect(api.count({ method: "POST" }) + api.count({ method: "PATCH" })).toBe(2);
    recorder.stop();
  });

  test("an update waits for the create it updates, however slow the create", async () => {
    const writes: string[] = [];
    let releaseCreate = () => {};
    const kube = {
      createEvent: async (e: EventRecord) => {
        writes.push(`create ${e.count}`);
        await new Promise<void>((resolve) => (releaseCreate = resolve));
        return { ok: true as const, value: undefined };
      },
      updateEvent: async (e: EventRecord) => {
        writes.push(`update ${e.count}`);
        return { ok: true as const, value: undefined };
      },
    };
    let now = 10_000;
    const recorder = new EventRecorder({
      kube,
      log: silentLogger,
      uidOf: () => "uid-1",
      windowMs: 1000,
      now: () => now,
    });
    const outcome = {
      kind: "rejected" as const,
      status: 400,
      reason: "signature mismatch (X-Hub-Signature-256)",
      receiver: { namespace: "apps", name: "webapp" },
      receiverType: "github",
      event: "push",
    };
    recorder.observe(outcome);
    now = 12_000; // past the window, with the create still in flight
    recorder.observe(outcome);
    recorder.observe(outcome);
    expect(writes).toEqual(["create 1"]);
    releaseCreate();
    await waitFor("the update", () => writes.length === 2);
    expect(writes).toEqual(["create 1", "update 3"]);
    recorder.stop();
  });
});

describe("Events from every replica", () => {
  const election: LeaderElectionConfig = {
    namespace: "flux-system",
    leaseDurationMs: 2500,
    renewDeadlineMs: 2000,
    retryPeriodMs: 100,
    releaseOnCancel: true,
  };
  const replica = (api: KubeApiServer, instance: string) =>
    startFluxhook({
      config: { ...TEST_CONFIG, leaderElection: election },
      log: silentLogger,
      kube: createKubeClient({ kubeConfig: api.kubeConfig(), log: silentLogger }),
      instance,
    });
  const eventsOf = (api: KubeApiServer, name: string) =>
    (api.store.list("v1", "Event", "apps") as any[]).filter((e) => e.involvedObject.name === name);

  test("a delivery refused or handled by either replica is an Event of that replica; Ready transitions are the leader's", async () => {
    await using api = await startKubeApiServer();
    const a = await replica(api, "fluxhook-a");
    await waitFor("a to lead", () => a.isLeader());
    const b = await replica(api, "fluxhook-b");
    try {
      await waitFor("b to sync", () => b.ready());
      seed(api, "apps", "webapp", "good");
      await ready(api, "apps", "webapp");
      for (const r of [a, b]) {
        const url = r.receiverUrl + webhookPath("good", "webapp", "apps");
        await waitFor(
          "the replica to serve the receiver",
          async () => (await fetch(url, { method: "POST", body: push, headers: headers("good") })).status === 200,
        );
        expect((await fetch(url, { method: "POST", body: push, headers: headers("forged") })).status).toBe(400);
      }
      const seen = await waitFor("each replica's Events", () => {
        const list = eventsOf(api, "webapp").filter((e) => e.reason !== "Succeeded");
        return list.length === 4 ? list : undefined;
      });
      expect(seen.map((e) => [e.reason, e.reportingInstance, e.count]).sort()).toEqual([
        ["DeliveryRejected", "fluxhook-a", 1],
        ["DeliveryRejected", "fluxhook-b", 1],
        ["ReconcileRequested", "fluxhook-a", 1],
        ["ReconcileRequested", "fluxhook-b", 1],
      ]);
      // The Receiver's own Event (Ready) is written once, by the leader, which wrote the status.
      expect(
        eventsOf(api, "webapp")
          .filter((e) => e.reason === "Succeeded")
          .map((e) => e.reportingInstance),
      ).toEqual(["fluxhook-a"]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test("two replicas' floods on one Receiver: an Event each, counted apart, one write per window each", async () => {
    await using api = await startKubeApiServer();
    const outcome = {
      kind: "rejected" as const,
      status: 400,
      reason: "signature mismatch (X-Hub-Signature-256)",
      receiver: { namespace: "apps", name: "webapp" },
      receiverType: "github",
      event: "push",
    };
    const recorders = ["fluxhook-a", "fluxhook-b"].map(
      (instance) =>
        new EventRecorder({
          kube: createKubeClient({ kubeConfig: api.kubeConfig(), log: silentLogger }),
          log: silentLogger,
          uidOf: () => "uid-1",
          instance,
          windowMs: 200,
        }),
    );
    for (let i = 0; i < 50; i++) recorders[0]!.observe(outcome);
    for (let i = 0; i < 30; i++) recorders[1]!.observe(outcome);
    const events = await waitFor("both aggregated counts", () => {
      const list = eventsOf(api, "webapp");
      return list.length === 2 && list.every((e) => e.count > 1) ? list : undefined;
    });
    expect(events.map((e) => [e.reportingInstance, e.count]).sort()).toEqual([
      ["fluxhook-a", 50],
      ["fluxhook-b", 30],
    ]);
    expect(new Set(events.map((e) => e.metadata.name)).size).toBe(2);
    // A create and one update per replica: the bound per window holds per replica.
    expect(api.count({ method: "POST" }) + api.count({ method: "PATCH" })).toBe(4);
    for (const r of recorders) r.stop();
  });
});

describe("Event aggregation is bounded and follows the Receiver's incarnation", () => {
  const rejected = (name: string) => ({
    kind: "rejected" as const,
    status: 400,
    reason: "signature mismatch (X-Hub-Signature-256)",
    receiver: { namespace: "apps", name },
    receiverType: "github",
    event: "push",
  });
  /** A recorder whose clock stands still, over a kube that keeps what it was asked to write. */
  const recorder = (uidOf: (key: { name: string }) => string) => {
    const writes: { op: string; name: string; uid: string; count: number }[] = [];
    const kube = {
      createEvent: async (e: EventRecord) => {
        writes.push({ op: "create", name: e.involvedObject.name, uid: e.involvedObject.uid, count: e.count });
        return { ok: true as const, value: undefined };
      },
      updateEvent: async (e: EventRecord) => {
        writes.push({ op: "update", name: e.involvedObject.name, uid: e.involvedObject.uid, count: e.count });
        return { ok: true as const, value: undefined };
      },
    };
    const r = new EventRecorder({
      kube,
      log: silentLogger,
      uidOf,
      windowMs: 60_000,
      now: () => 1_000_000,
    });
    return { r, writes };
  };

  test(`past ${EVENT_AGGREGATIONS_KEPT} Receivers and reasons, the least recently counted is forgotten`, async () => {
    const { r, writes } = recorder(() => "uid");
    for (let i = 0; i <= EVENT_AGGREGATIONS_KEPT; i++) r.observe(rejected(`r${i}`));
    await waitFor("a create for each", () => writes.length === EVENT_AGGREGATIONS_KEPT + 1);
    // r0 was forgotten to make room for the last one: its next delivery starts a new Event at once,
    // while the last one is still aggregated (its next delivery waits for the end of the window).
    r.observe(rejected(`r${EVENT_AGGREGATIONS_KEPT}`));
    r.observe(rejected("r0"));
    await waitFor("the new Event of r0", () => writes.length > EVENT_AGGREGATIONS_KEPT + 1);
    expect(writes.length).toBe(EVENT_AGGREGATIONS_KEPT + 2);
    expect(writes.at(-1)).toEqual({ op: "create", name: "r0", uid: "uid", count: 1 });
    r.stop();
  });

  test("a Receiver deleted and made again under the same name gets an Event of its own", async () => {
    let uid = "uid-1";
    const { r, writes } = recorder(() => uid);
    r.observe(rejected("webapp"));
    await waitFor("the first Event", () => writes.length === 1);
    uid = "uid-2";
    r.observe(rejected("webapp"));
    await waitFor("the second Event", () => writes.length === 2);
    expect(writes).toEqual([
      { op: "create", name: "webapp", uid: "uid-1", count: 1 },
      { op: "create", name: "webapp", uid: "uid-2", count: 1 },
    ]);
    r.stop();
  });

  test("forgetReceiver drops a deleted Receiver's aggregations", async () => {
    const { r, writes } = recorder(() => "uid");
    r.observe(rejected("webapp"));
    r.observe(rejected("other"));
    await waitFor("two Events", () => writes.length === 2);
    r.forgetReceiver({ namespace: "apps", name: "webapp" });
    r.observe(rejected("webapp"));
    r.observe(rejected("other"));
    await waitFor("a new Event of the forgotten one", () => writes.length === 3);
    expect(writes.at(-1)).toEqual({ op: "create", name: "webapp", uid: "uid", count: 1 });
    r.stop();
  });
});

describe("SIGTERM", () => {
  test("under load, every delivery the server accepted is answered", async () => {
    await using api = await startKubeApiServer();
    seed(api, "apps", "webapp", "tok");
    const server = spawnServer([...LOOPBACK_PORTS, "--receiver-rate-limit=0"], {
      env: { KUBECONFIG: api.writeKubeconfig() },
    });
    const { proc, lines, stderrDone } = server;
    const started = await server.started();
    const url = started.receiverAddr + webhookPath("tok", "webapp", "apps");
    await waitFor(
      "the receiver",
      async () => (await fetch(url, { method: "POST", body: push, headers: headers("tok") })).status === 200,
    );

    // 16 clients post continuously (bounded: 3000 requests); SIGTERM lands in the middle.
    const answered: number[] = [];
    let failedToConnect = 0;
    let sent = 0;
    const clients = Array.from({ length: 16 }, async () => {
      while (sent < 3000) {
        sent++;
        try {
          const res = await fetch(url, { method: "POST", body: push, headers: headers("tok") });
          answered.push(res.status);
          await res.arrayBuffer();
        } catch {
          failedToConnect++;
          if (proc.exitCode !== null || failedToConnect > 50) return;
        }
      }
    });
    await waitFor("load to build up", () => answered.length >= 200);
    proc.kill("SIGTERM");
    await Promise.all(clients);
    expect(await proc.exited).toBe(0);
    await stderrDone;
    const handled = lines.filter((l) => l.msg === "delivery handled").length;
    // Every answer the clients got was a 200, and every delivery the server handled reached its
    // client: nothing accepted was dropped by the shutdown (the +1 is the warm-up delivery).
    expect(new Set(answered)).toEqual(new Set([200]));
    expect(handled).toBe(answered.length + 1);
  }, 30_000);

  test("readyz turns 503 at once, the listener closes, in-flight deliveries finish, exit 0", async () => {
    await using api = await startKubeApiServer();
    seed(api, "apps", "webapp", "tok");
    const server = spawnServer(LOOPBACK_PORTS, { env: { KUBECONFIG: api.writeKubeconfig() } });
    const { proc, lines } = server;
    const started = await server.started();
    await waitFor("ready", async () => (await fetch(`${started.healthAddr}/readyz`)).status === 200);
    const url = started.receiverAddr + webhookPath("tok", "webapp", "apps");
    await waitFor(
      "the receiver",
      async () => (await fetch(url, { method: "POST", body: push, headers: headers("tok") })).status === 200,
    );

    // Hold every annotation in the API server, so deliveries are in flight when SIGTERM comes.
    const fault = api.faults.add({ method: "PATCH", path: /gitrepositories/, times: Infinity, respond: "hang" });
    const before = api.count({ method: "PATCH", path: /gitrepositories/ });
    const inflight = Array.from({ length: 8 }, () =>
      fetch(url, { method: "POST", body: push, headers: headers("tok") }),
    );
    // Concurrent deliveries to one target share a PATCH (coalescing): one held write holds them
    // all. The server's own in-flight gauge says when all 8 are inside.
    await waitFor("a held PATCH", () => api.count({ method: "PATCH", path: /gitrepositories/ }) - before >= 1);
    await waitFor("8 deliveries in flight", async () =>
      (await (await fetch(`${started.metricsAddr}/metrics`)).text()).includes(
        'gotk_receiver_http_requests_inflight{service="",handler="/hook/"} 8',
      ),
    );

    proc.kill("SIGTERM");
    await waitFor("readyz 503", async () => (await fetch(`${started.healthAddr}/readyz`)).status === 503);
    await waitFor("new connections refused", () =>
      fetch(url, { method: "POST", body: push, headers: headers("tok") }).then(
        () => false,
        () => true,
      ),
    );

    fault.remove();
    api.faults.clear();
    // A held PATCH is dropped when released; the server's own retry or the delivery's 500 must
    // come back as an answer: no accepted delivery goes unanswered.
    const answers = await Promise.all(
      inflight.map((p) =>
        p.then(
          (r) => r.status,
          (e) => `error: ${e}`,
        ),
      ),
    );
    for (const a of answers) expect(typeof a).toBe("number");
    expect(await proc.exited).toBe(0);
    await server.stderrDone;
    expect(lines.map((l) => l.msg)).toContain("draining: not ready, finishing in-flight deliveries");
  }, 30_000);
});

describe("Event names", () => {
  test("a Receiver named with 235 characters (a valid name) still gets its delivery Events", async () => {
    await using stack = await startStack();
    const name = "r".repeat(235);
    const path = await stack.readyReceiver("ns", name, {
      type: "generic",
      token: "long-name-token",
      secretName: "s",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    expect((await stack.post(path, { body: "{}", headers: { "Content-Type": "application/json" } })).status).toBe(200);
    const events = await waitFor("the delivery's Event", () => {
      const found = stack.api.store
        .list("v1", "Event", "ns")
        .filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === name);
      return found.some((e) => (e as { reason?: string }).reason === "ReconcileRequested") && found;
    });
    for (const e of events) expect(e.metadata.name!.length).toBeLessThanOrEqual(253);
  });

  test.each([
    ["short names are kept whole", "app", ".18c2f", "app.18c2f"],
    [
      "a cut never ends a label with - or .",
      `${"a".repeat(240)}-.b${"c".repeat(20)}`,
      `.${"f".repeat(12)}`,
      `${"a".repeat(240)}.${"f".repeat(12)}`,
    ],
  ])("%s", (_name, receiver, tail, want) => {
    expect(eventName(receiver, tail)).toBe(want);
  });
});
