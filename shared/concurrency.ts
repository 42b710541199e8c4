/**
 * @module shared/concurrency
 * The tree's one bounded-concurrency map: the action's deliveries and waits (a few receivers at a
 * time) and the server's target reads and annotations (a bounded number of API requests at once)
 * run through it. Runtime-neutral: plain promises, no timers.
 */

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
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`mapPool: limit must be a whole number >= 1, not ${limit}`);
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
