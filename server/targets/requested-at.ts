/**
 * @module server/targets/requested-at
 * Values for `reconcile.fluxcd.io/requestedAt`. Flux's controllers treat the value as an opaque
 * token and reconcile when it changes, so every delivery must write a value never written before.
 * fluxhook writes an RFC 3339 timestamp with nanoseconds (readable, sortable) and bumps it by one
 * nanosecond when the clock has not moved, so two deliveries in the same instant still differ.
 */

export type RequestedAtClock = () => string;

/** `nowNs` returns nanoseconds since the Unix epoch; injectable for tests. */
export function createRequestedAtClock(nowNs: () => bigint = wallClockNs()): RequestedAtClock {
  let last = 0n;
  return () => {
    let ns = nowNs();
    if (ns <= last) ns = last + 1n;
    last = ns;
    return formatRfc3339Nano(ns);
  };
}

/** Wall-clock nanoseconds: the epoch at start-up plus a monotonic high-resolution offset. */
function wallClockNs(): () => bigint {
  const originNs = BigInt(Date.now()) * 1_000_000n;
  const start = process.hrtime.bigint();
  return () => originNs + (process.hrtime.bigint() - start);
}

export function formatRfc3339Nano(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const seconds = new Date(Number(ms)).toISOString().slice(0, 19);
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${seconds}.${fraction}Z`;
}
