/**
 * @module server/delivery/protect/token-bucket
 * Token buckets keyed by receiver: `rate` tokens a second, up to `burst`. Buckets are created on
 * first use and forgotten when full again, so memory follows the receivers being hit, not the
 * receivers known.
 */

export interface BucketLimits {
  /** Tokens added per second. */
  readonly rate: number;
  /** Largest number of tokens a bucket holds (the burst a quiet receiver can take at once). */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

export class KeyedTokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #limits: BucketLimits;
  readonly #now: () => number;

  constructor(limits: BucketLimits, now: () => number = () => performance.now()) {
    this.#limits = limits;
    this.#now = now;
  }

  /** Takes one token for `key`, or says how long until one is available. */
  take(key: string): Take {
    const { rate, burst } = this.#limits;
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.#buckets.set(key, bucket);
      return { ok: true };
    }
    this.#buckets.set(key, bucket);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) };
  }

  /** Whether `key` has a token now, without taking it (or, when not, how long until one is). */
  peek(key: string): Take {
    const { rate, burst } = this.#limits;
    const bucket = this.#buckets.get(key);
    if (!bucket) return { ok: true };
    const tokens = Math.min(burst, bucket.tokens + ((this.#now() - bucket.at) / 1000) * rate);
    return tokens >= 1 ? { ok: true } : { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / rate)) };
  }

  /** Drops buckets that have refilled completely (they behave exactly like absent ones). */
  sweep(): void {
    const now = this.#now();
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#limits.rate >= this.#limits.burst) this.#buckets.delete(key);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
