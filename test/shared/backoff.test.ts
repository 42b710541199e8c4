import { describe, expect, test } from "bun:test";
import { backoffDelayMs } from "../../shared/backoff";

const backoff = { baseMs: 100, capMs: 1_000 };

describe("backoffDelayMs", () => {
  test.each([
    [1, 0, 50],
    [1, 0.999, 100],
    [2, 0, 100],
    [3, 0.5, 300],
    [4, 0, 400],
    [5, 0, 500],
    [5, 0.999, 1_000],
    [1_000, 0.5, 750],
  ])("retry %d with random %d waits %d ms", (retry, random, expected) => {
    expect(backoffDelayMs(backoff, retry, random)).toBe(expected);
  });

  test("never waits less than half the ceiling, nor more than the cap, whatever the random draw", () => {
    for (let retry = 1; retry < 40; retry++) {
      const ceiling = Math.min(1_000, 100 * 2 ** (retry - 1));
      const low = backoffDelayMs(backoff, retry, 0);
      const high = backoffDelayMs(backoff, retry, 0.999999);
      expect(low).toBe(Math.round(ceiling / 2));
      expect(high).toBeLessThanOrEqual(1_000);
    }
  });
});
