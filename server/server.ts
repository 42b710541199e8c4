/**
 * @module server/server
 * Wires a running fluxhook: Kubernetes client, watches, controller, index and the listeners.
 * main.ts calls it with the parsed flags; tests call it with a test API server's KubeConfig and
 * port 0.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { createApp, createHealthApp } from "./app";
import type { ListenAddress, ServerConfig } from "./config";
import { createKubeClient } from "./kube/client";
import type { Informer, KubePort } from "./kube/port";
import type { Logger } from "./log";
import { ReceiverController } from "./receivers/controller";
import { ReceiverIndex } from "./receivers/index";
import { prepareReceiver } from "./receivers/prepare";
import { createAuthServices } from "./jwt";
import { createRequestedAtClock } from "./targets/requested-at";
import { MAX_BODY_BYTES } from "./limits";
import { startFileSource } from "./receivers/file-source";
import { dryRunTargets } from "./targets/dry-run";

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
  readonly maxBackoffMs?: number;
}

export interface Fluxhook {
  readonly receiverUrl: string;
  /** True when targets are only logged (--dry-run, or no cluster). */
  readonly dryRun: boolean;
  readonly healthUrl: string;
  readonly controller: ReceiverController;
  readonly ready: () => boolean;
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
      ? createKubeClient({ kubeConfig: options.kubeConfig, log, minBackoffMs: options.minBackoffMs, maxBackoffMs: options.maxBackoffMs })
      : undefined);
  const fromFiles = config.receiversFiles.length > 0;
  if (!kube && !fromFiles) throw new Error("no cluster to watch Receivers in, and no --receivers-file");
  const dryRun = config.dryRun || !kube;
  const targets = dryRun ? dryRunTargets(log, kube) : kube!;

  const index = new ReceiverIndex();
  const controller = new ReceiverController({
    index,
    // File-defined Receivers are not cluster objects: there is no status to write.
    statusWriter: config.statusUpdates && !fromFiles ? kube : undefined,
    log,
    prepare: prepareReceiver,
  });
  const informers: Informer[] = fromFiles
    ? [startFileSource({ paths: config.receiversFiles, receivers: controller.receiverSink, secrets: controller.secretSink, log })]
    : [kube!.watchReceivers(config.watchNamespace, controller.receiverSink), kube!.watchSecrets(config.watchNamespace, controller.secretSink)];

  let stopping = false;
  const ready = () => !stopping && controller.synced;

  const app = createApp({ index, kube: targets, dryRun, clock: createRequestedAtClock(), noCrossNamespaceRefs: config.noCrossNamespaceRefs, auth: createAuthServices({ gcrJwksUrl: config.gcrJwksUrl }), log });
  const receiver = Bun.serve({ fetch: app.fetch, hostname: config.receiverAddr.host, port: config.receiverAddr.port, maxRequestBodySize: BUN_BODY_CAP });
  const health = Bun.serve({ fetch: createHealthApp({ ready }).fetch, hostname: config.healthAddr.host, port: config.healthAddr.port });

  const receiverUrl = url(config.receiverAddr, receiver.port!);
  const healthUrl = url(config.healthAddr, health.port!);
  log.info("fluxhook started", {
    receiverAddr: receiverUrl,
    healthAddr: healthUrl,
    receivers: fromFiles ? config.receiversFiles : `cluster, namespace ${config.watchNamespace ?? "*"}`,
    statusUpdates: config.statusUpdates && !fromFiles,
    dryRun,
  });
  if (dryRun) log.info(kube ? "dry run: targets are logged, not annotated" : "dry run: no cluster configured, targets are logged, not annotated");

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await receiver.stop(false);
    for (const i of informers) i.stop();
    await health.stop(true);
  };
  return { receiverUrl, healthUrl, dryRun, controller, ready, stop, [Symbol.asyncDispose]: stop };
}
