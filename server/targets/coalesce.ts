/**
 * @module server/targets/coalesce
 * Concurrent deliveries that target the same object share their writes: per key, at most one
 * write is in flight and at most one more is queued behind it (a single-flight with one trailing
 * call).
 *
 *   - No write in flight: this caller's write starts now, and the caller gets its result.
 *   - A write in flight, none queued: a trailing write is queued; it starts when the one in flight
 *     settles, and this caller gets the trailing write's result.
 *   - A write in flight and one queued: this caller joins the queued one.
 *
 * Every caller therefore gets the result of a write that *started after it called*, which is what
 * a delivery's 200 promises ("an annotation was written after this delivery arrived"): the write
 * in flight when a delivery arrives may have been sent before it, so it never answers for it. A
 * failed write fails every caller that waited on it. A burst of deliveries costs one write per
 * round of concurrent deliveries instead of one per delivery.
 *
 * The write function is called when the write starts, not when it is queued, so a trailing write
 * computes its values (a fresh `requestedAt`) at its start. Retries belong inside the write
 * (server/kube/client.ts annotateObject); this module only decides who shares which write.
 *
 * No window is held open after a write: a lone delivery's latency is worth more than the writes a
 * window would save (bench/README.md, "Coalescing").
 */

import { WorkQueue } from "../runtime/work-queue";

export interface Coalesce {
  <T>(key: string, write: () => Promise<T>): Promise<T>;
  /** Callers waiting on a queued write, over every key (tests wait for a burst to have joined). */
  readonly waiting: () => number;
}

/** The callers of one write that has not started yet. */
interface Round {
  readonly write: () => Promise<unknown>;
  /** Callers waiting for it to start. */
  callers: number;
  readonly promise: Promise<unknown>;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

function round(write: () => Promise<unknown>, callers: number): Round {
  let resolve!: (value: unknown) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<unknown>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { write, callers, promise, resolve, reject };
}

/**
 * A coalescer with its own keys; the server makes one per target cluster. It is a work queue
 * (runtime/work-queue.ts) whose trailing re-run is the queued write: the queue runs one write per key
 * at a time, and a key added while its write runs runs once more after it.
 */
export function createCoalescer(): Coalesce {
  /** key → the round its next write answers (the one running took its round when it started). */
  const next = new Map<string, Round>();
  let waiting = 0;
  const writes = new WorkQueue({
    // Bounded by the deliveries' own target pool (TARGET_CONCURRENCY each) and admission.
    concurrency: Number.POSITIVE_INFINITY,
    work: (key) => {
      const started = next.get(key)!;
      next.delete(key);
      waiting -= started.callers;
      // A write that throws synchronously is a rejected write, like one that rejects later.
      const running = Promise.resolve().then(started.write);
      running.then(started.resolve, started.reject);
      return running;
    },
  });

  const coalesce = <T>(key: string, write: () => Promise<T>): Promise<T> => {
    const queued = next.get(key);
    if (queued) {
      queued.callers++;
      waiting++;
      return queued.promise as Promise<T>;
    }
    // No write in flight: this one starts now. One in flight: this one is the trailing write.
    const inFlight = writes.state(key) !== undefined;
    const pending = round(write, inFlight ? 1 : 0);
    if (inFlight) waiting++;
    next.set(key, pending);
    writes.add(key);
    return pending.promise as Promise<T>;
  };
  return Object.assign(coalesce, { waiting: () => waiting });
}

/** The coalescing key of a target object: its apiVersion, kind, namespace and name. */
export function targetKey(ref: {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}): string {
  // Newlines cannot occur in any of these (Kubernetes names and kinds), so the key is unambiguous.
  return `${ref.apiVersion}\n${ref.kind}\n${ref.namespace}\n${ref.name}`;
}
