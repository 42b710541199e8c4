/**
 * Coalescing of concurrent writes to one target (server/targets/coalesce.ts): unit tests with a
 * fake write and promises the test settles by hand, a property test over random interleavings,
 * annotateTargets with a fake cluster, and deliveries over real HTTP through the whole stack.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createCoalescer, targetKey } from "../../server/targets/coalesce";
import { annotateTargets, type AnnotateDeps } from "../../server/targets/annotate";
import type { KubePort, KubeResult, TargetRef } from "../../server/kube/port";
import type { ServingEntry } from "../../server/receivers/index";
import { createKubeClient } from "../../server/kube/client";
import { createLogger } from "../../server/runtime/log";
import { startFluxhook, type Fluxhook } from "../../server/server";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import { REQUESTED_AT_ANNOTATION } from "../../server/api/annotations";
import { startKubeApiServer, type KubeApiServer } from "../kube";
import { githubExample } from "../support/payloads";
import { TEST_CONFIG, waitFor } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

/** A write whose calls the test settles: `calls[i]` is the i-th start, in order. */
function controlledWrite<T>() {
  const calls: { resolve: (v: T) => void; reject: (e: unknown) => void; settled: boolean }[] = [];
  const write = () =>
    new Promise<T>((resolve, reject) => {
      const call = {
        resolve: (v: T) => ((call.settled = true), resolve(v)),
        reject: (e: unknown) => ((call.settled = true), reject(e)),
        settled: false,
      };
      calls.push(call);
    });
  return { calls, write };
}

/** Lets every pending promise reaction run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Tracks which promises have settled, and how, without awaiting them. */
function track<T>(p: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(state, { done: true, value }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

describe("createCoalescer", () => {
  test("a lone call starts its write at once and gets its result", async () => {
    const coalesce = createCoalescer();
    const w = controlledWrite<string>();
    const a = track(coalesce("k", w.write));
    await flush();
    expect(w.calls.length).toBe(1);
    w.calls[0]!.resolve("first");
    await flush();
    expect(a).toEqual({ done: true, value: "first" });
  });

  test("calls during a write share one trailing write, started only when the first settles", async () => {
    const coalesce = createCoalescer();
    const w = controlledWrite<string>();
    const first = track(coalesce("k", w.write));
    await flush();
    const joined = [track(coalesce("k", w.write)), track(coalesce("k", w.write)), track(coalesce("k", w.write))];
    await flush();
    expect(w.calls.length).toBe(1);
    expect(coalesce.waiting()).toBe(3);

    w.calls[0]!.resolve("round 1");
    await flush();
    expect(coalesce.waiting()).toBe(0); // the trailing write runs: nobody waits on a queued one
    // The in-flight write answers only the call that started it: the others may have arrived after it was sent.
    expect(first).toEqual({ done: true, value: "round 1" });
    expect(joined.map((j) => j.done)).toEqual([false, false, false]);
    expect(w.calls.length).toBe(2);

    w.calls[1]!.resolve("round 2");
    await flush();
    expect(joined).toEqual([0, 1, 2].map(() => ({ done: true, value: "round 2" })));
    expect(w.calls.length).toBe(2);
  });

  test("a call while the trailing write runs queues the next one", async () => {
    const coalesce = createCoalescer();
    const w = controlledWrite<number>();
    const a = track(coalesce("k", w.write));
    await flush();
    const b = track(coalesce("k", w.write));
    w.calls[0]!.resolve(1);
    await flush();
    expect(w.calls.length).toBe(2);
    const c = track(coalesce("k", w.write));
    const d = track(coalesce("k", w.write));
    w.calls[1]!.resolve(2);
    await flush();
    expect(w.calls.length).toBe(3);
    w.calls[2]!.resolve(3);
    await flush();
    expect([a.value, b.value, c.value, d.value]).toEqual([1, 2, 3, 3]);
  });

  test("the write function runs when the write starts, so a trailing write computes fresh values", async () => {
    const coalesce = createCoalescer();
    let clock = 0;
    const gates: (() => void)[] = [];
    const write = () => {
      const value = ++clock;
      return new Promise<number>((resolve) => gates.push(() => resolve(value)));
    };
    const a = track(coalesce("k", write));
    await flush();
    const b = track(coalesce("k", write));
    await flush();
    expect(clock).toBe(1); // the trailing write has not read the clock yet
    clock = 100; // time passes while the first write runs
    gates[0]!();
    await flush();
    gates[1]!();
    await flush();
    expect([a.value, b.value]).toEqual([1, 101]);
  });

  test("a failed write fails every call that waited on it, and the next round still runs", async () => {
    const coalesce = createCoalescer();
    const w = controlledWrite<KubeResult<void>>();
    const a = track(coalesce("k", w.write));
    await flush();
    const b = track(coalesce("k", w.write));
    const c = track(coalesce("k", w.write));
    w.calls[0]!.resolve({ ok: true, value: undefined });
    await flush();
    const d = track(coalesce("k", w.write)); // arrives while the trailing write runs
    w.calls[1]!.resolve({ ok: false, reason: "GitRepository ns/app: Kubernetes API answered 500" });
    await flush();
    expect(a.value).toEqual({ ok: true, value: undefined });
    expect(b.value).toEqual({ ok: false, reason: "GitRepository ns/app: Kubernetes API answered 500" });
    expect(c.value).toEqual(b.value!);
    expect(d.done).toBe(false);
    w.calls[2]!.resolve({ ok: true, value: undefined });
    await flush();
    expect(d.value).toEqual({ ok: true, value: undefined });
  });

  test("a rejected or throwing write rejects its callers only, and frees the key", async () => {
    const coalesce = createCoalescer();
    const w = controlledWrite<string>();
    const a = track(coalesce("k", w.write));
    await flush();
    const b = track(coalesce("k", w.write));
    w.calls[0]!.reject(new Error("socket hang up"));
    await flush();
    expect(a.error).toEqual(new Error("socket hang up"));
    expect(b.done).toBe(false);
    w.calls[1]!.resolve("ok");
    await flush();
    expect(b.value).toBe("ok");

    const thrown = track(
      coalesce("k", () => {
        throw new Error("bad write");
      }),
    );
    await flush();
    expect(thrown.error).toEqual(new Error("bad write"));
    // The key is free again: a new call starts at once.
    const c = track(coalesce("k", w.write));
    await flush();
    expect(w.calls.length).toBe(3);
    w.calls[2]!.resolve("again");
    await flush();
    expect(c.value).toBe("again");
  });

  test("keys are independent", async () => {
    const coalesce = createCoalescer();
    const x = controlledWrite<string>();
    const y = controlledWrite<string>();
    const a = track(coalesce("x", x.write));
    const b = track(coalesce("y", y.write));
    await flush();
    expect([x.calls.length, y.calls.length]).toEqual([1, 1]);
    y.calls[0]!.resolve("y");
    await flush();
    expect([a.done, b.value]).toEqual([false, "y"]);
    x.calls[0]!.resolve("x");
    await flush();
    expect(a.value).toBe("x");
  });

  test("property: every caller gets a write started after its call; one in flight and one queued at most", async () => {
    // A random schedule of calls and settlements of the oldest write in flight.
    const step = fc.oneof(fc.constant("call" as const), fc.constant("settle" as const), fc.constant("fail" as const));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        const coalesce = createCoalescer();
        let now = 0;
        let inFlight = 0;
        let maxInFlight = 0;
        const running: { start: number; resolve: () => void; reject: () => void }[] = [];
        const outcomes: { calledAt: number; got?: number; failed?: boolean }[] = [];
        const write = () => {
          const start = ++now;
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          return new Promise<number>((resolve, reject) => {
            running.push({
              start,
              resolve: () => (inFlight--, resolve(start)),
              reject: () => (inFlight--, reject(new Error(`write ${start} failed`))),
            });
          });
        };
        const call = () => {
          const o: (typeof outcomes)[number] = { calledAt: ++now };
          outcomes.push(o);
          coalesce("k", write).then(
            (got) => (o.got = got),
            () => (o.failed = true),
          );
        };
        for (const s of steps) {
          if (s === "call") call();
          else running.shift()?.[s === "settle" ? "resolve" : "reject"]();
          await flush();
        }
        // Drain: settle whatever is left (each settlement may start the trailing write).
        for (let i = 0; i < 3 && running.length > 0; i++) {
          running.shift()!.resolve();
          await flush();
        }
        expect(running.length).toBe(0);
        expect(maxInFlight).toBeLessThanOrEqual(1);
        for (const o of outcomes) {
          expect(o.got !== undefined || o.failed === true).toBe(true);
          if (o.got !== undefined) expect(o.got).toBeGreaterThan(o.calledAt);
        }
        // Writes never outnumber calls, and two rounds at most follow a call.
        const writes = now - outcomes.length;
        expect(writes).toBeLessThanOrEqual(outcomes.length);
      }),
      { numRuns: 300 },
    );
  });

  test("targetKey tells apart every part of a reference", () => {
    const ref = { apiVersion: GIT, kind: "GitRepository", namespace: "ns", name: "app" };
    const keys = new Set([
      targetKey(ref),
      targetKey({ ...ref, apiVersion: "source.toolkit.fluxcd.io/v1beta2" }),
      targetKey({ ...ref, kind: "OCIRepository" }),
      targetKey({ ...ref, namespace: "other" }),
      targetKey({ ...ref, name: "other" }),
    ]);
    expect(keys.size).toBe(5);
  });
});

// annotateTargets with a fake cluster: concurrent deliveries to one receiver share PATCHes.

function entryWith(resources: { kind: string; name: string }[]): ServingEntry {
  return {
    key: { namespace: "apps", name: "receiver" },
    generation: 1,
    path: "/hook/x",
    secret: {},
    spec: { type: "generic", resources } as unknown as ServingEntry["spec"],
    compiled: undefined as unknown as ServingEntry["compiled"],
    unavailable: undefined,
  } as ServingEntry;
}

/** A fake target port whose PATCHes wait for the test; it records every one with its annotations. */
function gatedPort() {
  const patches: { ref: TargetRef; value: string; settle: (r: KubeResult<void>) => void }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const kube: Pick<KubePort, "annotateObject" | "listObjects" | "getObject"> = {
    annotateObject: (ref, annotations) =>
      new Promise((resolve) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        patches.push({ ref, value: annotations[REQUESTED_AT_ANNOTATION]!, settle: (r) => (inFlight--, resolve(r)) });
      }),
    listObjects: async () => ({ ok: true, value: [] }),
    getObject: async () => ({ ok: false, reason: "unused" }),
  };
  return { kube, patches, maxInFlight: () => maxInFlight };
}

describe("annotateTargets coalescing", () => {
  test("deliveries during a PATCH share the next one; a failed shared PATCH fails each of them", async () => {
    const port = gatedPort();
    let tick = 0;
    const deps: AnnotateDeps = {
      kube: port.kube,
      clock: () => `t${++tick}`,
      noCrossNamespaceRefs: false,
      coalesce: createCoalescer(),
    };
    const entry = entryWith([{ kind: "GitRepository", name: "app" }]);
    const first = track(annotateTargets(entry, deps));
    await flush();
    expect(port.patches.length).toBe(1);
    const burst = Array.from({ length: 20 }, () => track(annotateTargets(entry, deps)));
    await flush();
    expect(port.patches.length).toBe(1);
    port.patches[0]!.settle({ ok: true, value: undefined });
    await flush();
    expect(first.value).toEqual([
      { kind: "GitRepository", namespace: "apps", name: "app", outcome: "annotated", requestedAt: "t1" },
    ]);
    expect(port.patches.map((p) => p.value)).toEqual(["t1", "t2"]);
    port.patches[1]!.settle({ ok: false, reason: "GitRepository apps/app: Kubernetes API answered 403" });
    await flush();
    for (const b of burst) {
      expect(b.value).toEqual([
        {
          kind: "GitRepository",
          namespace: "apps",
          name: "app",
          outcome: "failed",
          reason: "GitRepository apps/app: Kubernetes API answered 403",
        },
      ]);
    }
    expect(port.patches.length).toBe(2);
    expect(port.maxInFlight()).toBe(1);
  });

  test("different targets of one delivery are patched concurrently, a shared one once per round", async () => {
    const port = gatedPort();
    const deps: AnnotateDeps = {
      kube: port.kube,
      clock: () => "t",
      noCrossNamespaceRefs: false,
      coalesce: createCoalescer(),
    };
    const a = entryWith([
      { kind: "GitRepository", name: "shared" },
      { kind: "GitRepository", name: "only-a" },
    ]);
    const b = entryWith([
      { kind: "GitRepository", name: "shared" },
      { kind: "GitRepository", name: "only-b" },
    ]);
    const ra = track(annotateTargets(a, deps));
    const rb = track(annotateTargets(b, deps));
    await flush();
    // "shared" is in flight for a; b's "shared" waits for a trailing PATCH; both own targets run now.
    expect(port.patches.map((p) => p.ref.name).sort()).toEqual(["only-a", "only-b", "shared"]);
    for (const p of port.patches.slice()) p.settle({ ok: true, value: undefined });
    await flush();
    expect(port.patches.map((p) => p.ref.name).sort()).toEqual(["only-a", "only-b", "shared", "shared"]);
    port.patches[3]!.settle({ ok: true, value: undefined });
    await flush();
    expect(ra.value?.map((t) => t.outcome)).toEqual(["annotated", "annotated"]);
    expect(rb.value?.map((t) => t.outcome)).toEqual(["annotated", "annotated"]);
  });
});

// Through the stack: real HTTP deliveries, the real client, the test API server.

const TOKEN = "coalesce-token";
const NS = "coalesce";
const TARGET_PATH = `/apis/source.toolkit.fluxcd.io/v1/namespaces/${NS}/gitrepositories/app`;

let api: KubeApiServer;
let fluxhook: Fluxhook;
/** PATCHes of the target are held here while `hold` is true. */
let hold = false;
const held: (() => void)[] = [];
let inFlight = 0;
let maxInFlight = 0;
let path = "";
/** Called before a PATCH that is not held goes out. */
let beforePatch: (() => void) | undefined;

beforeAll(async () => {
  api = await startKubeApiServer();
  const log = createLogger({ level: "error", encoding: "json", write: () => {} });
  const real = createKubeClient({
    kubeConfig: api.kubeConfig(),
    log,
    tuning: { watchBackoff: { baseMs: 10, capMs: 200 } },
  });
  const kube: KubePort = {
    ...real,
    async annotateObject(ref, annotations) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (hold) await new Promise<void>((release) => held.push(release));
        else beforePatch?.();
        return await real.annotateObject(ref, annotations);
      } finally {
        inFlight--;
      }
    },
  };
  fluxhook = await startFluxhook({ config: { ...TEST_CONFIG, logLevel: "error" }, log, kube });
  api.store.create({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "token", namespace: NS },
    data: { token: Buffer.from(TOKEN).toString("base64") },
  });
  api.store.create({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: NS }, spec: {} });
  api.store.create({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name: "burst", namespace: NS },
    spec: { type: "github", secretRef: { name: "token" }, resources: [{ kind: "GitRepository", name: "app" }] },
  });
  path = await waitFor("the receiver to be Ready", () => {
    const status = (api.store.get(RECEIVER_API_VERSION, "Receiver", NS, "burst") as any)?.status;
    return status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True")
      ? (status.webhookPath as string)
      : undefined;
  });
});
afterAll(async () => {
  await fluxhook.stop();
  await api.close();
});

const push = githubExample("push");
const deliver = async () => {
  const res = await fetch(fluxhook.receiverUrl + path, {
    method: "POST",
    headers: githubHeaders(TOKEN, push, { delivery: crypto.randomUUID() }),
    body: push,
  });
  return { status: res.status, body: (await res.json()) as { reason: string } };
};
const patchCount = () => api.count({ method: "PATCH", path: TARGET_PATH });
const requestedAt = () =>
  (api.store.get(GIT, "GitRepository", NS, "app") as any)?.metadata?.annotations?.[REQUESTED_AT_ANNOTATION] as
    | string
    | undefined;

describe("deliveries through the stack", () => {
  test("a burst while a PATCH is in flight costs one more PATCH, and every delivery is answered 200", async () => {
    api.resetRequests();
    hold = true;
    const first = deliver();
    await waitFor("the first PATCH to be held", () => held.length === 1);
    const burst = Array.from({ length: 50 }, deliver);
    // Every delivery reached the server (the metric counts the scrape's own request out).
    await waitFor("the 50 to wait on the trailing PATCH", () => fluxhook.patchesWaiting() === 50);
    hold = false;
    const beforeRelease = requestedAt();
    held.shift()!();
    const answers = [await first, ...(await Promise.all(burst))];
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers[1]!.body.reason).toBe("1 of 1 target annotated");
    expect(patchCount()).toBe(2);
    expect(maxInFlight).toBe(1);
    expect(requestedAt()).not.toBe(beforeRelease);
  });

  test("rounds of concurrent deliveries cost about one PATCH per round, never two at once", async () => {
    api.resetRequests();
    maxInFlight = 0;
    const rounds = 10;
    const concurrency = 20;
    for (let r = 0; r < rounds; r++) {
      const answers = await Promise.all(Array.from({ length: concurrency }, deliver));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    }
    // Each round's first delivery starts a PATCH and the rest share the trailing one: 2 per
    // round, more only if a round's deliveries are spread over several PATCHes' time.
    expect(patchCount()).toBeLessThanOrEqual(rounds * 3);
    expect(patchCount()).toBeLessThan((rounds * concurrency) / 4);
    expect(maxInFlight).toBe(1);
  });

  test("a failed shared PATCH answers 500 with the reason to every delivery that waited on it", async () => {
    api.resetRequests();
    hold = true;
    const first = deliver();
    await waitFor("the first PATCH to be held", () => held.length === 1);
    const burst = Array.from({ length: 10 }, deliver);
    await waitFor("the 10 to wait on the trailing PATCH", () => fluxhook.patchesWaiting() === 10);
    hold = false;
    // The held PATCH goes through; the shared trailing one meets a refusal that is not retried.
    beforePatch = () => {
      api.faults.add({
        method: "PATCH",
        path: TARGET_PATH,
        times: 1,
        respond: { status: 403, message: "forbidden by the test" },
      });
      beforePatch = undefined;
    };
    held.shift()!();
    const a = await first;
    const rest = await Promise.all(burst);
    expect(a.status).toBe(200);
    expect(rest.map((r) => r.status)).toEqual(rest.map(() => 500));
    for (const r of rest) expect(r.body.reason).toBe("1 target failed; 0 of 1 target annotated");
    expect(patchCount()).toBe(2);
  });
});
