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
import type { Logger } from "../observe/log";
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
}

export function startClusterSource(options: ClusterSourceOptions): ReceiverSource {
  const { kube, config, index, log, tuning } = options;
  const leader = config.leaderElection
    ? startLeaderElection({ kube, config: config.leaderElection, log })
    : alwaysLeader;
  // Only the Secrets that Receivers reference are read (secret-cache.ts).
  const secrets = new SecretCache({ get: (key) => kube.getSecret(key), log, backoff: tuning.secretReadBackoff });
  const controller = new ReceiverController({
    index,
    secrets,
    statusWriter: config.statusUpdates ? kube : undefined,
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
