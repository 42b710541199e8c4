/**
 * The reconciler's shape (server/receivers/reconciler.ts): watch events only queue keys, one
 * reconcile per key at a time decides once and then writes the finalizer before the status; a
 * Secret change queues its Receivers once; a failed write waits for its backoff; a decision that
 * went stale while it waited for a write slot is not written. Writes are held and landed by hand.
 */
import { describe, expect, test } from "bun:test";
import {
  RECEIVER_API_VERSION,
  RECEIVER_FINALIZER,
  type ObjectKey,
  type ReceiverStatus,
} from "../../server/api/receiver";
import { createKubeClient } from "../../server/kube/client";
import { replaceAll, type KubeResult } from "../../server/kube/port";
import { RECONCILE_WRITE_CONCURRENCY } from "../../server/receivers/reconciler";
import { createLogger, silentLogger } from "../../server/runtime/log";
import { startFluxhook } from "../../server/server";
import { webhookPath } from "../../shared";
import { startKubeApiServer, type KubeApiServer, type KubeObject } from "../kube";
import { reconcilerRig } from "../support/reconciler";
import { startStack, TEST_CONFIG, waitFor, type Stack } from "../support/stack";
import { GIT } from "../support/kinds";

const spec = (secret: string) => ({
  type: "generic",
  secretRef: { name: secret },
  resources: [{ kind: "GitRepository", name: "app" }],
});
/** A Receiver as the watch lists it, Flux's finalizer already on (so only status is written). */
const receiver = (name: string, secret = "s") => ({
  metadata: { name, namespace: "ns", generation: 1, uid: name, resourceVersion: "1", finalizers: [RECEIVER_FINALIZER] },
  spec: spec(secret),
});
const secret = (name: string, token: string, resourceVersion = "1") => ({
  metadata: { name, namespace: "ns", resourceVersion },
  data: { token: Buffer.from(token).toString("base64") },
});
const settle = async (turns = 5) => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A reconciler whose status writes wait until the test lands them (or answers them otherwise). */
function heldRig(backoffMs = 1) {
  let version = 100;
  const writes: {
    name: string;
    reason: string | undefined;
    path: string | undefined;
    answer: (result: KubeResult<string>) => void;
  }[] = [];
  const land = (i: number) => writes[i]!.answer({ ok: true, value: String(++version) });
  let lookups = 0;
  let failures = 0;
  const reconciled: string[] = [];
  const rig = reconcilerRig({
    writer: {
      kube: {
        patchReceiverFinalizers: async (): Promise<KubeResult<string>> => {
          throw new Error("the Receivers of this test carry Flux's finalizer already");
        },
        patchReceiverStatus: (key: ObjectKey, status: ReceiverStatus) =>
          new Promise<KubeResult<string>>((answer) =>
            writes.push({
              name: key.name,
              reason: status.conditions?.find((c) => c.type === "Ready")?.reason,
              path: status.webhookPath,
              answer,
            }),
          ),
      },
      canWrite: () => true,
      backoff: { baseMs: backoffMs, capMs: backoffMs },
    },
    observe: {
      reconciled: (key) => reconciled.push(key.name),
      statusWriteFailed: () => failures++,
    },
  });
  // Every decision reads the Receiver's Secret exactly once.
  const lookup = rig.secrets.lookup.bind(rig.secrets);
  rig.secrets.lookup = (s) => {
    lookups++;
    return lookup(s);
  };
  return {
    ...rig,
    writes,
    land,
    lookups: () => lookups,
    failures: () => failures,
    reconciled,
  };
}

describe("one decision per reconcile", () => {
  test("a status write is not decided again when it is sent, nor when it lands", async () => {
    const r = heldRig();
    replaceAll(r.secrets.sink, [secret("s", "t")]);
    replaceAll(r.receivers.sink, [receiver("a")]);
    await waitFor("the write", () => r.writes.length === 1);
    expect(r.lookups()).toBe(1);
    r.land(0);
    await waitFor("the reconcile to end", () => r.reconciled.length === 1);
    expect({ lookups: r.lookups(), writes: r.writes.length }).toEqual({ lookups: 1, writes: 1 });
  });

  test("a Secret change queues each of its Receivers once; changes during their writes are indexed at once and make one re-run each, on the newest", async () => {
    const r = heldRig();
    replaceAll(r.secrets.sink, [secret("s", "t1"), secret("other", "o")]);
    replaceAll(r.receivers.sink, [receiver("a"), receiver("b"), receiver("c", "other")]);
    await waitFor("three writes", () => r.writes.length === 3);
    for (let i = 0; i < 3; i++) r.land(i);
    await waitFor("three reconciles", () => r.reconciled.length === 3);
    const before = r.lookups();

    r.secrets.sink.upsert(secret("s", "t2", "2"));
    await waitFor("a and b written again", () => r.writes.length === 5);
    expect(r.lookups() - before).toBe(2); // a and b, once each; c's Secret did not change
    // Two more changes while those writes are out: each decided at once for the index (no write),
    // and one trailing re-run each, not two.
    r.secrets.sink.upsert(secret("s", "t3", "3"));
    expect(r.index.get({ namespace: "ns", name: "a" })?.path).toBe(webhookPath("t3", "a", "ns"));
    r.secrets.sink.upsert(secret("s", "t4", "4"));
    await settle();
    expect(r.lookups() - before).toBe(2 + 2 * 2);
    expect(r.writes.length).toBe(5);
    r.land(3);
    r.land(4);
    await waitFor("the re-runs' writes", () => r.writes.length === 7);
    expect(r.lookups() - before).toBe(2 + 2 * 2 + 2);
    expect(r.writes.slice(3).map((w) => [w.name, w.path])).toEqual([
      ["a", webhookPath("t2", "a", "ns")],
      ["b", webhookPath("t2", "b", "ns")],
      ["a", webhookPath("t4", "a", "ns")],
      ["b", webhookPath("t4", "b", "ns")],
    ]);
    expect(r.index.get({ namespace: "ns", name: "a" })?.path).toBe(webhookPath("t4", "a", "ns"));
  });
});

describe("a failed write", () => {
  test("is retried after its backoff, not at once; a new change runs at once", async () => {
    const r = heldRig(60_000);
    replaceAll(r.secrets.sink, [secret("s", "t")]);
    replaceAll(r.receivers.sink, [receiver("a")]);
    await waitFor("the write", () => r.writes.length === 1);
    r.writes[0]!.answer({ ok: false, reason: "etcdserver: request timed out", status: 500 });
    await settle(20);
    expect({ writes: r.writes.length, failures: r.failures(), reconciled: r.reconciled }).toEqual({
      writes: 1,
      failures: 1,
      reconciled: [],
    });
    r.secrets.sink.upsert(secret("s", "t2", "2"));
    await waitFor("the new decision's write", () => r.writes.length === 2);
    expect(r.writes[1]!.path).toBe(webhookPath("t2", "a", "ns"));
  });

  test("is retried until it lands; the reconcile ends with it", async () => {
    const r = heldRig(1);
    replaceAll(r.secrets.sink, [secret("s", "t")]);
    replaceAll(r.receivers.sink, [receiver("a")]);
    await waitFor("the write", () => r.writes.length === 1);
    r.writes[0]!.answer({ ok: false, reason: "etcdserver: request timed out", status: 500 });
    await waitFor("the retry", () => r.writes.length === 2);
    r.land(1);
    await waitFor("the reconcile to end", () => r.reconciled.length === 1);
    expect({ writes: r.writes.map((w) => w.reason), failures: r.failures() }).toEqual({
      writes: ["Succeeded", "Succeeded"],
      failures: 1,
    });
  });
});

test("a write that throws (a bug: the port answers failures as values) is logged and retried", async () => {
  const lines: Record<string, unknown>[] = [];
  let calls = 0;
  const { secrets, receivers, index } = reconcilerRig({
    log: createLogger({ level: "error", encoding: "json", write: (line) => lines.push(JSON.parse(line)) }),
    writer: {
      kube: {
        patchReceiverFinalizers: async (): Promise<KubeResult<string>> => ({ ok: true, value: "2" }),
        patchReceiverStatus: async (): Promise<KubeResult<string>> => {
          if (++calls === 1) throw new TypeError("undefined is not an object");
          return { ok: true, value: "3" };
        },
      },
      canWrite: () => true,
      backoff: { baseMs: 1, capMs: 1 },
    },
  });
  replaceAll(secrets.sink, [secret("s", "t")]);
  replaceAll(receivers.sink, [receiver("a")]);
  await waitFor("the retry", () => calls === 2);
  expect(lines.map((l) => [l.msg, l.receiver, l.error])).toEqual([
    ["reconciling a Receiver failed", "ns/a", "undefined is not an object"],
  ]);
  expect(index.get({ namespace: "ns", name: "a" })?.path).toBe(webhookPath("t", "a", "ns"));
});

test(`a decision that went stale while it waited for one of ${RECONCILE_WRITE_CONCURRENCY} write slots is not written`, async () => {
  const r = heldRig();
  const busy = Array.from({ length: RECONCILE_WRITE_CONCURRENCY }, (_, i) => receiver(`busy-${i}`));
  replaceAll(r.secrets.sink, [secret("s", "t")]);
  replaceAll(r.receivers.sink, [...busy, receiver("late", "late-token")]);
  await waitFor("every slot taken", () => r.writes.length === RECONCILE_WRITE_CONCURRENCY);
  // "late" was decided TokenNotFound (no Secret) and waits; its Secret arrives meanwhile.
  r.secrets.sink.upsert(secret("late-token", "t"));
  await settle();
  expect(r.writes.length).toBe(RECONCILE_WRITE_CONCURRENCY);
  for (let i = 0; i < RECONCILE_WRITE_CONCURRENCY; i++) r.land(i);
  await waitFor("late's write", () => r.writes.some((w) => w.name === "late"));
  await settle();
  expect(r.writes.filter((w) => w.name === "late").map((w) => w.reason)).toEqual(["Succeeded"]);
});

test("the index never waits behind other Receivers' writes: a change to one waiting for a slot is served at once", async () => {
  const r = heldRig();
  const busy = Array.from({ length: RECONCILE_WRITE_CONCURRENCY }, (_, i) => receiver(`busy-${i}`));
  replaceAll(r.secrets.sink, [secret("s", "t"), secret("rotating", "old"), secret("leaving", "t")]);
  replaceAll(r.receivers.sink, [...busy, receiver("rotated", "rotating"), receiver("deleted", "leaving")]);
  await waitFor("every slot taken", () => r.writes.length === RECONCILE_WRITE_CONCURRENCY);
  const key = (name: string) => ({ namespace: "ns", name });
  expect(r.index.get(key("rotated"))?.path).toBe(webhookPath("old", "rotated", "ns"));
  expect(r.index.get(key("deleted"))).toBeDefined();
  // Both wait for a slot behind the held writes; a rotation and a deletion reach the index anyway.
  r.secrets.sink.upsert(secret("rotating", "new", "2"));
  r.receivers.sink.remove(receiver("deleted", "leaving"));
  await waitFor("the rotation served", () => r.index.get(key("rotated"))?.path === webhookPath("new", "rotated", "ns"));
  await waitFor("the deletion served", () => r.index.get(key("deleted")) === undefined);
  expect(r.writes.length).toBe(RECONCILE_WRITE_CONCURRENCY);
  for (let i = 0; i < RECONCILE_WRITE_CONCURRENCY; i++) r.land(i);
  await waitFor("the rotated one's write", () => r.writes.some((w) => w.name === "rotated"));
  await settle();
  expect(r.writes.slice(RECONCILE_WRITE_CONCURRENCY).map((w) => [w.name, w.path])).toEqual([
    ["rotated", webhookPath("new", "rotated", "ns")],
  ]);
});

describe("at start-up, the finalizer before the status", () => {
  const N = 50;
  const objects: KubeObject[] = Array.from({ length: N }, (_, i) => [
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `token-${i}`, namespace: "many" },
      data: { token: Buffer.from(`t-${i}`).toString("base64") },
    },
    {
      apiVersion: RECEIVER_API_VERSION,
      kind: "Receiver",
      metadata: { name: `r-${i}`, namespace: "many" },
      spec: spec(`token-${i}`),
    },
  ]).flat();

  test("no finalizer write is refused (422) for a status written before it, however late the watch", async () => {
    await using api = await startKubeApiServer({ objects });
    // The watch shows none of the writes until every Receiver is Ready: every write is decided on
    // the listed resourceVersion, and a status written between a decision and its
    // resourceVersion-tested finalizer PATCH would make that PATCH a 422.
    const held = api.faults.add({
      path: `/apis/${RECEIVER_API_VERSION}/receivers`,
      watch: true,
      times: Infinity,
      respond: "hang",
    });
    const server = await startFluxhook({
      config: TEST_CONFIG,
      log: silentLogger,
      kube: createKubeClient({ kubeConfig: api.kubeConfig(), log: silentLogger }),
    });
    try {
      const stored = (i: number) => api.store.get(RECEIVER_API_VERSION, "Receiver", "many", `r-${i}`) as any;
      const all = (ok: (o: any) => boolean) => Array.from({ length: N }, (_, i) => ok(stored(i))).every(Boolean);
      await waitFor("every Receiver Ready", () =>
        all((o) => o.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True")),
      );
      held.remove();
      await waitFor("every finalizer", () => all((o) => o.metadata.finalizers?.includes(RECEIVER_FINALIZER)));
      const patches = (status: boolean) =>
        api.requests.filter(
          (q) =>
            q.method === "PATCH" &&
            /\/receivers\/[^/]+(\/status)?$/.test(q.path) &&
            q.path.endsWith("/status") === status,
        );
      expect({
        finalizerWrites: patches(false).length,
        refused: patches(false).filter((q) => q.status === 422).length,
        statusWrites: patches(true).length,
      }).toEqual({ finalizerWrites: N, refused: 0, statusWrites: N });
    } finally {
      await server.stop();
    }
  });
});

/** A rig whose finalizer PATCHes wait until the test lands them; status PATCHes land at once. */
function finalizerHeldRig() {
  let version = 100;
  let leading = true;
  const finalizerWrites: ((r: KubeResult<string>) => void)[] = [];
  const statusWrites: { reason: string | undefined; path: string | undefined }[] = [];
  const events: string[] = [];
  const rig = reconcilerRig({
    writer: {
      kube: {
        patchReceiverFinalizers: () => new Promise<KubeResult<string>>((answer) => finalizerWrites.push(answer)),
        patchReceiverStatus: async (_key: ObjectKey, status: ReceiverStatus): Promise<KubeResult<string>> => {
          statusWrites.push({
            reason: status.conditions?.find((c) => c.type === "Ready")?.reason,
            path: status.webhookPath,
          });
          return { ok: true, value: String(++version) };
        },
      },
      canWrite: () => leading,
      backoff: { baseMs: 1, capMs: 1 },
      recordEvent: (_key, _uid, event) => events.push(event.reason),
    },
  });
  return {
    ...rig,
    finalizerWrites,
    statusWrites,
    events,
    landFinalizer: (i: number) => finalizerWrites[i]!({ ok: true, value: String(++version) }),
    stepDown: () => {
      leading = false;
    },
  };
}

/** A Receiver without Flux's finalizer: a reconcile writes it first, then the status. */
const withoutFinalizer = (name: string) => ({
  ...receiver(name),
  metadata: { ...receiver(name).metadata, finalizers: undefined },
});

describe("a change while the finalizer write is out", () => {
  test("a Secret deleted: the Ready status decided before is not written, nor its Event", async () => {
    const r = finalizerHeldRig();
    replaceAll(r.secrets.sink, [secret("s", "t")]);
    replaceAll(r.receivers.sink, [withoutFinalizer("a")]);
    await waitFor("the finalizer write", () => r.finalizerWrites.length === 1);
    r.secrets.sink.remove(secret("s", "t"));
    r.landFinalizer(0);
    await waitFor("the re-run's status", () => r.statusWrites.length > 0);
    await settle(10);
    expect({ statuses: r.statusWrites.map((w) => w.reason), events: r.events }).toEqual({
      statuses: ["TokenNotFound"],
      events: ["Failed"],
    });
  });

  test("the token rotated: only the new path is written", async () => {
    const r = finalizerHeldRig();
    replaceAll(r.secrets.sink, [secret("s", "old")]);
    replaceAll(r.receivers.sink, [withoutFinalizer("a")]);
    await waitFor("the finalizer write", () => r.finalizerWrites.length === 1);
    r.secrets.sink.upsert(secret("s", "new", "2"));
    r.landFinalizer(0);
    await waitFor("the new path written", () => r.statusWrites.some((w) => w.path === webhookPath("new", "a", "ns")));
    await settle(10);
    expect(r.statusWrites.map((w) => w.path)).toEqual([webhookPath("new", "a", "ns")]);
  });

  test("leadership lost: the replica that stepped down writes no status and records no Event", async () => {
    const r = finalizerHeldRig();
    replaceAll(r.secrets.sink, [secret("s", "t")]);
    replaceAll(r.receivers.sink, [withoutFinalizer("a")]);
    await waitFor("the finalizer write", () => r.finalizerWrites.length === 1);
    r.stepDown();
    r.landFinalizer(0);
    await settle(20);
    expect({ statuses: r.statusWrites, events: r.events }).toEqual({ statuses: [], events: [] });
  });
});

describe("a change while a status write hangs reaches the index at once", () => {
  const hangStatus = (api: KubeApiServer) =>
    api.faults.add({
      method: "PATCH",
      path: `/apis/${RECEIVER_API_VERSION}/namespaces/ns/receivers/a/status`,
      times: Infinity,
      respond: "hang",
    });

  test.each([
    [
      "its Secret deleted (a leaked token revoked): no longer served",
      (s: Stack) => s.api.store.delete("v1", "Secret", "ns", "s"),
      undefined,
    ],
    [
      "suspended: 503",
      (s: Stack) => s.api.store.patch(RECEIVER_API_VERSION, "Receiver", "ns", "a", { spec: { suspend: true } }),
      "receiver is suspended",
    ],
  ])("%s", async (_name, change, state) => {
    await using stack = await startStack();
    await stack.readyReceiver("ns", "a", {
      type: "generic",
      token: "t1",
      secretName: "s",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    hangStatus(stack.api);
    // A rotation: its status write hangs (etcd slow, or API Priority and Fairness queueing writes).
    stack.api.store.patch("v1", "Secret", "ns", "s", { data: { token: Buffer.from("t2").toString("base64") } });
    await waitFor("the status write to hang", () => stack.api.faults.hung === 1);
    change(stack);
    const entry = () => stack.fluxhook.receivers().find((r) => r.key.name === "a");
    // Well within the write's call timeout (KUBE_CALL_TIMEOUT_MS, 5 s), after which it used to run.
    await waitFor(
      "the change in the index",
      () => (state === undefined ? entry() === undefined : entry()?.state === state),
      1_000,
    );
  });
});
