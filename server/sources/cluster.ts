/**
 * @module server/sources/cluster
 * Receivers watched in a cluster: the Receiver watch and the Secret metadata watch feed the
 * controller and the Secret cache; status and Events are written by the leader (one replica when
 * leader election is on, else every replica).
 */
import type { ServerConfig } from "../config";
import { alwaysLeader, startLeaderElection } from "../kube/leader";
import type { KubePort } from "../kube/port";
import type { Tuning } from "../limits";
import { EventRecorder } from "../observe/events";
import type { Logger } from "../runtime/log";
import type { Metrics } from "../observe/metrics";
import { ReceiverController } from "../receivers/controller";
import type { ReceiverIndex } from "../receivers/index";
import { prepareReceiver } from "../receivers/prepare";
import { SecretCache } from "../receivers/secret-cache";
import type { ReceiverSource } from "./source";

export interface ClusterSourceOptions {
  readonly kube: KubePort;
  readonly config: ServerConfig;
  readonly index: ReceiverIndex;
  readonly log: Logger;
  readonly tuning: Tuning;
  /** Told of failed Secret reads and status writes, and of each Receiver reconciled. */
  readonly observe?: Pick<Metrics, "secretReadFailed" | "statusWriteFailed" | "reconciled" | "forgetReceiver">;
}

/** Logged when discovery shows no Receivers: the cluster has neither Flux nor the CRD component. */
export const NO_RECEIVER_CRD =
  "the cluster does not serve notification.toolkit.fluxcd.io/v1 Receivers: install Flux's Receiver CRD, e.g. with the kustomize component deploy/components/crd (see deploy/README.md)";

export function startClusterSource(options: ClusterSourceOptions): ReceiverSource {
  const { kube, config, index, log, tuning } = options;
  const leader = config.leaderElection
    ? startLeaderElection({ kube, config: config.leaderElection, log })
    : alwaysLeader;
  // Only the Secrets that Receivers reference are read (secret-cache.ts).
  const observe = options.observe;
  const secrets = new SecretCache({
    get: async (key) => {
      const result = await kube.getSecret(key);
      if (!result.ok) observe?.secretReadFailed();
      return result;
    },
    list: async (namespace, token) => {
      const result = await kube.listSecrets(namespace, token);
      if (!result.ok) observe?.secretReadFailed();
      return result;
    },
    log,
    backoff: tuning.secretReadBackoff,
  });
  const controller = new ReceiverController({
    index,
    secrets,
    statusWriter: config.statusUpdates
      ? {
          patchReceiverStatus: async (key, status) => {
            const result = await kube.patchReceiverStatus(key, status);
            // A Receiver deleted meanwhile (404) is no failure: the watch tells the rest.
            if (!result.ok && result.status !== 404) observe?.statusWriteFailed();
            return result;
          },
        }
      : undefined,
    // Flux's finalizer is kept by whoever writes status: beside Flux (--status-updates=false) it is Flux's.
    finalizerWriter: config.statusUpdates ? kube : undefined,
    // The recorder (below) and the controller refer to each other; neither calls the other until
    // a status write lands, after both exist.
    recordEvent: (key, event) => events.recordReconcile(key, event),
    onReconciled: (key, seconds) => observe?.reconciled(key, seconds),
    onDeleted: (key) => {
      observe?.forgetReceiver(key);
      events.forgetReceiver(key);
    },
    canWrite: () => leader.isLeader(),
    statusWriteBackoff: tuning.statusWriteBackoff,
    log,
    prepare: prepareReceiver,
  });
  leader.onStartedLeading(() => controller.resyncStatus());
  const events = new EventRecorder({
    kube,
    log,
    canWrite: () => leader.isLeader(),
    uidOf: (key) => controller.uidOf(key),
  });
  // Without the CRD the Receiver list 404s forever; say once, and plainly, what to install.
  void kube.servesReceivers().then((served) => {
    if (served.ok && !served.value) log.error(NO_RECEIVER_CRD);
    else log.debug("discovery: Receivers are served", { served: served.ok ? true : served.reason });
  });
  const receivers = kube.watchReceivers(config.watchNamespace, controller.receiverSink);
  const secretWatch = kube.watchSecretMetadata(config.watchNamespace, secrets.sink);
  return {
    controller,
    // Readiness stays true through a watch outage once synced (server.ts); the body says whether
    // the watches are connected.
    watches: () => ({
      receivers: receivers.connected ? "connected" : "reconnecting",
      secrets: secretWatch.connected ? "connected" : "reconnecting",
    }),
    unread: () => secrets.unread,
    isLeader: () => leader.isLeader(),
    recordEvent: (outcome) => events.observe(outcome),
    statusUpdates: config.statusUpdates,
    describe: `cluster, namespace ${config.watchNamespace ?? "*"}`,
    async stop() {
      receivers.stop();
      secretWatch.stop();
      secrets.stop();
      controller.stop();
      events.stop();
      await leader.stop();
    },
  };
}
