/**
 * @module action/deliver
 * Delivers one request with a retry policy fit for a POST webhook. The HTTP client's own retries
 * are not used: `@actions/http-client` never retries a POST, and a generic retry would resend on
 * a 4xx that cannot change.
 *
 * - Extra attempts only after a connection error, a timeout, 429 or 5xx; never after another 4xx,
 *   a redirect (not followed: following a POST drops the body or leaks the path) or a TLS trust
 *   failure.
 * - Exponential backoff with jitter; a receiver's `Retry-After` replaces it. A `Retry-After`
 *   longer than MAX_RETRY_AFTER_MS ends the delivery instead of stalling the job.
 * - Bounded: at most `retries + 1` attempts of at most `timeoutMs` each, and at most
 *   MAX_RETRY_AFTER_MS between two attempts.
 * - The same request (body, signature, delivery id) is resent, so a receiver can deduplicate.
 *
 * The clock, the sleep, the randomness and the transport are injected, so the policy is tested
 * without a network or wall-clock time.
 */
import { backoffDelayMs, type Backoff } from "../shared";
import { inert } from "./inert";
import type { OutgoingRequest, Send, SendResult } from "./vocabulary";

/** Retry pauses: 0.5-1 s, then 1-2 s, 2-4 s ..., at most 30 s (shared/backoff.ts, as the server's). */
export const BACKOFF: Backoff = { baseMs: 1000, capMs: 30_000 };
export const MAX_RETRY_AFTER_MS = 60_000;

export interface AttemptRecord {
  readonly attempt: number;
  readonly result: SendResult;
  readonly durationMs: number;
  /** The pause before the next attempt, when there is one. */
  readonly nextDelayMs?: number;
}

export type FailureKind = "status" | "redirect" | "network" | "retry-after-too-long";

export type Outcome =
  | {
      readonly ok: true;
      readonly status: number;
      readonly attempts: readonly AttemptRecord[];
      readonly durationMs: number;
    }
  | {
      readonly ok: false;
      readonly kind: FailureKind;
      /** The last HTTP status, when the receiver answered at all. */
      readonly status: number | undefined;
      readonly attempts: readonly AttemptRecord[];
      readonly durationMs: number;
    };

export interface DeliverDeps {
  readonly send: Send;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly random: () => number;
  readonly log: (line: string) => void;
}

export interface DeliverOptions {
  readonly retries: number;
  readonly timeoutMs: number;
  /** How much of an answer is read (the whole of it when wait-for needs its targets). */
  readonly maxAnswerBytes?: number;
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date) || !/[a-z]/i.test(trimmed)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Whether a result may change on another attempt. */
export function isRetryable(result: SendResult): boolean {
  if (result.kind === "error") return result.error.retryable;
  return result.status === 429 || result.status >= 500;
}

const describe = (result: SendResult): string =>
  result.kind === "response" ? `HTTP ${result.status}` : inert(`${result.error.code}: ${result.error.message}`);

export async function deliver(req: OutgoingRequest, options: DeliverOptions, deps: DeliverDeps): Promise<Outcome> {
  const started = deps.now();
  const attempts: AttemptRecord[] = [];
  const maxAttempts = options.retries + 1;
  const finish = (kind: FailureKind | undefined, result: SendResult): Outcome => {
    const durationMs = deps.now() - started;
    const status = result.kind === "response" ? result.status : undefined;
    if (kind === undefined && status !== undefined) return { ok: true, status, attempts, durationMs };
    return { ok: false, kind: kind ?? "network", status, attempts, durationMs };
  };

  for (let attempt = 1; ; attempt++) {
    const t0 = deps.now();
    const result = await deps.send(req, options.timeoutMs, options.maxAnswerBytes);
    const durationMs = deps.now() - t0;
    deps.log(`Attempt ${attempt}/${maxAttempts}: ${describe(result)} after ${durationMs} ms`);

    if (result.kind === "response" && result.status >= 200 && result.status < 300) {
      attempts.push({ attempt, result, durationMs });
      return finish(undefined, result);
    }
    if (result.kind === "response" && result.status >= 300 && result.status < 400) {
      attempts.push({ attempt, result, durationMs });
      return finish("redirect", result);
    }
    const failure: FailureKind = result.kind === "error" ? "network" : "status";
    if (!isRetryable(result) || attempt >= maxAttempts) {
      attempts.push({ attempt, result, durationMs });
      return finish(failure, result);
    }

    const retryAfter =
      result.kind === "response" ? parseRetryAfter(result.headers["retry-after"], deps.now()) : undefined;
    if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) {
      attempts.push({ attempt, result, durationMs });
      deps.log(
        `The receiver asked to retry after ${Math.ceil(retryAfter / 1000)} s, more than ${MAX_RETRY_AFTER_MS / 1000} s: giving up.`,
      );
      return finish("retry-after-too-long", result);
    }
    const delay = retryAfter ?? backoffDelayMs(BACKOFF, attempt, deps.random());
    attempts.push({ attempt, result, durationMs, nextDelayMs: delay });
    deps.log(`Retrying in ${(delay / 1000).toFixed(1)} s${retryAfter !== undefined ? " (Retry-After)" : ""}.`);
    await deps.sleep(delay);
  }
}
