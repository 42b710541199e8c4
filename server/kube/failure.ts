/**
 * @module server/kube/failure
 * A failed API call as a value (KubeResult), and the bounded retries of a write.
 */
import { PATCH_MAX_ATTEMPTS, PATCH_RETRY_BASE_MS, PATCH_RETRY_BUDGET_MS } from "../limits";
import { backoffDelayMs } from "../../shared";
import type { KubeResult } from "./port";

/**
 * A client-node error as a short reason fit for a response body or a log line; `what` prefixes the
 * reason unless empty (the API's message names the object).
 */
export function failure(err: unknown, what: string): { ok: false; reason: string; status?: number } {
  const error = err as { code?: number; statusCode?: number; body?: unknown; name?: string };
  const status = error.code ?? error.statusCode;
  const prefix = what ? `${what}: ` : "";
  if (timedOut(err)) return { ok: false, reason: `${prefix}Kubernetes API timed out` };
  if (typeof status === "number") {
    let message = "";
    try {
      const body = typeof error.body === "string" ? JSON.parse(error.body) : error.body;
      message = typeof body?.message === "string" ? body.message : "";
    } catch {
      // not a Status object
    }
    if (status === 404) return { ok: false, status, reason: `${prefix}not found` };
    return { ok: false, status, reason: `${prefix}${message || `Kubernetes API answered ${status}`}` };
  }
  return { ok: false, reason: `${prefix}${describe(err)}` };
}

/** An error's message without request details (client-node errors may carry headers). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0]!.slice(0, 300);
  return String(err).slice(0, 300);
}

/** A call that ended at its deadline (or was aborted) rather than with an answer. */
export function timedOut(err: unknown): boolean {
  const name = (err as Error | undefined)?.name;
  return name === "TimeoutError" || name === "AbortError";
}

/** Retry-After of a 429 (or 503) answer, in milliseconds. */
function retryAfterMs(err: unknown): number | undefined {
  const header = (err as { headers?: Record<string, string> }).headers?.["retry-after"];
  const seconds = header === undefined ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * Runs a write with bounded retries: on 409 (conflict), 429 (honouring Retry-After), 5xx and
 * connection errors, with jittered exponential backoff, for at most PATCH_MAX_ATTEMPTS attempts
 * and within `budgetMs` overall, so a delivery still answers inside GitHub's 10 s. A call that
 * timed out is not retried when the budget left could not fit another; 4xx other than 409/429
 * are final. Then the target counts as failed, with the last reason.
 */
export async function withRetries<T>(
  what: string,
  attempt: () => Promise<T>,
  options: { budgetMs: number; now?: () => number },
): Promise<KubeResult<T>> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  for (let attempts = 1; ; attempts++) {
    try {
      return { ok: true, value: await attempt() };
    } catch (err) {
      const result = failure(err, what);
      const status = result.status;
      const retryable = status === undefined ? !timedOut(err) : status === 409 || status === 429 || status >= 500;
      if (!retryable || attempts >= PATCH_MAX_ATTEMPTS)
        return attempts > 1 ? { ...result, reason: `${result.reason} (after ${attempts} attempts)` } : result;
      const delay =
        retryAfterMs(err) ?? backoffDelayMs({ baseMs: PATCH_RETRY_BASE_MS, capMs: PATCH_RETRY_BUDGET_MS }, attempts);
      if (now() - started + delay >= options.budgetMs)
        return { ...result, reason: `${result.reason} (after ${attempts} attempts)` };
      await Bun.sleep(delay);
    }
  }
}
