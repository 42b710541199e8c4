/**
 * @module server/server
 * Wires a running fluxhook from a ready Kubernetes port (or none, for files in a dry run): the
 * Receiver source of its mode (sources/), the index, the delivery edge and the three listeners.
 * main.ts calls it with the parsed flags; tests call it with a test API server's port and port 0.
 */
import type { Serve } from "bun";
import type { AnyElysia } from "elysia";
import { WEBHOOK_PATH_PREFIX } from "../shared";
import { keyString } from "./api/receiver";
import type { ListenAddress, ServerConfig } from "./config";
import { requestTarget } from "./delivery/delivery";
import { DeliveryGuards } from "./delivery/protect/guards";
import { createApp, createHealthApp, type DeliveryReport } from "./http/app";
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
} from "./observe/metrics";
import { RecentDeliveries } from "./observe/recent-deliveries";
import { ReceiverIndex } from "./receivers/index";
import { startClusterSource } from "./sources/cluster";
import { startFiles } from "./sources/files";
import type { ReceiverSource } from "./sources/source";
import { createCoalescer } from "./targets/coalesce";
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

export async function startFluxhook(options: FluxhookOptions): Promise<Fluxhook> {
  const { config, log, kube } = options;
  const tuning = tuningOf(options.tuning);
  const fromFiles = config.receiversFiles.length > 0;
  if (!kube && !fromFiles) throw new Error("no cluster to watch Receivers in, and no --receivers-file");
  const dryRun = config.dryRun || !kube;
  const targets = dryRun ? dryRunTargets(log, kube) : kube!;

  const index = new ReceiverIndex();
  const reconcileMetrics = new ReconcileMetrics();
  // The one place the mode is decided.
  const source: ReceiverSource = fromFiles
    ? startFiles({ paths: config.receiversFiles, index, log, onReload: options.onReceiversFileLoaded })
    : startClusterSource({
        kube: kube!,
        config,
        index,
        log,
        tuning,
        observe: reconcileMetrics,
        instance: options.instance,
      });
  const metrics = createMetrics({
    receiverCounts: source.counts,
    reconcile: reconcileMetrics,
    watches: () =>
      Object.fromEntries(Object.entries(fromFiles ? {} : source.watches()).map(([k, v]) => [k, v === "connected"])),
    leader: source.isLeader,
    apiRequests: options.apiRequests,
  });

  let stopping = false;
  // Ready once the lists are in and every Secret they reference was read once; from then on a
  // newly referenced Secret being read does not take the replica out of the Service. Readiness
  // stays true through a watch outage: the index still serves the last known Receivers, and taking
  // every replica out of the Service would drop all webhooks.
  let secretsRead = false;
  const ready = () => {
    if (stopping || !source.synced()) return false;
    if (!secretsRead && source.unread() === 0) secretsRead = true;
    return secretsRead;
  };

  const recent = new RecentDeliveries();
  const onDelivery = (report: DeliveryReport) => {
    metrics.observeDelivery(report.outcome);
    source.recordEvent(report.outcome);
    const { outcome } = report;
    if (outcome.receiver) {
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
    }
  };

  const guards = new DeliveryGuards({
    valid: { rate: config.limits.validRate, burst: config.limits.validBurst },
    failed: { rate: config.limits.failedRate, burst: config.limits.failedBurst },
    maxConcurrent: config.limits.maxConcurrent,
    maxBodyBytesInFlight: tuning.bodyBytesInFlight,
    replayWindowMs: config.limits.replayWindowMs,
  });
  const coalesce = createCoalescer();
  // Flux labels every request on this listener "/hook/", whatever its path (or the full path,
  // digest included, with --export-http-path-metrics); fluxhook never puts the digest in a label.
  const handlerOf = (req: Request) => {
    if (!config.exportHttpPathMetrics) return WEBHOOK_PATH_PREFIX;
    const target = requestTarget(req.url);
    const entry = index.lookup(target);
    return entry ? `${WEBHOOK_PATH_PREFIX}${entry.key.namespace}/${entry.key.name}` : `${WEBHOOK_PATH_PREFIX}unknown`;
  };
  const app = createApp({
    index,
    kube: targets,
    // Reads only: a dry run answers status queries from the cluster too.
    statusReader: kube,
    dryRun,
    guards,
    bodyTimeoutMs: tuning.bodyTimeoutMs,
    clock: createRequestedAtClock(),
    coalesce,
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
    auth: createAuthServices({
      gcrJwksUrl: config.gcrJwksUrl,
      denyPrivateAddresses: config.oidcDenyPrivateNetworks,
    }),
    log,
    onDelivery,
    instrument: instrumentRequests(metrics, handlerOf, responseBytes),
  });
  const receiver = listen(app, {
    hostname: config.receiverAddr.host,
    port: config.receiverAddr.port,
    maxRequestBodySize: BUN_BODY_CAP,
    idleTimeout: tuning.idleTimeoutSeconds,
  });
  const healthAddr = config.healthAddr;
  const health =
    healthAddr &&
    listen(createHealthApp({ ready, watches: source.watches, deliveries: recent }), {
      hostname: healthAddr.host,
      port: healthAddr.port,
    });
  const metricsAddr = config.metricsAddr;
  const metricsServer =
    metricsAddr &&
    Bun.serve({
      fetch: metricsHandler(metrics),
      hostname: metricsAddr.host,
      port: metricsAddr.port,
    });

  const receiverUrl = url(config.receiverAddr, receiver.port!);
  const healthUrl = health ? url(healthAddr!, health.port!) : undefined;
  const metricsUrl = metricsServer ? url(metricsAddr!, metricsServer.port!) : undefined;
  log.info("fluxhook started", {
    receiverAddr: receiverUrl,
    healthAddr: healthUrl ?? "off",
    metricsAddr: metricsUrl ?? "off",
    receivers: source.describe,
    statusUpdates: source.statusUpdates,
    dryRun,
  });
  if (dryRun)
    log.info(
      kube
        ? "dry run: targets are logged, not annotated"
        : "dry run: no cluster to write to, targets are logged, not annotated",
    );

  // SIGTERM: /readyz turns 503 at once (the Service stops routing here), the listener stops
  // accepting, in-flight deliveries finish within SHUTDOWN_GRACE_MS, then the Lease is released.
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log.info("draining: not ready, finishing in-flight deliveries");
    const drained = await Promise.race([
      receiver.stop(false).then(() => true),
      Bun.sleep(SHUTDOWN_GRACE_MS).then(() => false),
    ]);
    if (!drained) {
      log.error("in-flight deliveries did not finish in time; closing their connections", {
        graceMs: SHUTDOWN_GRACE_MS,
      });
      await receiver.stop(true);
    }
    guards.stop();
    await source.stop();
    await health?.stop(true);
    await metricsServer?.stop(true);
  };
  return {
    receiverUrl,
    healthUrl,
    metricsUrl,
    dryRun,
    isLeader: source.isLeader,
    receivers: () =>
      [...index.entries()].map((e) => ({
        key: e.key,
        type: e.spec?.type,
        path: e.path,
        state: e.unavailable ?? "ready",
      })),
    ready,
    patchesWaiting: () => coalesce.waiting(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
