/**
 * shared/concurrency.ts: the bounded map the action and the server share, and the gate. Each call
 * of `work` returns a promise the test settles by hand, so order and concurrency are observed
 * exactly, with no timer.
 */
import { describe, expect, test } from "bun:test";
import { gate, mapPool } from "../../shared";

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

describe("gate", () => {
  /** `count` calls through one gate of `limit`, each waiting until the test settles it. */
  function controlledGate(limit: number, count: number) {
    const through = gate(limit);
    const started: Array<{ n: number; resolve: () => void; reject: (error: Error) => void }> = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const results = Array.from({ length: count }, (_, n) =>
      through(() => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        return new Promise<number>((resolve, reject) => {
          started.push({
            n,
            resolve: () => {
              inFlight--;
              resolve(n);
            },
            reject: (error) => {
              inFlight--;
              reject(error);
            },
          });
        });
      }),
    );
    for (const result of results) result.catch(() => {});
    return { started, results, mostInFlight: () => mostInFlight };
  }

  test("runs at most `limit` at once; the others start in the order they came as slots free", async () => {
    const g = controlledGate(2, 5);
    await settle();
    expect(g.started.map((s) => s.n)).toEqual([0, 1]);
    g.started[1]?.resolve();
    await settle();
    expect(g.started.map((s) => s.n)).toEqual([0, 1, 2]);
    g.started[0]?.resolve();
    g.started[2]?.resolve();
    await settle();
    expect(g.started.map((s) => s.n)).toEqual([0, 1, 2, 3, 4]);
    for (const s of g.started) s.resolve();
    expect(await Promise.all(g.results)).toEqual([0, 1, 2, 3, 4]);
    expect(g.mostInFlight()).toBe(2);
  });

  test("a rejected call frees its slot and rejects only its own caller", async () => {
    const g = controlledGate(1, 2);
    await settle();
    g.started[0]?.reject(new Error("refused"));
    await settle();
    await expect(g.results[0] as Promise<number>).rejects.toThrow("refused");
    expect(g.started.map((s) => s.n)).toEqual([0, 1]);
    g.started[1]?.resolve();
    expect(await g.results[1]).toBe(1);
  });

  test("a call made after the gate emptied starts at once", async () => {
    const through = gate(1);
    expect(await through(async () => "a")).toBe("a");
    expect(await through(async () => "b")).toBe("b");
  });

  test.each([0, -1, 1.5, Number.NaN])("a limit of %p is a bug: it throws", (limit) => {
    expect(() => gate(limit)).toThrow(RangeError);
  });
});
