/**
 * The bounded structures behind the abuse limits: keys that expire and stay within capacity, token
 * buckets that refill at their rate and say when to retry, and admission that evicts unfinished bodies.
 */
import { describe, expect, test } from "bun:test";
import { RecentKeys } from "../../server/delivery/protect/recent-keys";
import { KeyedTokenBuckets } from "../../server/delivery/protect/token-bucket";
import { DeliveryGuards, type Admission } from "../../server/delivery/protect/guards";
import { EVICTED, TIMED_OUT } from "../../server/delivery/body";
import { DELIVERY_ID_RECEIVERS, DELIVERY_IDS_PER_RECEIVER, MAX_CONCURRENT_PER_RECEIVER } from "../../server/limits";
import { waitFor } from "../support/wait";

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

  test("a key that expired and was added again is not forgotten when its old slot comes round", () => {
    let now = 0;
    const keys = new RecentKeys(3, 1000, () => now);
    keys.add("a"); // slot 0
    now = 2000;
    expect(keys.has("a")).toBe(false); // expired
    keys.add("a"); // slot 1
    keys.add("b"); // slot 2
    keys.add("c"); // slot 0 again: the expired "a" lived there
    expect(["a", "b", "c"].map((k) => keys.has(k))).toEqual([true, true, true]);
    expect(keys.size).toBe(3);
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

describe("DeliveryGuards admission", () => {
  const guards = (maxConcurrent: number, maxBodyBytesInFlight = 1 << 20) =>
    new DeliveryGuards({
      valid: { rate: 0, burst: 0 },
      failed: { rate: 0, burst: 0 },
      maxConcurrent,
      maxBodyBytesInFlight,
      replayWindowMs: 0,
    });
  const admitted = (a: Admission) => {
    if (!a.ok) throw new Error(`not admitted: ${a.reason}`);
    return a;
  };

  test("bodies not in by their deadline are called off (TIMED_OUT), each at its own, the finished ones never", async () => {
    const g = guards(10);
    const short = [admitted(g.admit("r", 0, 5)), admitted(g.admit("r", 0, 5)), admitted(g.admit("r", 0, 5))];
    const long = admitted(g.admit("r", 0, 60_000));
    const later = admitted(g.admit("other", 0, 30));
    short[1]!.reading.done(); // its body is in: it keeps no deadline
    await waitFor(
      "the short deadlines to pass",
      () => short[0]!.reading.calledOff !== undefined && later.reading.calledOff !== undefined,
    );
    expect(short.map((a) => a.reading.calledOff)).toEqual([TIMED_OUT, undefined, TIMED_OUT]);
    expect(later.reading.calledOff).toBe(TIMED_OUT);
    expect(long.reading.calledOff !== undefined).toBe(false);
    for (const a of [...short, long, later]) a.release();
    g.stop();
  });

  test("a full cap evicts the oldest delivery still reading its body, which learns it at once", async () => {
    const g = guards(2);
    const first = admitted(g.admit("r"));
    const told = first.reading.whenCalledOff;
    const second = admitted(g.admit("r"));
    const third = admitted(g.admit("other"));
    expect([first.reading.calledOff, second.reading.calledOff, third.reading.calledOff]).toEqual([
      EVICTED,
      undefined,
      undefined,
    ]);
    expect(await told).toBe(EVICTED);
    first.release(); // its slot went with the eviction: releasing again frees nothing
    expect(g.admit("r").ok).toBe(true); // evicts the second
    expect(second.reading.calledOff !== undefined).toBe(true);
    g.stop();
  });

  test("deliveries past their bodies keep their places: then the answer is 429", () => {
    const g = guards(2);
    for (const a of [admitted(g.admit("r")), admitted(g.admit("r"))]) a.reading.done();
    expect(g.admit("r")).toEqual({
      ok: false,
      retryAfterSeconds: 1,
      reason: "too many deliveries in flight; retry later",
    });
    g.stop();
  });

  test("declared body bytes are bounded, evicting the oldest reads until the newcomer fits", () => {
    const g = guards(100, 100);
    const [a, b, c] = [admitted(g.admit("r", 40)), admitted(g.admit("r", 40)), admitted(g.admit("r", 20))];
    const d = admitted(g.admit("r", 50)); // 100 + 50: a and b go
    expect([a, b, c, d].map((x) => x.reading.calledOff !== undefined)).toEqual([true, true, false, false]);
    for (const x of [c, d]) x.reading.done();
    expect(g.admit("r", 40)).toEqual({
      ok: false,
      retryAfterSeconds: 1,
      reason: "too many request bytes in flight; retry later",
    });
    c.release();
    expect(g.admit("r", 40).ok).toBe(true);
    g.stop();
  });

  test("the per-receiver cap evicts only that receiver's reads", () => {
    const g = guards(1000);
    const other = admitted(g.admit("other"));
    const mine = Array.from({ length: MAX_CONCURRENT_PER_RECEIVER }, () => admitted(g.admit("r")));
    admitted(g.admit("r"));
    expect(other.reading.calledOff !== undefined).toBe(false);
    expect(mine[0]!.reading.calledOff !== undefined).toBe(true);
    expect(mine.slice(1).some((a) => a.reading.calledOff !== undefined)).toBe(false);
    g.stop();
  });
});

describe("delivery ids are remembered per receiver, for a bounded number of receivers", () => {
  const guards = () =>
    new DeliveryGuards({
      valid: { rate: 0, burst: 0 },
      failed: { rate: 0, burst: 0 },
      maxConcurrent: 10,
      replayWindowMs: 0,
    });

  test("are remembered per receiver: one receiver's deliveries never push out another's", () => {
    const g = guards();
    g.succeeded("ns/quiet", "id-1", undefined);
    for (let i = 0; i < 10 * DELIVERY_IDS_PER_RECEIVER; i++) g.succeeded("ns/busy", `busy-${i}`, undefined);
    expect(g.isDuplicate("ns/quiet", "id-1")).toBe(true);
    expect(g.isDuplicate("ns/busy", "id-1")).toBe(false);
    // The busy one keeps its own latest ids.
    expect(g.isDuplicate("ns/busy", `busy-${10 * DELIVERY_IDS_PER_RECEIVER - 1}`)).toBe(true);
    expect(g.isDuplicate("ns/busy", "busy-0")).toBe(false);
    g.stop();
  });

  test("at most DELIVERY_ID_RECEIVERS receivers keep ids, the least recently delivered forgotten first", () => {
    const g = guards();
    for (let i = 0; i <= DELIVERY_ID_RECEIVERS; i++) g.succeeded(`ns/r${i}`, "id", undefined);
    expect(g.isDuplicate("ns/r0", "id")).toBe(false);
    expect(g.isDuplicate("ns/r1", "id")).toBe(true);
    expect(g.isDuplicate(`ns/r${DELIVERY_ID_RECEIVERS}`, "id")).toBe(true);
    g.stop();
  });
});
