/**
 * @module server/sources/cluster
 * Receivers watched in a cluster, wired in dependency order: the Secret cache and the Receiver
 * cache (fed by the Secret metadata watch and the Receiver watch), the Event recorder, and the
 * reconciler over them. Status, Flux's finalizer and reconcile Events are written by the leader
 * (one replica when leader election is on, else every replica); every replica records the
 * deliveries it serves as Events.
 */
import type { ServerConfig } from "../config";
import { alwaysLeader, startLeaderElection } from "../kube/leader";
import type { KubePort } from "../kube/port";
import type { Tuning } from "../limits";
import { EventRecorder } from "../observe/events";
import type { ReconcileMetrics } from "../observe/metrics";
import type { Logger } from "../runtime/log";
import type { ReceiverIndex } from "../receivers/index";
import { prepareReceiver } from "../receivers/prepare";
import { ReceiverCache } from "../receivers/receiver-cache";
import { Reconciler } from "../receivers/reconciler";
import { SecretCache } from "../receivers/secret-cache";
import type { ReceiverSource } from "./source";

export interface ClusterSourceOptions {
  readonly kube: KubePort;
  readonly config: ServerConfig;
  readonly index: ReceiverIndex;
  readonly log: Logger;
  readonly tuning: Tuning;
  /** Told of failed Secret reads and status writes, and of each Receiver reconciled. */
  readonly observe?: Pick<ReconcileMetrics, "secretReadFailed" | "statusWriteFailed" | "reconciled" | "forgetReceiver">;
  /** This replica in its Events (reportingInstance); the pod's hostname by default. */
  readonly instance?: string;
}

/** Logged when discovery shows no Receivers: the cluster has neither Flux nor the CRD component. */
export const NO_RECEIVER_CRD =
  "the cluster does not serve notification.toolkit.fluxcd.io/v1 Receivers: install Flux's Receiver CRD, e.g. with the kustomize component deploy/components/crd (see deploy/README.md)";

export function startClusterSource(options: ClusterSourceOptions): ReceiverSource {
  const { kube, config, index, log, tuning, observe } = options;
  const leader = config.leaderElection
    ? startLeaderElection({ kube, config: config.leaderElection, log })
    : alwaysLeader;
  // Only the Secrets that Receivers reference are read (secret-cache.ts).
  const secrets = new SecretCache({
    get: (key) => kube.getSecret(key),
    list: (namespace, token) => kube.listSecrets(namespace, token),
    onReadFailed: () => observe?.secretReadFailed(),
    log,
    backoff: tuning.secretReadBackoff,
  });
  const receivers = new ReceiverCache(secrets);
  const events = new EventRecorder({ kube, log, uidOf: (key) => receivers.uidOf(key), instance: options.instance });
  const reconciler = new Reconciler({
    receivers,
    secrets,
    index,
    // Flux's finalizer is kept by whoever writes status: beside Flux (--status-updates=false) it is Flux's.
    writer: config.statusUpdates
      ? {
          kube,
          canWrite: () => leader.isLeader(),
          backoff: tuning.statusWriteBackoff,
          recordEvent: (key, uid, event) => events.recordReconcile(key, uid, event),
        }
      : undefined,
    observe: {
      reconciled: (key, seconds) => observe?.reconciled(key, seconds),
      statusWriteFailed: () => observe?.statusWriteFailed(),
      deleted: (key) => {
        observe?.forgetReceiver(key);
        events.forgetReceiver(key);
      },
    },
    log,
    prepare: prepareReceiver,
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
  });
  leader.onStartedLeading(() => reconciler.resync());
  // Without the CRD the Receiver list 404s forever; say once, and plainly, what to install.
  void kube.servesReceivers().then((served) => {
    if (served.ok && !served.value) log.error(NO_RECEIVER_CRD);
    else log.debug("discovery: Receivers are served", { served: served.ok ? true : served.reason });
  });
  const receiverWatch = kube.watchReceivers(config.watchNamespace, receivers.sink);
  const secretWatch = kube.watchSecretMetadata(config.watchNamespace, secrets.sink);
  return {
    synced: () => reconciler.synced,
    counts: () => reconciler.counts(),
    // Readiness stays true through a watch outage once synced (server.ts); the body says whether
    // the watches are connected.
    watches: () => ({
      receivers: receiverWatch.connected ? "connected" : "reconnecting",
      secrets: secretWatch.connected ? "connected" : "reconnecting",
    }),
    unread: () => secrets.unread,
    isLeader: () => leader.isLeader(),
    recordEvent: (outcome) => events.observe(outcome),
    statusUpdates: config.statusUpdates,
    describe: `cluster, namespace ${config.watchNamespace ?? "*"}`,
    async stop() {
      receiverWatch.stop();
      secretWatch.stop();
      secrets.stop();
      reconciler.stop();
      events.stop();
      await leader.stop();
    },
  };
}
