/**
 * The metrics an operator needs beyond the deliveries, read from a real scrape of a server running
 * against the test API server: Flux's labelling of the receiver listener, Flux's runtime reconcile
 * histogram, watches, leader status, Kubernetes API requests, Secret read and status write
 * failures, and process metrics that are true under Bun (no nodejs_* series).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { RECONCILE_BUCKETS } from "../../server/observe/metrics";
import { githubExample } from "../support/payloads";
import { startStack, waitFor, type Stack } from "../support/stack";
import { GIT, RECEIVER } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const TOKEN = "operator-metrics-token";
const NS = "ops";
const push = githubExample("push");
const WEBAPP = [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }];

let stack: Stack;
let path: string;
beforeAll(async () => {
  stack = await startStack();
  path = await stack.readyReceiver(NS, "github", {
    type: "github",
    token: TOKEN,
    secretName: "webhook-token",
    targets: WEBAPP,
  });
  const res = await stack.post(path, {
    headers: githubHeaders(TOKEN, push, { delivery: "ops-1" }),
    body: push,
  });
  expect(res.status).toBe(200);
});
afterAll(() => stack.stop());

async function scrape(): Promise<string> {
  const res = await fetch(`${stack.fluxhook.metricsUrl}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of the one sample named exactly `series` (name and labels as printed). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("Flux's labelling", () => {
  test('every request on the receiver listener is handler="/hook/", whatever its path', async () => {
    const receiver = stack.fluxhook.receiverUrl;
    for (const p of ["/", "/healthz", "/metrics", "/hook", "/favicon.ico"])
      expect((await fetch(`${receiver}${p}`, { method: "GET" })).status).toBeGreaterThanOrEqual(400);
    const text = await scrape();
    expect(text).not.toContain('handler="other"');
    expect(
      sample(
        text,
        'gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/",method="GET",code="404"}',
      ) ?? 0,
    ).toBeGreaterThan(0);
    for (const line of text.split("\n").filter((l) => l.startsWith("gotk_receiver_http_")))
      expect(line).toContain('handler="/hook/"');
  });

  test("gotk_reconcile_duration_seconds{kind=Receiver} as Flux's runtime exports it", async () => {
    const text = await scrape();
    const labels = `kind="Receiver",name="github",namespace="${NS}"`;
    // Reconciled at least once: decided, its status written.
    expect(sample(text, `gotk_reconcile_duration_seconds_count{${labels}}`)).toBeGreaterThanOrEqual(1);
    expect(sample(text, `gotk_reconcile_duration_seconds_sum{${labels}}`)).toBeGreaterThan(0);
    // Flux's buckets: ExponentialBucketsRange(10ms, 30 min, 10).
    expect(RECONCILE_BUCKETS.length).toBe(10);
    expect(RECONCILE_BUCKETS[0]).toBeCloseTo(0.01, 10);
    expect(RECONCILE_BUCKETS[9]).toBeCloseTo(1800, 6);
    expect(text).toContain(`gotk_reconcile_duration_seconds_bucket{le="1800",${labels}}`);
  });

  test("a deleted Receiver's reconcile series goes with it", async () => {
    await stack.readyReceiver(NS, "short-lived", {
      type: "generic",
      token: TOKEN,
      secretName: "webhook-token",
      targets: WEBAPP,
    });
    const series = `gotk_reconcile_duration_seconds_count{kind="Receiver",name="short-lived",namespace="${NS}"}`;
    await waitFor("the reconcile to be recorded", async () => sample(await scrape(), series) !== undefined);
    stack.api.store.delete(RECEIVER, "Receiver", NS, "short-lived");
    await waitFor("the series to be removed", async () => sample(await scrape(), series) === undefined);
  });
});

describe("what an operator needs", () => {
  test("each watch connected, and the leader status under controller-runtime's name", async () => {
    const text = await scrape();
    expect(sample(text, 'fluxhook_watch_connected{resource="receivers"}')).toBe(1);
    expect(sample(text, 'fluxhook_watch_connected{resource="secrets"}')).toBe(1);
    expect(sample(text, 'leader_election_master_status{name="fluxhook-leader-election"}')).toBe(1);
  });

  test("a watch that drops reads 0 until it reconnects", async () => {
    // Every watch of Receivers refused: the reflector retries, the gauge says so.
    const fault = stack.api.faults.add({
      path: /receivers$/,
      watch: true,
      times: Number.POSITIVE_INFINITY,
      respond: { status: 503 },
    });
    try {
      stack.api.dropWatches();
      await waitFor(
        "the receivers watch to read 0",
        async () => sample(await scrape(), 'fluxhook_watch_connected{resource="receivers"}') === 0,
      );
    } finally {
      fault.remove();
    }
    await waitFor(
      "the receivers watch to read 1 again",
      async () => sample(await scrape(), 'fluxhook_watch_connected{resource="receivers"}') === 1,
    );
  });

  test("Kubernetes API requests by method and code, as client-go counts them", async () => {
    const text = await scrape();
    const host = new URL(stack.api.url).host;
    // Lists and watches (GET), the status and annotation patches (PATCH).
    expect(sample(text, `rest_client_requests_total{code="200",host="${host}",method="GET"}`)).toBeGreaterThan(0);
    expect(sample(text, `rest_client_requests_total{code="200",host="${host}",method="PATCH"}`)).toBeGreaterThan(0);
  });

  test("a failed Secret read and a failed status write are counted", async () => {
    const before = await scrape();
    const reads = sample(before, "fluxhook_secret_read_failures_total") ?? 0;
    const writes = sample(before, "fluxhook_status_write_failures_total") ?? 0;
    const failSecret = stack.api.faults.add({
      method: "GET",
      path: `/api/v1/namespaces/${NS}/secrets/other-token`,
      respond: { status: 500 },
    });
    const failStatus = stack.api.faults.add({
      method: "PATCH",
      path: /receivers\/other\/status$/,
      respond: { status: 500 },
    });
    try {
      stack.makeReceiver(NS, "other", {
        type: "generic",
        token: "other-token-value",
        targets: WEBAPP,
      });
      await waitFor("both failures to be counted", async () => {
        const text = await scrape();
        return (
          (sample(text, "fluxhook_secret_read_failures_total") ?? 0) > reads &&
          (sample(text, "fluxhook_status_write_failures_total") ?? 0) > writes
        );
      });
    } finally {
      failSecret.remove();
      failStatus.remove();
    }
    // Both were retried and landed.
    await stack.readyPath(NS, "other");
    const text = await scrape();
    expect(text).toMatch(/rest_client_requests_total\{code="500",host="[^"]+",method="GET"\} [1-9]/);
  });
});

describe("process metrics under Bun", () => {
  test("no nodejs_* series; process_* kept; the runtime's version and heap instead", async () => {
    const text = await scrape();
    expect(text.split("\n").filter((l) => l.startsWith("nodejs_") || l.startsWith("# TYPE nodejs_"))).toEqual([]);
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      "process_open_fds",
      "process_max_fds",
    ])
      expect(text).toContain(`# TYPE ${name} `);
    expect(sample(text, `fluxhook_runtime_info{runtime="bun",version="${Bun.version}"}`)).toBe(1);
    expect(sample(text, "fluxhook_runtime_heap_size_bytes")).toBeGreaterThan(1_000_000);
  });

  test("process_resident_memory_bytes and process_open_fds are this process's", async () => {
    const text = await scrape();
    const rss = sample(text, "process_resident_memory_bytes")!;
    const status = readFileSync("/proc/self/status", "utf8");
    const vmRss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    // Read a moment apart: within a quarter of each other.
    expect(Math.abs(rss - vmRss) / vmRss).toBeLessThan(0.25);
    expect(sample(text, "process_open_fds")).toBeGreaterThan(3);
  });
});
