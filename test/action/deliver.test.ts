import { describe, expect, test } from "bun:test";
import { backoffDelayMs } from "../../shared";
import {
  BACKOFF,
  deliver,
  isRetryable,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  type DeliverDeps,
} from "../../action/deliver";
import type { OutgoingRequest, ErrorCategory, SendResult } from "../../action/vocabulary";

const REQ: OutgoingRequest = { method: "POST", url: "http://h/hook/x", headers: {}, body: new Uint8Array() };

const http = (status: number, headers: Record<string, string> = {}, body = ""): SendResult => ({
  kind: "response",
  status,
  headers,
  body,
  bodyTruncated: false,
});
const net = (category: ErrorCategory, code: string, retryable: boolean): SendResult => ({
  kind: "error",
  error: { category, code, message: code, retryable },
});
const REFUSED = net("refused", "ECONNREFUSED", true);
const TIMEOUT = net("timeout", "TimeoutError", true);
const UNTRUSTED = net("tls-verify", "SELF_SIGNED_CERT_IN_CHAIN", false);

/** A fake world: scripted results, a virtual clock advanced by sleep, a fixed random. */
function world(results: readonly SendResult[], random = 0.5) {
  let clock = 1_000_000;
  const sleeps: number[] = [];
  const sent: number[] = [];
  const deps: DeliverDeps = {
    send: async () => {
      sent.push(clock);
      clock += 10;
      return results[Math.min(sent.length - 1, results.length - 1)] as SendResult;
    },
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    now: () => clock,
    random: () => random,
    log: () => {},
  };
  return { deps, sleeps, sent };
}

describe("deliver", () => {
  test.each([
    {
      name: "200 at once",
      results: [http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "202 is success",
      results: [http(202)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 202,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "503, 503, 200",
      results: [http(503), http(503), http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 3,
      sleeps: [750, 1500],
    },
    {
      name: "refused, timeout, 200",
      results: [REFUSED, TIMEOUT, http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 3,
      sleeps: [750, 1500],
    },
    {
      name: "429 then 200",
      results: [http(429), http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 2,
      sleeps: [750],
    },
    {
      name: "5xx until out of retries",
      results: [http(502)],
      retries: 3,
      ok: false,
      kind: "status",
      status: 502,
      attempts: 4,
      sleeps: [750, 1500, 3000],
    },
    {
      name: "refused until out of retries",
      results: [REFUSED],
      retries: 2,
      ok: false,
      kind: "network",
      status: undefined,
      attempts: 3,
      sleeps: [750, 1500],
    },
    {
      name: "no retries",
      results: [http(503)],
      retries: 0,
      ok: false,
      kind: "status",
      status: 503,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "400 is never retried",
      results: [http(400)],
      retries: 3,
      ok: false,
      kind: "status",
      status: 400,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "404 is never retried",
      results: [http(404)],
      retries: 3,
      ok: false,
      kind: "status",
      status: 404,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "408 is a 4xx: not retried",
      results: [http(408)],
      retries: 3,
      ok: false,
      kind: "status",
      status: 408,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "a redirect is not followed",
      results: [http(301, { location: "https://x/" })],
      retries: 3,
      ok: false,
      kind: "redirect",
      status: 301,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "307 too",
      results: [http(307)],
      retries: 3,
      ok: false,
      kind: "redirect",
      status: 307,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "an untrusted certificate is not retried",
      results: [UNTRUSTED],
      retries: 3,
      ok: false,
      kind: "network",
      status: undefined,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "Retry-After replaces the backoff",
      results: [http(503, { "retry-after": "7" }), http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 2,
      sleeps: [7000],
    },
    {
      name: "Retry-After: 0",
      results: [http(429, { "retry-after": "0" }), http(200)],
      retries: 3,
      ok: true,
      kind: undefined,
      status: 200,
      attempts: 2,
      sleeps: [0],
    },
    {
      name: "a Retry-After above the limit ends the delivery",
      results: [http(503, { "retry-after": String(MAX_RETRY_AFTER_MS / 1000 + 1) })],
      retries: 3,
      ok: false,
      kind: "retry-after-too-long",
      status: 503,
      attempts: 1,
      sleeps: [],
    },
    {
      name: "a 5xx after a network error reports the status",
      results: [REFUSED, http(500)],
      retries: 1,
      ok: false,
      kind: "status",
      status: 500,
      attempts: 2,
      sleeps: [750],
    },
  ])("$name", async ({ results, retries, ok, kind, status, attempts, sleeps }) => {
    const w = world(results);
    const outcome = await deliver(REQ, { retries, timeoutMs: 1000 }, w.deps);
    expect({
      ok: outcome.ok,
      kind: outcome.ok ? undefined : outcome.kind,
      status: outcome.status,
      attempts: outcome.attempts.length,
      sleeps: w.sleeps,
    }).toEqual({ ok, kind, status, attempts, sleeps: [...sleeps] });
  });

  test("records each attempt, its duration and the pause after it; the total includes the pauses", async () => {
    const w = world([http(503), http(200)]);
    const outcome = await deliver(REQ, { retries: 1, timeoutMs: 1000 }, w.deps);
    expect(outcome.attempts.map((a) => [a.attempt, a.durationMs, a.nextDelayMs])).toEqual([
      [1, 10, 750],
      [2, 10, undefined],
    ]);
    expect(outcome.durationMs).toBe(770);
  });

  test("passes the per-attempt timeout to the transport", async () => {
    const seen: number[] = [];
    const w = world([http(200)]);
    const send = async (_req: OutgoingRequest, timeoutMs: number): Promise<SendResult> => {
      seen.push(timeoutMs);
      return http(200);
    };
    await deliver(REQ, { retries: 0, timeoutMs: 4321 }, { ...w.deps, send });
    expect(seen).toEqual([4321]);
  });
});

describe("the action's backoff (shared/backoff.ts with BACKOFF): the pauses action.yml documents", () => {
  test.each([
    [1, 0, 500],
    [1, 0.5, 750],
    [1, 1, 1000],
    [2, 0, 1000],
    [3, 1, 4000],
    [6, 1, 30_000],
    [10, 0, 15_000],
  ])("retry %i with random %d → %i ms", (retry, random, ms) => {
    expect(backoffDelayMs(BACKOFF, retry, random)).toBe(ms);
  });
});

describe("parseRetryAfter", () => {
  const NOW = Date.parse("2026-01-01T00:00:00Z");
  test.each([
    ["absent", undefined, undefined],
    ["seconds", "120", 120_000],
    ["zero", "0", 0],
    ["padded", " 3 ", 3000],
    ["HTTP date", "Thu, 01 Jan 2026 00:00:30 GMT", 30_000],
    ["past date", "Wed, 31 Dec 2025 23:00:00 GMT", 0],
    ["negative", "-5", undefined],
    ["garbage", "soon", undefined],
    ["fractional", "1.5", undefined],
  ])("%s", (_name, value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });
});

describe("isRetryable", () => {
  test.each([
    [http(500), true],
    [http(503), true],
    [http(599), true],
    [http(429), true],
    [http(400), false],
    [http(404), false],
    [http(409), false],
    [REFUSED, true],
    [UNTRUSTED, false],
  ] as const)("%#", (result, retryable) => {
    expect(isRetryable(result)).toBe(retryable);
  });
});
