/**
 * The keyed work queue (server/runtime/work-queue.ts) that status writes, Secret reads, Events and
 * target coalescing share: runs the test holds open and releases by hand.
 */
import { describe, expect, test } from "bun:test";
import { WorkQueue } from "../../server/runtime/work-queue";
import { waitFor } from "../support/stack";

/** A queue whose runs wait for the test; `runs` lists the keys in the order they started. */
function held(concurrency: number, random = () => 0.5) {
  const runs: string[] = [];
  const open = new Map<string, () => void>();
  const queue = new WorkQueue({
    concurrency,
    backoff: { baseMs: 4, capMs: 8 },
    random,
    work: (key) => {
      runs.push(key);
      return new Promise<void>((resolve) => open.set(key, resolve));
    },
  });
  const finish = async (key: string) => {
    open.get(key)!();
    open.delete(key);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { queue, runs, finish };
}

describe("WorkQueue", () => {
  test("one run per key at a time; adds during a run make one trailing run", async () => {
    const { queue, runs, finish } = held(10);
    queue.add("a");
    queue.add("a");
    expect(runs).toEqual(["a"]);
    expect(queue.state("a")).toBe("running");
    queue.add("a");
    queue.add("a");
    await finish("a");
    expect(runs).toEqual(["a", "a"]);
    await finish("a");
    expect(runs).toEqual(["a", "a"]);
    expect(queue.state("a")).toBeUndefined();
  });

  test("at most `concurrency` keys run, the rest in the order they were added", async () => {
    const { queue, runs, finish } = held(2);
    for (const k of ["a", "b", "c", "d"]) queue.add(k);
    expect(runs).toEqual(["a", "b"]);
    expect(queue.running).toBe(2);
    expect(queue.state("c")).toBe("queued");
    await finish("b");
    expect(runs).toEqual(["a", "b", "c"]);
    await finish("a");
    expect(runs).toEqual(["a", "b", "c", "d"]);
  });

  test.each([
    { retry: 1, random: 0, want: 2 },
    { retry: 1, random: 0.999, want: 4 },
    { retry: 2, random: 0, want: 4 },
    { retry: 5, random: 0.999, want: 8 },
  ])("retry $retry with jitter $random waits $want ms (shared/backoff.ts)", ({ retry, random, want }) => {
    const { queue } = held(1, () => random);
    let delay = 0;
    for (let i = 0; i < retry; i++) delay = queue.retry("k");
    expect(delay).toBe(want);
    expect(queue.failures("k")).toBe(retry);
    expect(queue.state("k")).toBe("waiting to retry");
    queue.forget("k");
    expect(queue.failures("k")).toBe(0);
    queue.stop();
  });

  test("a retry runs the key again; an add before it runs it at once instead", async () => {
    const { queue, runs, finish } = held(1);
    queue.retry("a");
    await waitFor("the retry", () => runs.length === 1);
    await finish("a");
    queue.retry("b");
    queue.add("b");
    expect(runs).toEqual(["a", "b"]);
    await finish("b");
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the cancelled retry
    expect(runs).toEqual(["a", "b"]);
  });

  test("remove drops a queued key and its retry; stop drops everything and takes no more", async () => {
    const { queue, runs, finish } = held(1);
    queue.add("a");
    queue.add("b");
    queue.retry("c");
    queue.remove("b");
    queue.remove("c");
    expect([queue.state("b"), queue.state("c")]).toEqual([undefined, undefined]);
    queue.stop();
    queue.add("d");
    await finish("a");
    expect(runs).toEqual(["a"]);
  });
});
