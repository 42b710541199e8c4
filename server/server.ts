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
import { Reason } from "./receivers/status";
import { VALIDATORS } from "./providers";
import { createRequestedAtClock } from "./targets/requested-at";
import { MAX_BODY_BYTES } from "./limits";

export interface FluxhookOptions {
  readonly config: ServerConfig;
  readonly log: Logger;
  /** Either a KubeConfig (the real client is built from it) or a ready KubePort. */
  readonly kubeConfig?: KubeConfig;
  readonly kube?: KubePort;
  /** Reflector retry bounds; tests shorten them. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export interface Fluxhook {
  readonly receiverUrl: string;
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
    createKubeClient({ kubeConfig: options.kubeConfig!, log, minBackoffMs: options.minBackoffMs, maxBackoffMs: options.maxBackoffMs });
  const index = new ReceiverIndex();
  const controller = new ReceiverController({
    index,
    statusWriter: config.statusUpdates ? kube : undefined,
    log,
    checkSpec: (r) =>
      r.spec && !VALIDATORS[r.spec.type]
        ? { reason: Reason.validationFailed, message: `receiver type ${JSON.stringify(r.spec.type)} is not supported by this version of fluxhook` }
        : undefined,
  });
  const informers: Informer[] = [
    kube.watchReceivers(config.watchNamespace, controller.receiverSink),
    kube.watchSecrets(config.watchNamespace, controller.secretSink),
  ];

  let stopping = false;
  const ready = () => !stopping && controller.synced;

  const app = createApp({ index, kube, clock: createRequestedAtClock(), noCrossNamespaceRefs: config.noCrossNamespaceRefs, log });
  const receiver = Bun.serve({ fetch: app.fetch, hostname: config.receiverAddr.host, port: config.receiverAddr.port, maxRequestBodySize: BUN_BODY_CAP });
  const health = Bun.serve({ fetch: createHealthApp({ ready }).fetch, hostname: config.healthAddr.host, port: config.healthAddr.port });

  const receiverUrl = url(config.receiverAddr, receiver.port!);
  const healthUrl = url(config.healthAddr, health.port!);
  log.info("fluxhook started", { receiverAddr: receiverUrl, healthAddr: healthUrl, namespace: config.watchNamespace ?? "*", statusUpdates: config.statusUpdates });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await receiver.stop(false);
    for (const i of informers) i.stop();
    await health.stop(true);
  };
  return { receiverUrl, healthUrl, controller, ready, stop, [Symbol.asyncDispose]: stop };
}
