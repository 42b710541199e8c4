/**
 * @module server/protect/recent-keys
 * A bounded set of keys that expire: remembers at most `capacity` keys for `ttlMs` each, the
 * oldest dropped first when full. Insertion order lives in a ring of fixed size, so adding a key
 * is O(1) whatever came before: evicting by iterating a Map from its start degrades as deleted
 * entries pile up at its front (the benchmark measured 4-40 µs per add once full).
 */

export class RecentKeys {
  readonly #expiry = new Map<string, number>();
  readonly #ring: (string | undefined)[];
  #next = 0;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(capacity: number, ttlMs: number, now: () => number = Date.now) {
    this.#ring = new Array(capacity).fill(undefined);
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  has(key: string): boolean {
    const expires = this.#expiry.get(key);
    if (expires === undefined) return false;
    if (expires > this.#now()) return true;
    this.#expiry.delete(key);
    return false;
  }

  /**
   * Remembers `key` for the TTL. A key added again keeps its place in the ring (only its expiry
   * moves), so it may be forgotten before its TTL when the set is full: callers add a key once.
   */
  add(key: string): void {
    const expires = this.#now() + this.#ttlMs;
    if (this.#expiry.has(key)) {
      this.#expiry.set(key, expires);
      return;
    }
    const evicted = this.#ring[this.#next];
    if (evicted !== undefined) this.#expiry.delete(evicted);
    this.#ring[this.#next] = key;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#expiry.set(key, expires);
  }

  get size(): number {
    return this.#expiry.size;
  }
}
