/**
 * @module test/support/wait
 * The tests' one wait: tests never wait for wall-clock time, they poll for a condition with a
 * deadline.
 */

/**
 * Polls `probe` until it returns a value other than undefined/false, or fails after the deadline
 * naming `what` it waited for. Polls back off from 2 ms to `maxDelayMs` (a probe that spends a
 * budget, such as a status query, polls more gently).
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  deadlineMs = 10_000,
  maxDelayMs = 50,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let delay = 2;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, maxDelayMs);
  }
}

/**
 * waitFor for a probe that sends a status query: one every 250 ms at the most, so a whole wait stays
 * within a Receiver's query budget (STATUS_QUERY_BURST, then STATUS_QUERY_RATE a second).
 */
export const waitForQueries = <T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> =>
  waitFor(what, probe, 10_000, 250);
