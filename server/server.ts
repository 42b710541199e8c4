/**
 * @module server/server
 * Wires a running fluxhook: Kubernetes client, watches, controller, index and the listeners.
 * main.ts calls it with the parsed flags; tests call it with a test API server's KubeConfig and
 * port 0.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { createApp, createHealthApp, type DeliveryReport } from "./http/app";
import { requestTarget } from "./delivery/delivery";
import { responseBytes } from "./http/json-response";
import { createMetrics, instrumentFetch, metricsHandler, outcomeOf } from "./observe/metrics";
import { RecentDeliveries } from "./observe/recent-deliveries";
import { ReceiverIndex } from "./receivers/index";
import { keyString } from "./api/receiver";
import { WEBHOOK_PATH_PREFIX } from "../shared";
import type { ListenAddress, ServerConfig } from "./config";
import { createKubeClient } from "./kube/client";
import type { Informer, KubePort } from "./kube/port";
import type { Logger } from "./observe/log";
import { SECRET_READ_BACKOFF, SecretCache } from "./receivers/secret-cache";
import { ReceiverController } from "./receivers/controller";
import { prepareReceiver } from "./receivers/prepare";
import { createAuthServices } from "./jwt";
import { createRequestedAtClock } from "./targets/requested-at";
import { IDLE_TIMEOUT_SECONDS, MAX_BODY_BYTES, SHUTDOWN_GRACE_MS } from "./limits";
import { DeliveryGuards } from "./delivery/protect/guards";
import { startFileSource } from "./sources/files";
import { EventRecorder } from "./observe/events";
import { alwaysLeader, startLeaderElection, type LeaderElector } from "./kube/leader";
import { dryRunTargets } from "./targets/dry-run";
import { createCoalescer } from "./targets/coalesce";

export interface FluxhookOptions {
  readonly config: ServerConfig;
  readonly log: Logger;
  /**
   * The cluster, if any: a KubeConfig (the real client is built from it) or a ready KubePort.
   * Without one, Receivers must come from --receivers-file and deliveries run dry.
   */
  readonly kubeConfig?: KubeConfig;
  readonly kube?: KubePort;
  /** Reflector retry bounds; tests shorten them. */
  readonly minBackoffMs?: number;
  /** Test seams for the timeouts of server/limits.ts, so tests need not wait seconds. */
  readonly callTimeoutMs?: number;
  readonly patchBudgetMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly idleTimeoutSeconds?: number;
  readonly bodyBytesInFlight?: number;
  readonly maxBackoffMs?: number;
  readonly listPageSize?: number;
}

export interface Fluxhook {
  readonly receiverUrl: string;
  /** True while this replica writes status and Events. */
  readonly isLeader: () => boolean;
  readonly metricsUrl: string;
  /** True when targets are only logged (--dry-run, or no cluster). */
  readonly dryRun: boolean;
  readonly healthUrl: string;
  readonly controller: ReceiverController;
  readonly ready: () => boolean;
  /** Deliveries waiting on a queued PATCH (targets/coalesce.ts; tests wait for a burst to have joined). */
  readonly patchesWaiting: () => number;
  /** Stops accepting, lets in-flight deliveries finish, stops the watches. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Bun's own body cap, a backstop above ours: our cap (server/body.ts) answers first with a JSON
 * reason; Bun's answers an empty 413 only for bodies twice as large.
 */
const BUN_BODY_CAP = 2 * MAX_BODY_BYTES;

function url(addr: ListenAddress, port: number) {
  const host = addr.host === "0.0.0.0" || addr.host === "::" ? "127.0.0.1" : addr.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export async function startFluxhook(options: FluxhookOptions): Promise<Fluxhook> {
  const { config, log } = options;
  const kube =
    options.kube ??
    (options.kubeConfig
      ? createKubeClient({
          kubeConfig: options.kubeConfig,
          log,
          minBackoffMs: options.minBackoffMs,
          maxBackoffMs: options.maxBackoffMs,
          callTimeoutMs: options.callTimeoutMs,
          patchBudgetMs: options.patchBudgetMs,
          listPageSize: options.listPageSize,
        })
      : undefined);
  const fromFiles = config.receiversFiles.length > 0;
  if (!kube && !fromFiles) throw new Error("no cluster to watch Receivers in, and no --receivers-file");
  const dryRun = config.dryRun || !kube;
  const targets = dryRun ? dryRunTargets(log, kube) : kube!;

  const index = new ReceiverIndex();
  // In a cluster only the Secrets that Receivers reference are read (secret-cache.ts).
  const secrets = new SecretCache({
    get: kube && !fromFiles ? (key) => kube.getSecret(key) : undefined,
    log,
    backoff: options.minBackoffMs !== undefined ? { ...SECRET_READ_BACKOFF, baseMs: options.minBackoffMs } : undefined,
  });
  const controller = new ReceiverController({
    secrets,
    index,
    // File-defined Receivers are not cluster objects: there is no status to write.
    statusWriter: config.statusUpdates && !fromFiles ? kube : undefined,
    canWrite: () => leader.isLeader(),
    log,
    prepare: prepareReceiver,
  });
  // Status and Events are written by one replica when several run (file mode writes neither).
  const elect = config.leaderElection && kube && !fromFiles ? config.leaderElection : undefined;
  const leader: LeaderElector = elect
    ? startLeaderElection({
        kube: kube!,
        config: elect,
        log,
        onStartedLeading: () => controller.resyncStatus(),
        onStoppedLeading: () => {},
      })
    : alwaysLeader;
  const events =
    kube && !fromFiles
      ? new EventRecorder({ kube, log, canWrite: () => leader.isLeader(), uidOf: (key) => controller.uidOf(key) })
      : undefined;

  const informers: Informer[] =
    kube && !fromFiles
      ? [
          kube.watchReceivers(config.watchNamespace, controller.receiverSink),
          kube.watchSecretMetadata(config.watchNamespace, secrets.sink),
        ]
      : [
          startFileSource({
            paths: config.receiversFiles,
            receivers: controller.receiverSink,
            secrets: secrets.sink,
            log,
          }),
        ];

  let stopping = false;
  // Ready once the lists are in and every Secret they reference was read once; from then on a
  // newly referenced Secret being read does not take the replica out of the Service.
  let secretsRead = false;
  const ready = () => {
    if (stopping || !controller.synced) return false;
    if (!secretsRead && secrets.unread === 0) secretsRead = true;
    return secretsRead;
  };

  const metrics = createMetrics(() => controller.counts());
  const recent = new RecentDeliveries();
  const onDelivery = (report: DeliveryReport) => {
    metrics.observeDelivery(report.outcome);
    events?.observe(report.outcome);
    const { outcome } = report;
    if (outcome.receiver) {
      recent.add({
        at: report.time,
        receiver: keyString(outcome.receiver),
        type: outcome.receiverType ?? "",
        event: outcome.event,
        deliveryId: report.deliveryId,
        status: outcome.status,
        outcome: outcomeOf(outcome.status),
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
    maxBodyBytesInFlight: options.bodyBytesInFlight,
    replayWindowMs: config.limits.replayWindowMs,
  });
  const coalesce = createCoalescer();
  const app = createApp({
    index,
    kube: targets,
    // Reads only: a dry run answers status queries from the cluster too.
    statusReader: kube,
    dryRun,
    guards,
    bodyTimeoutMs: options.bodyTimeoutMs,
    clock: createRequestedAtClock(),
    coalesce,
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
    auth: createAuthServices({ gcrJwksUrl: config.gcrJwksUrl }),
    log,
    onDelivery,
  });
  // Flux labels request metrics "/hook/" (or the full path, digest included, with
  // --export-http-path-metrics); fluxhook never puts the digest in a label.
  const handlerOf = (req: Request) => {
    const target = requestTarget(req.url);
    if (!target.startsWith(WEBHOOK_PATH_PREFIX)) return "other";
    if (!config.exportHttpPathMetrics) return WEBHOOK_PATH_PREFIX;
    const entry = index.lookup(target);
    return entry ? `${WEBHOOK_PATH_PREFIX}${entry.key.namespace}/${entry.key.name}` : `${WEBHOOK_PATH_PREFIX}unknown`;
  };
  const receiver = Bun.serve({
    fetch: instrumentFetch(metrics, app.fetch, handlerOf, responseBytes),
    hostname: config.receiverAddr.host,
    port: config.receiverAddr.port,
    maxRequestBodySize: BUN_BODY_CAP,
    idleTimeout: options.idleTimeoutSeconds ?? IDLE_TIMEOUT_SECONDS,
  });
  // Readiness stays true through a watch outage once synced: the index still serves the last
  // known Receivers, and taking every replica out of the Service would drop all webhooks. The
  // body tells whether the watches are connected.
  const watches = (): Record<string, string> =>
    fromFiles
      ? { files: "loaded" }
      : {
          receivers: informers[0]!.connected ? "connected" : "reconnecting",
          secrets: informers[1]!.connected ? "connected" : "reconnecting",
        };
  const health = Bun.serve({
    fetch: createHealthApp({ ready, watches, deliveries: recent }).fetch,
    hostname: config.healthAddr.host,
    port: config.healthAddr.port,
  });
  const metricsServer = Bun.serve({
    fetch: metricsHandler(metrics),
    hostname: config.metricsAddr.host,
    port: config.metricsAddr.port,
  });

  const receiverUrl = url(config.receiverAddr, receiver.port!);
  const healthUrl = url(config.healthAddr, health.port!);
  const metricsUrl = url(config.metricsAddr, metricsServer.port!);
  log.info("fluxhook started", {
    receiverAddr: receiverUrl,
    healthAddr: healthUrl,
    metricsAddr: metricsUrl,
    receivers: fromFiles ? config.receiversFiles : `cluster, namespace ${config.watchNamespace ?? "*"}`,
    statusUpdates: config.statusUpdates && !fromFiles,
    dryRun,
  });
  if (dryRun)
    log.info(
      kube
        ? "dry run: targets are logged, not annotated"
        : "dry run: no cluster configured, targets are logged, not annotated",
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
    for (const i of informers) i.stop();
    secrets.stop();
    controller.stop();
    events?.stop();
    guards.stop();
    await leader.stop();
    await health.stop(true);
    await metricsServer.stop(true);
  };
  return {
    receiverUrl,
    healthUrl,
    metricsUrl,
    dryRun,
    isLeader: () => leader.isLeader(),
    controller,
    ready,
    patchesWaiting: () => coalesce.waiting(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
