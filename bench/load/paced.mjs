// Open-model load at a constant arrival rate, for latency at a given fraction of the maximum rate
// (autocannon's per-second rate limit sends each second's quota in a burst, which measures
// queueing, not the server). In its own Node process.
//
//   node bench/load/paced.mjs SPEC.json
//
// SPEC: { url, requests: [{ method, path, headers, body }], rate, durationSeconds, connections,
//         deliveryIdHeader? }
// Requests are started on a 1 ms tick: every request due by then is sent, over a pool of
// keep-alive connections. Latency runs from the time the request was due (so time spent waiting
// for a free connection or a late tick counts, avoiding coordinated omission) to the end of its
// answer; `p50FromSend`/`p99FromSend` time it from the send, as closed-model tools do.
// Prints one JSON line like closed.mjs.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { Pool } from "undici";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const pool = new Pool(spec.url, { connections: spec.connections ?? 64, pipelining: 1, keepAliveTimeout: 30_000 });
const total = Math.round(spec.rate * spec.durationSeconds);
const latencies = [];
const fromSend = [];
const statuses = {};
let socketErrors = 0;
let inFlight = 0;
let maxInFlight = 0;

async function send(i, due) {
  const r = spec.requests[i % spec.requests.length];
  const headers = spec.deliveryIdHeader ? { ...r.headers, [spec.deliveryIdHeader]: randomUUID() } : r.headers;
  const sentAt = performance.now();
  inFlight++;
  if (inFlight > maxInFlight) maxInFlight = inFlight;
  try {
    const res = await pool.request({ path: r.path, method: r.method ?? "POST", headers, body: r.body });
    await res.body.dump();
    statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    const end = performance.now();
    latencies.push(end - due);
    fromSend.push(end - sentAt);
  } catch {
    socketErrors++;
  } finally {
    inFlight--;
  }
}

const interval = 1000 / spec.rate;
const start = performance.now();
const pending = [];
let sent = 0;
// Bounded: the loop ends after `total` requests, and in any case after twice the duration.
while (sent < total && performance.now() - start < spec.durationSeconds * 2000) {
  const now = performance.now();
  while (sent < total && start + sent * interval <= now) {
    pending.push(send(sent, start + sent * interval));
    sent++;
  }
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await Promise.all(pending);
const elapsedMs = performance.now() - start;
await pool.close();

latencies.sort((a, b) => a - b);
fromSend.sort((a, b) => a - b);
const pctOf = (xs, p) => (xs.length === 0 ? null : xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]);
const pct = (p) => pctOf(latencies, p);
console.log(
  JSON.stringify({
    answered: latencies.length,
    statuses,
    socketErrors,
    timeouts: 0,
    rps: latencies.length / (elapsedMs / 1000),
    p50: pct(50),
    p99: pct(99),
    max: latencies.at(-1) ?? null,
    // The same, timed from the moment each request was handed to the pool (as wrk and autocannon time it).
    p50FromSend: pctOf(fromSend, 50),
    p99FromSend: pctOf(fromSend, 99),
    elapsedMs,
    maxInFlight,
  }),
);
