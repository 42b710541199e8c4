// Closed-model load with autocannon, in its own Node process so the load never shares a
// JavaScript thread with a server under test.
//
//   node bench/load/closed.mjs SPEC.json
//
// SPEC: { url, requests: [{ method, path, headers, body }], connections, durationSeconds | amount,
//         deliveryIdHeader?, timeoutSeconds? }
// Each request gets a fresh delivery id in `deliveryIdHeader` (a redelivered id is a duplicate to
// fluxhook), and `requests` are sent in turn (several real payloads, each signed).
// Prints one JSON line: counts by status, socket errors and timeouts, requests/s, latency
// percentiles in ms (from each response's own timing, not autocannon's integer histogram), and
// the wall-clock time (ms since the epoch, sub-ms) at which the first and last request was written.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import autocannon from "autocannon";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const wallNow = () => performance.timeOrigin + performance.now();

const latencies = [];
const statuses = {};
let firstSentAt = Infinity;
let lastSentAt = 0;

const requests = spec.requests.map((r) => ({
  method: r.method ?? "POST",
  path: r.path,
  headers: r.headers ?? {},
  body: r.body,
  ...(spec.deliveryIdHeader
    ? {
        setupRequest: (req) => {
          req.headers = { ...r.headers, [spec.deliveryIdHeader]: randomUUID() };
          return req;
        },
      }
    : {}),
}));

const started = wallNow();
const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  ...(spec.amount ? { amount: spec.amount } : { duration: spec.durationSeconds }),
  timeout: spec.timeoutSeconds ?? 10,
  requests,
  setupClient(client) {
    client.on("request", () => {
      const t = wallNow();
      if (t < firstSentAt) firstSentAt = t;
      if (t > lastSentAt) lastSentAt = t;
    });
    client.on("response", (status, _bytes, responseTime) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      latencies.push(responseTime);
    });
  },
});
const elapsedMs = wallNow() - started;

latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
const answered = latencies.length;
console.log(
  JSON.stringify({
    answered,
    statuses,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    // Answers per second over the measured window (autocannon's duration, or the whole run for an amount).
    rps: spec.amount ? answered / (elapsedMs / 1000) : answered / spec.durationSeconds,
    p50: pct(50),
    p99: pct(99),
    max: latencies.at(-1) ?? null,
    elapsedMs,
    firstSentAt,
    lastSentAt,
  }),
);
