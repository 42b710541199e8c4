/**
 * @module server/protect/recent-keys
 * A bounded set of keys that expire: remembers at most `capacity` keys for `ttlMs` each, the
 * oldest dropped first when full. A Map keeps insertion order, so the oldest entry is always the
 * first one, and both lookups and evictions are O(1).
 */

export class RecentKeys {
  readonly #expiry = new Map<string, number>();
  readonly #capacity: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(capacity: number, ttlMs: number, now: () => number = Date.now) {
    this.#capacity = capacity;
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

  add(key: string): void {
    this.#expiry.delete(key);
    this.#expiry.set(key, this.#now() + this.#ttlMs);
    while (this.#expiry.size > this.#capacity) this.#expiry.delete(this.#expiry.keys().next().value!);
  }

  get size(): number {
    return this.#expiry.size;
  }
}
