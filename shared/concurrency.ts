/**
 * @module shared/concurrency
 * The tree's bounded concurrency: one map (the action's deliveries, a few receivers at a time; the
 * server's target reads and annotations, a bounded number of API requests at once) and one gate
 * for calls made by many loops at once (the action's status queries while every receiver waits).
 * Runtime-neutral: plain promises, no timers.
 */

const checkLimit = (name: string, limit: number) => {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`${name}: limit must be a whole number >= 1, not ${limit}`);
};

/**
 * Runs `work` over `items` with at most `limit` calls in flight, and resolves to their results in
 * the order of `items` (not of completion). `work` gets each item and its index.
 *
 * A rejection rejects the whole map at once, and no item starts after it: work already in flight
 * finishes unheard. `limit` must be a whole number of at least 1 (a bug otherwise, so it throws).
 */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  checkLimit("mapPool", limit);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  // Each worker takes the next index when it is free, so at most `limit` calls run at once.
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs `work` when one of the gate's slots is free; resolves or rejects as `work` does. */
export type Gate = <R>(work: () => Promise<R>) => Promise<R>;

/**
 * A gate that lets at most `limit` calls of `work` run at once, whoever makes them; the others
 * wait, and start in the order they came as slots free. A slot is freed however `work` ends.
 * `limit` must be a whole number of at least 1 (a bug otherwise, so it throws).
 */
export function gate(limit: number): Gate {
  checkLimit("gate", limit);
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (work) => {
    if (running < limit) running++;
    // A slot freed while others wait passes to the first of them, still counted as running.
    else await new Promise<void>((start) => waiting.push(start));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
