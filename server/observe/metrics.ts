/**
 * @module server/observe/metrics
 * Prometheus metrics, served on --metrics-addr.
 *
 * Flux's receiver metrics keep their names and labels (go-http-metrics with the `gotk_receiver`
 * prefix), so existing dashboards keep working. One deliberate difference: with
 * --export-http-path-metrics Flux labels requests with the full path, whose digest is the
 * receiver's secret; fluxhook labels them `/hook/<namespace>/<name>` instead, which is what such a
 * dashboard wants and leaks nothing.
 *
 * fluxhook's own metrics count deliveries by receiver, type and outcome, annotations by kind and
 * outcome, and Receivers by readiness. Label values are bounded: receiver names come from the
 * cluster, never from a request.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { GaugeValues, PendingCounts, SeriesHistogram } from "./metrics-series";
import type { DeliveryOutcome } from "../delivery/delivery";
import { OUTCOMES } from "../delivery/outcomes";
import { keyString } from "../api/receiver";

/** prometheus.DefBuckets, as go-http-metrics uses for durations. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** prometheus.ExponentialBuckets(100, 10, 8), as go-http-metrics uses for sizes. */
const SIZE_BUCKETS = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

export interface ReceiverCounts {
  ready: number;
  notReady: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** Records one HTTP request on the receiver listener. */
  observeRequest(handler: string, method: string, status: number, seconds: number, bytes: number): void;
  inflight(handler: string, delta: 1 | -1): void;
  observeDelivery(outcome: DeliveryOutcome): void;
}

export function createMetrics(receiverCounts: () => ReceiverCounts): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // The per-request series are recorded by key, without prom-client's per-observation label
  // hashing (observe/metrics-series.ts); prom-client still formats them.
  const duration = new SeriesHistogram(
    "gotk_receiver_http_request_duration_seconds",
    "The latency of the HTTP requests.",
    DURATION_BUCKETS,
  );
  const size = new SeriesHistogram(
    "gotk_receiver_http_response_size_bytes",
    "The size of the HTTP responses.",
    SIZE_BUCKETS,
  );
  registry.registerMetric(duration as never);
  registry.registerMetric(size as never);
  const inflightValues = new GaugeValues();
  new Gauge({
    name: "gotk_receiver_http_requests_inflight",
    help: "The number of inflight requests being handled at the same time.",
    labelNames: ["service", "handler"],
    registers: [registry],
    collect() {
      inflightValues.setInto(this);
    },
  });
  const deliveryCounts = new PendingCounts();
  new Counter({
    name: "fluxhook_deliveries_total",
    help: "Webhook deliveries by receiver (namespace/name, empty for unknown paths), type and outcome.",
    labelNames: ["receiver", "type", "outcome"],
    registers: [registry],
    collect() {
      deliveryCounts.flushInto(this);
    },
  });
  const annotations = new Counter({
    name: "fluxhook_annotations_total",
    help: "Reconcile requests (requestedAt annotations) by target kind and outcome.",
    labelNames: ["kind", "outcome"],
    registers: [registry],
  });
  new Gauge({
    name: "fluxhook_receivers",
    help: "Receivers known to fluxhook, by readiness.",
    labelNames: ["ready"],
    registers: [registry],
    collect() {
      const counts = receiverCounts();
      this.set({ ready: "true" }, counts.ready);
      this.set({ ready: "false" }, counts.notReady);
    },
  });

  return {
    registry,
    observeRequest(handler, method, status, seconds, bytes) {
      const key = `${handler} ${method} ${status}`;
      const labels = () => ({ service: "", handler, method, code: String(status) });
      duration.observe(key, labels, seconds);
      size.observe(key, labels, bytes);
    },
    inflight(handler, delta) {
      inflightValues.add(handler, () => ({ service: "", handler }), delta);
    },
    observeDelivery(outcome) {
      const receiver = outcome.receiver ? keyString(outcome.receiver) : "";
      const type = outcome.receiverType ?? "";
      const result = OUTCOMES[outcome.kind].metric;
      deliveryCounts.inc(`${receiver} ${type} ${result}`, () => ({ receiver, type, outcome: result }));
      for (const t of outcome.targets ?? []) annotations.inc({ kind: t.kind, outcome: t.outcome });
    },
  };
}

/** The metrics listener's app: GET /metrics in Prometheus' text format. */
export function metricsHandler(metrics: Metrics) {
  return async (req: Request): Promise<Response> => {
    if (new URL(req.url).pathname !== "/metrics") return new Response("not found\n", { status: 404 });
    return new Response(await metrics.registry.metrics(), {
      headers: { "content-type": metrics.registry.contentType },
    });
  };
}

/** Methods a label may name; anything else is "other", so a sender cannot mint label values. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]);

type FetchHandler = (req: Request, server: import("bun").Server<unknown>) => Response | Promise<Response>;

/**
 * Wraps a listener's fetch with go-http-metrics' three measurements. A synchronous answer stays
 * synchronous (no promise per request where the handler needed none).
 */
export function instrumentFetch(
  metrics: Metrics,
  fetch: FetchHandler,
  handlerOf: (req: Request) => string,
  bytesOf: (res: Response) => number,
): FetchHandler {
  return (req, server) => {
    const handler = handlerOf(req);
    const started = performance.now();
    metrics.inflight(handler, 1);
    const done = (res: Response) => {
      metrics.inflight(handler, -1);
      const bytes = bytesOf(res);
      const method = KNOWN_METHODS.has(req.method) ? req.method : "other";
      metrics.observeRequest(handler, method, res.status, (performance.now() - started) / 1000, bytes);
      return res;
    };
    const failed = (err: unknown): never => {
      metrics.inflight(handler, -1);
      throw err;
    };
    let res: Response | Promise<Response>;
    try {
      res = fetch(req, server);
    } catch (err) {
      return failed(err);
    }
    return res instanceof Promise ? res.then(done, failed) : done(res);
  };
}
