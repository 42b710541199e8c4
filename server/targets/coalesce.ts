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
 * No window is held open after a write. Clients that resend the moment they are answered make
 * the first resend start a write alone and the rest share the next: about two writes per round
 * (bench scenario 4). Holding the key busy for a few milliseconds merges rounds, and was
 * measured (bench/README.md, "Coalescing"): a quiet-gap window got scenario 4 to ~120 writes but
 * cost more than half of scenario 1's throughput and tripled latency at half rate, because a
 * steady stream never leaves a quiet gap; windows bounded by the write's own duration kept
 * latency but saved too little. A lone delivery's latency is worth more than those writes.
 */

export interface Coalesce {
  <T>(key: string, write: () => Promise<T>): Promise<T>;
  /** Callers waiting on a queued write, over every key (tests wait for a burst to have joined). */
  readonly waiting: () => number;
}

interface Queued {
  readonly write: () => Promise<unknown>;
  /** Callers sharing this write. */
  callers: number;
  readonly promise: Promise<unknown>;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

/** A key with a write in flight (or settling), and the write queued behind it, if any. */
interface Slot {
  queued: Queued | undefined;
}

/** A coalescer with its own keys; the server makes one per target cluster. */
export function createCoalescer(): Coalesce {
  const slots = new Map<string, Slot>();
  let waiting = 0;

  const start = (key: string, slot: Slot, write: () => Promise<unknown>): Promise<unknown> => {
    // A write that throws synchronously is a rejected write, like one that rejects later.
    const running = Promise.resolve().then(write);
    const next = () => {
      const queued = slot.queued;
      if (!queued) {
        slots.delete(key);
        return;
      }
      slot.queued = undefined;
      waiting -= queued.callers;
      start(key, slot, queued.write).then(queued.resolve, queued.reject);
    };
    running.then(next, next);
    return running;
  };

  const coalesce = <T>(key: string, write: () => Promise<T>): Promise<T> => {
    const slot = slots.get(key);
    if (!slot) {
      const fresh: Slot = { queued: undefined };
      slots.set(key, fresh);
      return start(key, fresh, write) as Promise<T>;
    }
    if (!slot.queued) {
      let resolve!: (value: unknown) => void;
      let reject!: (reason: unknown) => void;
      const promise = new Promise<unknown>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      slot.queued = { write, callers: 0, promise, resolve, reject };
    }
    slot.queued.callers++;
    waiting++;
    return slot.queued.promise as Promise<T>;
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
