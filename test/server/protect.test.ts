/**
 * The bounded structures behind the abuse limits: keys that expire and stay within capacity, and
 * token buckets that refill at their rate and say when to retry.
 */
import { describe, expect, test } from "bun:test";
import { RecentKeys } from "../../server/protect/recent-keys";
import { KeyedTokenBuckets } from "../../server/protect/token-bucket";

describe("RecentKeys", () => {
  test("remembers keys until their TTL", () => {
    let now = 0;
    const keys = new RecentKeys(10, 1000, () => now);
    keys.add("a");
    now = 999;
    expect(keys.has("a")).toBe(true);
    now = 1000;
    expect(keys.has("a")).toBe(false);
  });

  test("never holds more than its capacity, forgetting the oldest first", () => {
    const keys = new RecentKeys(3, 60_000);
    for (const k of ["a", "b", "c", "d", "e"]) keys.add(k);
    expect(keys.size).toBe(3);
    expect(["a", "b", "c", "d", "e"].map((k) => keys.has(k))).toEqual([false, false, true, true, true]);
  });

  test("stays bounded over many more keys than its capacity", () => {
    const keys = new RecentKeys(1000, 60_000);
    for (let i = 0; i < 100_000; i++) keys.add(`key-${i}`);
    expect(keys.size).toBe(1000);
    expect(keys.has("key-99999")).toBe(true);
    expect(keys.has("key-98999")).toBe(false);
  });
});

describe("KeyedTokenBuckets", () => {
  test("a burst, then the rate, then Retry-After", () => {
    let now = 0;
    const buckets = new KeyedTokenBuckets({ rate: 2, burst: 3 }, () => now);
    expect([1, 2, 3].map(() => buckets.take("r").ok)).toEqual([true, true, true]);
    expect(buckets.take("r")).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(buckets.take("other").ok).toBe(true);
    now = 500; // one token back at 2/s
    expect(buckets.take("r").ok).toBe(true);
    expect(buckets.take("r").ok).toBe(false);
  });

  test("full buckets are swept away", () => {
    let now = 0;
    const buckets = new KeyedTokenBuckets({ rate: 1, burst: 1 }, () => now);
    buckets.take("a");
    buckets.take("b");
    now = 10_000;
    buckets.sweep();
    expect(buckets.size).toBe(0);
  });
});
