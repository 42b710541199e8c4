/**
 * @module shared/backoff
 * The one retry-delay formula of the tree (server and action): exponential from a base, capped,
 * with "equal jitter" (half fixed, half random), so retries that start together spread out yet
 * never come back at once.
 */

export interface Backoff {
  /** Delay of the first retry, in ms. */
  readonly baseMs: number;
  /** No delay exceeds this, in ms. */
  readonly capMs: number;
}

/**
 * Delay before retry number `retry` (1-based): base * 2^(retry-1) capped at `capMs`, of which
 * the upper half is scaled by `random` (a number in [0, 1), injected so tests can fix it).
 */
export function backoffDelayMs(backoff: Backoff, retry: number, random: number = Math.random()): number {
  // The exponent is clamped so a long outage never overflows to Infinity before the cap applies.
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(Math.max(retry - 1, 0), 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
