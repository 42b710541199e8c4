/**
 * shared/concurrency.ts: the bounded map the action and the server share. Each call of `work`
 * returns a promise the test settles by hand, so order and concurrency are observed exactly, with
 * no timer.
 */
import { describe, expect, test } from "bun:test";
import { mapPool } from "../../shared";

/** A map over `items` whose calls wait until the test settles them. */
function controlledMap<T>(items: readonly T[], limit: number) {
  const calls: Array<{ item: T; index: number; resolve: (value: string) => void; reject: (error: Error) => void }> = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const result = mapPool(items, limit, (item, index) => {
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    return new Promise<string>((resolve, reject) => {
      const settle =
        <V>(then: (value: V) => void) =>
        (value: V) => {
          inFlight--;
          then(value);
        };
      calls.push({ item, index, resolve: settle(resolve), reject: settle(reject) });
    });
  });
  result.catch(() => {}); // a test that expects a rejection awaits it itself
  return { result, calls, mostInFlight: () => mostInFlight };
}

/** Lets every settled promise's continuation run (a worker taking its next item). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe("mapPool", () => {
  test("keeps the order of the items, whatever order the work finishes in", async () => {
    const map = controlledMap(["a", "b", "c"], 3);
    await settle();
    for (const i of [2, 0, 1]) map.calls[i]?.resolve(`done ${map.calls[i]?.item}`);
    expect(await map.result).toEqual(["done a", "done b", "done c"]);
  });

  test("runs at most `limit` at once, and starts the next item as one finishes", async () => {
    const map = controlledMap([1, 2, 3, 4, 5], 2);
    await settle();
    expect(map.calls.map((c) => c.item)).toEqual([1, 2]);
    map.calls[1]?.resolve("2");
    await settle();
    expect(map.calls.map((c) => c.item)).toEqual([1, 2, 3]);
    for (let n = 0; n < 5; n++) {
      for (const call of map.calls) call.resolve(String(call.item));
      await settle();
    }
    expect(await map.result).toEqual(["1", "2", "3", "4", "5"]);
    expect(map.mostInFlight()).toBe(2);
  });

  test("gives the work each item's index", async () => {
    expect(await mapPool(["x", "y", "z"], 2, async (item, index) => `${index}:${item}`)).toEqual(["0:x", "1:y", "2:z"]);
  });

  test("an empty list calls nothing", async () => {
    let called = 0;
    expect(await mapPool([], 4, async () => called++)).toEqual([]);
    expect(called).toBe(0);
  });

  test("a limit above the number of items starts them all at once", async () => {
    const map = controlledMap(["a", "b"], 16);
    await settle();
    expect(map.calls).toHaveLength(2);
    for (const call of map.calls) call.resolve(call.item);
    expect(await map.result).toEqual(["a", "b"]);
  });

  test("a rejection rejects the map at once, and no item starts after it", async () => {
    const map = controlledMap([1, 2, 3, 4], 2);
    await settle();
    map.calls[0]?.reject(new Error("bug in work"));
    await settle();
    await expect(map.result).rejects.toThrow("bug in work");
    map.calls[1]?.resolve("2");
    await settle();
    expect(map.calls.map((c) => c.item)).toEqual([1, 2]);
  });

  test.each([0, -1, 1.5, Number.NaN])("a limit of %p is a bug: it throws", async (limit) => {
    await expect(mapPool([1], limit, async (n) => n)).rejects.toThrow(RangeError);
  });
});
