/**
 * @module server/delivery/protect/recent-keys
 * A bounded set of keys that expire: remembers at most `capacity` keys for `ttlMs` each, the
 * oldest dropped first when full. Insertion order lives in a ring of fixed size, so adding a key
 * is O(1) whatever came before: evicting by iterating a Map from its start degrades as deleted
 * entries pile up at its front (bench/README.md).
 */

export class RecentKeys {
  /** key → when it expires, and its slot in the ring (a slot may still name a key since re-added elsewhere). */
  readonly #entries = new Map<string, { expires: number; readonly slot: number }>();
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
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (entry.expires > this.#now()) return true;
    this.#entries.delete(key);
    return false;
  }

  /**
   * Remembers `key` for the TTL. A key added again keeps its place in the ring (only its expiry
   * moves), so it may be forgotten before its TTL when the set is full: callers add a key once.
   */
  add(key: string): void {
    const expires = this.#now() + this.#ttlMs;
    const entry = this.#entries.get(key);
    if (entry) {
      entry.expires = expires;
      return;
    }
    const slot = this.#next;
    const evicted = this.#ring[slot];
    // Only the key that still lives in this slot: one expired and added again lives elsewhere now.
    if (evicted !== undefined && this.#entries.get(evicted)?.slot === slot) this.#entries.delete(evicted);
    this.#ring[slot] = key;
    this.#next = (slot + 1) % this.#ring.length;
    this.#entries.set(key, { expires, slot });
  }

  get size(): number {
    return this.#entries.size;
  }
}
