/**
 * @module server/server
 * Wires a running fluxhook from a ready Kubernetes port (or none, for files in a dry run): the
 * Receiver source of its mode (sources/), the index, the delivery edge and the three listeners.
 * main.ts calls it with the parsed flags; tests call it with a test API server's port and port 0.
 */
import type { Serve, Server } from "bun";
import type { AnyElysia } from "elysia";
import { WEBHOOK_PATH_PREFIX } from "../shared";
import { keyString } from "./api/receiver";
import type { ListenAddress, ServerConfig } from "./config";
import { requestTarget } from "./delivery/delivery";
import { DeliveryGuards } from "./delivery/protect/guards";
import { createApp, createHealthApp, type AppDeps, type DeliveryReport } from "./http/app";
import { responseBytes } from "./http/json-response";
import { createAuthServices } from "./jwt";
import type { KubePort } from "./kube/port";
import { MAX_BODY_BYTES, SHUTDOWN_GRACE_MS, tuningOf, type Tuning } from "./limits";
import { OUTCOMES } from "./outcome/outcomes";
import type { Logger } from "./runtime/log";
import {
  type ApiRequestCounts,
  createMetrics,
  instrumentRequests,
  metricsHandler,
  ReconcileMetrics,
  type Metrics,
} from "./observe/metrics";
import { RecentDeliveries } from "./observe/recent-deliveries";
import { ReceiverIndex } from "./receivers/index";
import { startClusterSource } from "./sources/cluster";
import { startFiles } from "./sources/files";
import type { ReceiverSource } from "./sources/source";
import { createCoalescer } from "./targets/coalesce";
import { shareLists } from "./targets/shared-lists";
import { SourceIndex } from "./targets/source-index";
import { dryRunTargets } from "./targets/dry-run";
import { createRequestedAtClock } from "./targets/requested-at";

export interface FluxhookOptions {
  readonly config: ServerConfig;
  readonly log: Logger;
  /** The cluster, built once by the caller. Without one, Receivers must come from --receivers-file and deliveries run dry. */
  readonly kube?: KubePort;
  /** Timeouts and bounds (limits.ts DEFAULT_TUNING); tests shorten them. */
  readonly tuning?: Partial<Tuning>;
  /** The API requests `kube` makes (its client's onResponse), for rest_client_requests_total. */
  readonly apiRequests?: ApiRequestCounts;
  /** This replica in its Events (reportingInstance); the pod's hostname by default. */
  readonly instance?: string;
  /** File mode: called after an edit of a --receivers-file was read and its Receivers decided. */
  readonly onReceiversFileLoaded?: () => void;
}

/** A Receiver as the running server serves it. */
export interface ServedReceiver {
  readonly key: { readonly namespace: string; readonly name: string };
  readonly type: string | undefined;
  /** `/hook/<digest>`: the digest is a secret (sha256 of the token, name and namespace). */
  readonly path: string;
  /** "ready", or why deliveries get 503. */
  readonly state: string;
}

export interface Fluxhook {
  readonly receiverUrl: string;
  /** True while this replica writes status and reconcile Events. */
  readonly isLeader: () => boolean;
  /** Undefined when the metrics listener is off (--metrics-addr=0). */
  readonly metricsUrl: string | undefined;
  /** True when targets are only logged (--dry-run, or no cluster). */
  readonly dryRun: boolean;
  /** Undefined when the health listener is off (--health-addr=0). */
  readonly healthUrl: string | undefined;
  /** The Receivers that have a path, as deliveries find them. */
  readonly receivers: () => ServedReceiver[];
  readonly ready: () => boolean;
  /** Deliveries waiting on a queued PATCH (targets/coalesce.ts; tests wait for a burst to have joined). */
  readonly patchesWaiting: () => number;
  /** Deliveries waiting on a list another started (targets/shared-lists.ts). */
  readonly listsWaiting: () => number;
  /** Sources in the routing index (targets/source-index.ts; 0 until a routing Receiver starts it). */
  readonly sourcesIndexed: () => number;
  /** Stops accepting, lets in-flight deliveries finish, stops the watches. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Bun's own body cap, a backstop above ours: our cap (delivery/body.ts) answers first with a JSON
 * reason; Bun's answers an empty 413 only for bodies twice as large.
 */
const BUN_BODY_CAP = 2 * MAX_BODY_BYTES;

/**
 * Serves an Elysia app through its Bun adapter (`app.listen`), which puts each route in Bun's
 * router, and returns Bun's server. Bun's defaults are kept where Elysia's differ: no port shared
 * with another process (Elysia sets reusePort), no development error pages. Elysia also adds a
 * `beforeExit` listener per listen that stops the server; fluxhook stops its listeners itself, and
 * a process that starts many servers (the tests) would keep every app alive through it.
 */
function listen(app: AnyElysia, options: { hostname: string; port: number } & Partial<Serve.Options<unknown>>) {
  const before = new Set(process.listeners("beforeExit"));
  app.listen({ reusePort: false, development: false, ...options });
  for (const listener of process.listeners("beforeExit"))
    if (!before.has(listener)) process.removeListener("beforeExit", listener);
  return app.server!;
}

function url(addr: ListenAddress, port: number) {
  const host = addr.host === "0.0.0.0" || addr.host === "::" ? "127.0.0.1" : addr.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * A running fluxhook, read top to bottom: where Receivers come from, what is measured, when the
 * replica is ready, the receiver app and its guards, the three listeners, and how it stops.
 */
export async function startFluxhook(options: FluxhookOptions): Promise<Fluxhook> {
  const { config, log, kube } = options;
  if (!kube && config.receiversFiles.length === 0)
    throw new Error("no cluster to watch Receivers in, and no --receivers-file");
  const tuning = tuningOf(options.tuning);
  const dryRun = config.dryRun || !kube;
  const targets = targetPort(options, dryRun);
  const sources = sourceIndex(kube, tuning);

  const index = new ReceiverIndex((entry) => {
    if (entry.spec?.routeBy !== undefined) sources?.start();
  });
  const reconcileMetrics = new ReconcileMetrics();
  const source = startSource(options, index, tuning, reconcileMetrics);
  const metrics = sourceMetrics(options, source, reconcileMetrics);
  const readiness = new Readiness(source);
  const recent = new RecentDeliveries();
  const guards = deliveryGuards(config, tuning);
  const coalesce = createCoalescer();
  const app = receiverApp(options, tuning, {
    index,
    kube: targets,
    sources,
    guards,
    coalesce,
    dryRun,
    onDelivery: reportDelivery(metrics, source, recent),
    instrument: instrumentRequests(metrics, requestLabel(config, index), responseBytes),
  });
  const listeners = startListeners(config, tuning, {
    receiver: app,
    health: createHealthApp({ ready: readiness.ready, watches: source.watches, deliveries: recent }),
    metrics: metricsHandler(metrics),
  });
  announce(log, listeners, source, dryRun, kube !== undefined);

  const stop = async () => {
    if (readiness.stopping) return;
    readiness.stop();
    await drain(listeners.receiver, log);
    guards.stop();
    sources?.stop();
    await source.stop();
    await listeners.health?.stop(true);
    await listeners.metrics?.stop(true);
  };
  return {
    receiverUrl: listeners.receiverUrl,
    healthUrl: listeners.healthUrl,
    metricsUrl: listeners.metricsUrl,
    dryRun,
    isLeader: source.isLeader,
    receivers: () =>
      [...index.entries()].map((entry) => ({
        key: entry.key,
        type: entry.spec?.type,
        path: entry.path,
        state: entry.unavailable ?? "ready",
      })),
    ready: readiness.ready,
    patchesWaiting: () => coalesce.waiting(),
    listsWaiting: () => targets.waiting(),
    sourcesIndexed: () => sources?.size ?? 0,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Where Receivers come from: the one place the mode is decided (files, or the cluster's watches). */
function startSource(
  options: FluxhookOptions,
  index: ReceiverIndex,
  tuning: Tuning,
  observe: ReconcileMetrics,
): ReceiverSource {
  const { config, log, kube } = options;
  if (config.receiversFiles.length > 0)
    return startFiles({
      paths: config.receiversFiles,
      index,
      log,
      onReload: options.onReceiversFileLoaded,
      noCrossNamespaceRefs: config.noCrossNamespaceRefs,
      withoutSources: !kube,
    });
  return startClusterSource({ kube: kube!, config, index, log, tuning, observe, instance: options.instance });
}

/** The metrics of the replica, reading the source's counts, watches (a cluster's only) and Lease. */
function sourceMetrics(options: FluxhookOptions, source: ReceiverSource, reconcile: ReconcileMetrics): Metrics {
  const fromFiles = options.config.receiversFiles.length > 0;
  return createMetrics({
    receiverCounts: source.counts,
    reconcile,
    watches: () =>
      fromFiles ? {} : Object.fromEntries(Object.entries(source.watches()).map(([k, v]) => [k, v === "connected"])),
    leader: source.isLeader,
    apiRequests: options.apiRequests,
  });
}

/**
 * Ready once the lists are in and every Secret they reference was read once; from then on a
 * newly referenced Secret being read does not take the replica out of the Service. The routing
 * index is not waited for: a replica whose RBAC lacks its watch would never be Ready, and every
 * other Receiver with it; a routed delivery waits for the index itself (targets/route.ts).
 * Readiness stays true through a watch outage: the index still serves the last known Receivers,
 * and taking every replica out of the Service would drop all webhooks. Not ready from the moment
 * it stops.
 */
class Readiness {
  #stopping = false;
  #secretsRead = false;
  constructor(readonly source: Pick<ReceiverSource, "synced" | "unread">) {}

  readonly ready = (): boolean => {
    if (this.#stopping || !this.source.synced()) return false;
    if (!this.#secretsRead && this.source.unread() === 0) this.#secretsRead = true;
    return this.#secretsRead;
  };

  get stopping(): boolean {
    return this.#stopping;
  }

  stop(): void {
    this.#stopping = true;
  }
}

/**
 * Where deliveries write: the cluster (or only the log, in a dry run), with the lists of concurrent
 * deliveries resolving one selector shared (targets/shared-lists.ts).
 */
function targetPort(options: FluxhookOptions, dryRun: boolean) {
  const writer = dryRun ? dryRunTargets(options.log, options.kube) : options.kube!;
  const lists = shareLists(writer);
  return {
    annotateObject: writer.annotateObject,
    getObject: writer.getObject,
    listObjects: lists.listObjects,
    /** Deliveries waiting on a list another started. */
    waiting: () => lists.waiting(),
  };
}

/** The sources routing Receivers match, watched from the first one served on (a dry run reads the cluster too). */
function sourceIndex(kube: KubePort | undefined, tuning: Tuning): SourceIndex | undefined {
  return kube
    ? new SourceIndex({ watch: (a, k, sink) => kube.watchObjects(a, k, sink), waitMs: tuning.sourceIndexWaitMs })
    : undefined;
}

/** The receiver app over the index. */
function receiverApp(
  options: FluxhookOptions,
  tuning: Tuning,
  parts: Pick<AppDeps, "index" | "kube" | "sources" | "guards" | "coalesce" | "onDelivery" | "instrument"> & {
    dryRun: boolean;
  },
) {
  const { config, log, kube } = options;
  return createApp({
    ...parts,
    // Reads only: a dry run answers status queries from the cluster too.
    statusReader: kube,
    bodyTimeoutMs: tuning.bodyTimeoutMs,
    statusQueryDeadlineMs: tuning.statusQueryDeadlineMs,
    clock: createRequestedAtClock(),
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
    auth: createAuthServices({ gcrJwksUrl: config.gcrJwksUrl, denyPrivateAddresses: config.oidcDenyPrivateNetworks }),
    log,
  });
}

/** The per-receiver budgets and caps of the flags. */
function deliveryGuards(config: ServerConfig, tuning: Tuning): DeliveryGuards {
  return new DeliveryGuards({
    valid: { rate: config.limits.validRate, burst: config.limits.validBurst },
    failed: { rate: config.limits.failedRate, burst: config.limits.failedBurst },
    maxConcurrent: config.limits.maxConcurrent,
    maxBodyBytesInFlight: tuning.bodyBytesInFlight,
    replayWindowMs: config.limits.replayWindowMs,
  });
}

/** A handled delivery, to the metrics, the Receiver's Events and /deliveries. */
function reportDelivery(metrics: Metrics, source: ReceiverSource, recent: RecentDeliveries) {
  return (report: DeliveryReport) => {
    const { outcome } = report;
    metrics.observeDelivery(outcome);
    source.recordEvent(outcome);
    if (!outcome.receiver) return;
    recent.add({
      at: report.time,
      receiver: keyString(outcome.receiver),
      type: outcome.receiverType ?? "",
      event: outcome.event,
      deliveryId: report.deliveryId,
      status: outcome.status,
      outcome: OUTCOMES[outcome.kind].metric,
      reason: outcome.reason,
      durationMs: report.durationMs,
      targets: outcome.targets,
    });
  };
}

/**
 * The `handler` label of a request on the receiver listener. Flux labels every request "/hook/",
 * whatever its path (or the full path, digest included, with --export-http-path-metrics); fluxhook
 * never puts the digest in a label, and names the Receiver instead.
 */
function requestLabel(config: ServerConfig, index: ReceiverIndex) {
  return (req: Request) => {
    if (!config.exportHttpPathMetrics) return WEBHOOK_PATH_PREFIX;
    const entry = index.lookup(requestTarget(req.url));
    return entry ? `${WEBHOOK_PATH_PREFIX}${entry.key.namespace}/${entry.key.name}` : `${WEBHOOK_PATH_PREFIX}unknown`;
  };
}

interface Listeners {
  readonly receiver: Server<unknown>;
  readonly receiverUrl: string;
  /** Undefined when the listener is off (--health-addr=0, --metrics-addr=0). */
  readonly health: Server<unknown> | undefined;
  readonly healthUrl: string | undefined;
  readonly metrics: Server<unknown> | undefined;
  readonly metricsUrl: string | undefined;
}

/** The receiver, health and metrics listeners on their flags' addresses. */
function startListeners(
  config: ServerConfig,
  tuning: Tuning,
  apps: { receiver: AnyElysia; health: AnyElysia; metrics: (req: Request) => Promise<Response> },
): Listeners {
  const receiver = listen(apps.receiver, {
    hostname: config.receiverAddr.host,
    port: config.receiverAddr.port,
    maxRequestBodySize: BUN_BODY_CAP,
    idleTimeout: tuning.idleTimeoutSeconds,
  });
  const { healthAddr, metricsAddr } = config;
  const health = healthAddr ? listen(apps.health, { hostname: healthAddr.host, port: healthAddr.port }) : undefined;
  const metrics = metricsAddr
    ? Bun.serve({ fetch: apps.metrics, hostname: metricsAddr.host, port: metricsAddr.port })
    : undefined;
  return {
    receiver,
    receiverUrl: url(config.receiverAddr, receiver.port!),
    health,
    healthUrl: health && healthAddr ? url(healthAddr, health.port!) : undefined,
    metrics,
    metricsUrl: metrics && metricsAddr ? url(metricsAddr, metrics.port!) : undefined,
  };
}

function announce(log: Logger, listeners: Listeners, source: ReceiverSource, dryRun: boolean, cluster: boolean) {
  log.info("fluxhook started", {
    receiverAddr: listeners.receiverUrl,
    healthAddr: listeners.healthUrl ?? "off",
    metricsAddr: listeners.metricsUrl ?? "off",
    receivers: source.describe,
    statusUpdates: source.statusUpdates,
    dryRun,
  });
  if (dryRun)
    log.info(
      cluster
        ? "dry run: targets are logged, not annotated"
        : "dry run: no cluster to write to, targets are logged, not annotated",
    );
}

/**
 * SIGTERM: /readyz turns 503 at once (the Service stops routing here), the listener stops
 * accepting, in-flight deliveries finish within SHUTDOWN_GRACE_MS, then their connections close.
 */
async function drain(receiver: Server<unknown>, log: Logger): Promise<void> {
  log.info("draining: not ready, finishing in-flight deliveries");
  const drained = await Promise.race([
    receiver.stop(false).then(() => true),
    Bun.sleep(SHUTDOWN_GRACE_MS).then(() => false),
  ]);
  if (drained) return;
  log.error("in-flight deliveries did not finish in time; closing their connections", { graceMs: SHUTDOWN_GRACE_MS });
  await receiver.stop(true);
}
