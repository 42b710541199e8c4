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
 * outcome, and Receivers by readiness; what an operator needs besides: each watch connected, the
 * leader status and Kubernetes API requests under controller-runtime's names (so Flux's
 * control-plane dashboards read them), Secret read and status write failures, and Flux's runtime
 * `gotk_reconcile_duration_seconds` for Receivers. Label values are bounded: receiver names come
 * from the cluster, never from a request.
 *
 * Process metrics: prom-client's `process_*` read /proc and are right under Bun; its `nodejs_*`
 * are not (the GC histogram stays empty, active handles read 0, heap used exceeds heap total, the
 * version is Bun's Node compatibility version), so they are dropped, and the runtime's version and
 * JavaScriptCore's heap are exported instead.
 */
import { heapSize } from "bun:jsc";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { GaugeValues, PendingCounts, SeriesHistogram, TextHistogram } from "./metrics-series";
import { OUTCOMES, type DeliveryOutcome } from "../outcome/outcomes";
import { keyString } from "../api/receiver";

/** prometheus.DefBuckets, as go-http-metrics uses for durations. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** prometheus.ExponentialBuckets(100, 10, 8), as go-http-metrics uses for sizes. */
const SIZE_BUCKETS = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

export interface ReceiverCounts {
  ready: number;
  notReady: number;
}

/**
 * Kubernetes API requests by method, host and code, counted where the client sends them
 * (kube/client.ts `onResponse`), for `rest_client_requests_total`. Made before the client, so that
 * main.ts can give the same counts to the client it builds and to the metrics.
 */
export class ApiRequestCounts {
  readonly #counts = new PendingCounts();
  /** One request's answer: its HTTP status, or undefined when none came (client-go's "<error>"). */
  readonly record = (method: string, url: string, status: number | undefined): void => {
    const code = status === undefined ? "<error>" : String(status);
    const verb = KNOWN_METHODS.has(method) ? method : "other";
    let host = "";
    try {
      host = new URL(url).host;
    } catch {}
    this.#counts.inc(`${verb} ${host} ${code}`, () => ({ code, host, method: verb }));
  };
  flushInto(counter: Counter<string>): void {
    this.#counts.flushInto(counter);
  }
}

/** The lease name leader_election_master_status reports (kube/leader.ts LEASE_NAME). */
const LEADER_ELECTION_NAME = "fluxhook-leader-election";

/** prometheus.ExponentialBucketsRange(10e-3, 1800, 10), Flux's runtime's reconcile buckets. */
export const RECONCILE_BUCKETS = Array.from({ length: 10 }, (_, i) => 0.01 * (1800 / 0.01) ** (i / 9));

/**
 * What the reconciler and the Secret cache report as they work: failed Secret reads and status
 * writes, and each reconcile's duration. Made before them (they are told of it), and exposed by
 * the Metrics made after them, which read their state at scrape time.
 */
export class ReconcileMetrics {
  readonly #secretReadFailures = new Counter({
    name: "fluxhook_secret_read_failures_total",
    help: "Reads of a Receiver's Secret that failed (API errors, timeouts; not a Secret found absent).",
    registers: [],
  });
  readonly #statusWriteFailures = new Counter({
    name: "fluxhook_status_write_failures_total",
    help: "Receiver status writes that failed and are retried.",
    registers: [],
  });
  // A series per Receiver: written without prom-client (observe/metrics-series.ts), after the registry's.
  readonly #reconcileDuration = new TextHistogram(
    "gotk_reconcile_duration_seconds",
    "The duration in seconds of a GitOps Toolkit resource reconciliation.",
    RECONCILE_BUCKETS,
  );

  /** A Secret read that failed (not one that found it absent). */
  secretReadFailed(): void {
    this.#secretReadFailures.inc();
  }

  /** A Receiver status write that failed (not one whose Receiver was deleted meanwhile). */
  statusWriteFailed(): void {
    this.#statusWriteFailures.inc();
  }

  /** A Receiver reconciled: decided (prepared) and, when it changed, its status written. */
  reconciled(receiver: { namespace: string; name: string }, seconds: number): void {
    this.#reconcileDuration.observe(
      keyString(receiver),
      () => ({ kind: "Receiver", name: receiver.name, namespace: receiver.namespace }),
      seconds,
    );
  }

  /** A Receiver deleted: its reconcile series goes with it. */
  forgetReceiver(receiver: { namespace: string; name: string }): void {
    this.#reconcileDuration.remove(keyString(receiver));
  }

  /** Registers the counters (createMetrics). */
  registerIn(registry: Registry): void {
    registry.registerMetric(this.#secretReadFailures);
    registry.registerMetric(this.#statusWriteFailures);
  }

  /** The reconcile series in Prometheus' text format, written after the registry's. */
  expose(): string {
    return this.#reconcileDuration.expose();
  }
}

export interface MetricSources {
  readonly receiverCounts: () => ReceiverCounts;
  /** The reconciler's own metrics (made before the source of Receivers). */
  readonly reconcile: ReconcileMetrics;
  /** Each watch ("receivers", "secrets") and whether it is connected; none with --receivers-file. */
  readonly watches?: () => Readonly<Record<string, boolean>>;
  /** Whether this replica holds the Lease (always true without --enable-leader-election). */
  readonly leader?: () => boolean;
  readonly apiRequests?: ApiRequestCounts;
}

export interface Metrics {
  readonly registry: Registry;
  /** Records one HTTP request on the receiver listener. */
  observeRequest(handler: string, method: string, status: number, seconds: number, bytes: number): void;
  inflight(handler: string, delta: 1 | -1): void;
  observeDelivery(outcome: DeliveryOutcome): void;
  /** Every metric in Prometheus' text format (`registry.contentType`), as /metrics serves it. */
  exposition(): Promise<string>;
}

export function createMetrics(sources: MetricSources): Metrics {
  // Registered in this order, which is the order of the exposition.
  const registry = new Registry();
  registerRuntimeMetrics(registry);
  registerOperatorMetrics(registry, sources);
  sources.reconcile.registerIn(registry);
  const requests = registerRequestMetrics(registry);
  const deliveries = registerDeliveryMetrics(registry, sources.receiverCounts);
  return {
    registry,
    ...requests,
    ...deliveries,
    async exposition() {
      return (await registry.metrics()) + sources.reconcile.expose();
    },
  };
}

/** The process (prom-client's `process_*`), the runtime and its version, JavaScriptCore's heap. */
function registerRuntimeMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const metric of registry.getMetricsAsArray())
    if (metric.name.startsWith("nodejs_")) registry.removeSingleMetric(metric.name);
  new Gauge({
    name: "fluxhook_runtime_info",
    help: "The runtime fluxhook runs on and its version (in place of nodejs_version_info); always 1.",
    labelNames: ["runtime", "version"],
    registers: [registry],
    collect() {
      this.set({ runtime: "bun", version: Bun.version }, 1);
    },
  });
  new Gauge({
    name: "fluxhook_runtime_heap_size_bytes",
    help: "Bytes of JavaScriptCore's heap in use (bun:jsc heapSize), in place of nodejs_heap_size_used_bytes.",
    registers: [registry],
    collect() {
      this.set(heapSize());
    },
  });
}

/** What an operator watches as Flux's control-plane dashboards do: watches, the leader, API requests. */
function registerOperatorMetrics(registry: Registry, sources: MetricSources): void {
  new Gauge({
    name: "fluxhook_watch_connected",
    help: "1 while the watch of this resource (receivers, secrets) is connected, 0 while it reconnects.",
    labelNames: ["resource"],
    registers: [registry],
    collect() {
      for (const [resource, connected] of Object.entries(sources.watches?.() ?? {}))
        this.set({ resource }, connected ? 1 : 0);
    },
  });
  new Gauge({
    name: "leader_election_master_status",
    help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
    labelNames: ["name"],
    registers: [registry],
    collect() {
      this.set({ name: LEADER_ELECTION_NAME }, (sources.leader?.() ?? true) ? 1 : 0);
    },
  });
  const apiRequests = sources.apiRequests;
  new Counter({
    name: "rest_client_requests_total",
    help: "Number of HTTP requests, partitioned by status code, method, and host.",
    labelNames: ["code", "host", "method"],
    registers: [registry],
    collect() {
      apiRequests?.flushInto(this);
    },
  });
}

/** Flux's receiver request metrics (go-http-metrics with the `gotk_receiver` prefix). */
function registerRequestMetrics(registry: Registry): Pick<Metrics, "observeRequest" | "inflight"> {
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
  return {
    observeRequest(handler, method, status, seconds, bytes) {
      const key = `${handler} ${method} ${status}`;
      const labels = () => ({ service: "", handler, method, code: String(status) });
      duration.observe(key, labels, seconds);
      size.observe(key, labels, bytes);
    },
    inflight(handler, delta) {
      inflightValues.add(handler, () => ({ service: "", handler }), delta);
    },
  };
}

/** fluxhook's own: deliveries by receiver, type and outcome, annotations, Receivers by readiness. */
function registerDeliveryMetrics(
  registry: Registry,
  receiverCounts: () => ReceiverCounts,
): Pick<Metrics, "observeDelivery"> {
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
  const annotationCounts = new PendingCounts();
  new Counter({
    name: "fluxhook_annotations_total",
    help: "Reconcile requests (requestedAt annotations) by target kind and outcome.",
    labelNames: ["kind", "outcome"],
    registers: [registry],
    collect() {
      annotationCounts.flushInto(this);
    },
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
    observeDelivery(outcome) {
      const receiver = outcome.receiver ? keyString(outcome.receiver) : "";
      const type = outcome.receiverType ?? "";
      const result = OUTCOMES[outcome.kind].metric;
      deliveryCounts.inc(`${receiver} ${type} ${result}`, () => ({ receiver, type, outcome: result }));
      for (const target of outcome.targets ?? [])
        annotationCounts.inc(`${target.kind} ${target.outcome}`, () => ({
          kind: target.kind,
          outcome: target.outcome,
        }));
    },
  };
}

/** The metrics listener's app: GET /metrics in Prometheus' text format. */
export function metricsHandler(metrics: Metrics) {
  return async (req: Request): Promise<Response> => {
    if (new URL(req.url).pathname !== "/metrics") return new Response("not found\n", { status: 404 });
    return new Response(await metrics.exposition(), {
      headers: { "content-type": metrics.registry.contentType },
    });
  };
}

/** Methods a label may name; anything else is "other", so a sender cannot mint label values. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]);

/**
 * go-http-metrics' three measurements of one request on a listener: `serve` answers it. A
 * synchronous answer stays synchronous (no promise per request where the handler needed none).
 */
export function instrumentRequests(
  metrics: Metrics,
  handlerOf: (req: Request) => string,
  bytesOf: (res: Response) => number,
): (req: Request, serve: (req: Request) => Response | Promise<Response>) => Response | Promise<Response> {
  return (req, serve) => {
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
      res = serve(req);
    } catch (err) {
      return failed(err);
    }
    return res instanceof Promise ? res.then(done, failed) : done(res);
  };
}
