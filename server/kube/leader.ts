/**
 * @module server/kube/leader
 * Leader election through a coordination.k8s.io/v1 Lease, as Flux's controllers (client-go's
 * leaderelection) do it. Every replica serves webhooks; only the leader writes Receiver status
 * and Events, so two replicas never fight over a status or double an Event.
 *
 * - A candidate takes the Lease when it does not exist, is released (empty holder), or has not
 *   been renewed for leaseDuration. Expiry is judged on this replica's own clock, from when it
 *   last saw the record change, so clock skew between nodes does not matter.
 * - The leader renews every retryPeriod and steps down when it could not renew for renewDeadline.
 * - On shutdown the leader releases the Lease (empty holder), so another replica takes over at its
 *   next try instead of waiting for expiry.
 * Writes use the Lease's resourceVersion, so two candidates cannot both win.
 */
import { hostname } from "node:os";
import type { LeaderElectionConfig } from "../config";
import type { KubePort, LeaseRecord } from "./port";
import type { Logger } from "../runtime/log";

export const LEASE_NAME = "fluxhook-leader-election";

export interface LeaderElector {
  isLeader(): boolean;
  readonly identity: string;
  /**
   * The one listener told when this replica starts leading (the previous leader may have left
   * work). Elections answer asynchronously, so a listener set right after the start misses nothing.
   */
  onStartedLeading(listener: () => void): void;
  /** Stops campaigning; releases the Lease when leading and configured to. */
  stop(): Promise<void>;
}

export interface LeaderOptions {
  readonly kube: Pick<KubePort, "getLease" | "writeLease">;
  readonly config: LeaderElectionConfig;
  readonly log: Logger;
  readonly identity?: string;
  readonly now?: () => number;
}

/** A leader that every replica is, for a single replica without --enable-leader-election. */
export const alwaysLeader: LeaderElector = {
  isLeader: () => true,
  identity: "",
  onStartedLeading: () => {},
  stop: async () => {},
};

export function startLeaderElection(options: LeaderOptions): LeaderElector {
  const { kube, config, log } = options;
  const now = options.now ?? Date.now;
  const identity = options.identity ?? `${hostname()}_${crypto.randomUUID()}`;
  const leaseSeconds = Math.max(1, Math.round(config.leaseDurationMs / 1000));
  let leading = false;
  let stopped = false;
  let lastRenew = 0;
  let observed: { key: string; at: number } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let startedLeading = () => {};

  const setLeading = (value: boolean) => {
    if (value === leading) return;
    leading = value;
    log.info(value ? "became leader: writing Receiver status and Events" : "stopped leading", {
      lease: `${config.namespace}/${LEASE_NAME}`,
      identity,
    });
    if (value) startedLeading();
  };

  /** One acquire-or-renew attempt; true when this replica holds the Lease afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const current = await kube.getLease(config.namespace, LEASE_NAME);
    if (!current.ok) return false;
    const t = now();
    const record = current.value;
    if (record) {
      const key = recordKey(record);
      if (observed?.key !== key) observed = { key, at: t };
      const heldByOther = record.holderIdentity !== "" && record.holderIdentity !== identity;
      const expired = observed.at + record.leaseDurationSeconds * 1000 <= t;
      if (heldByOther && !expired) return false;
    }
    const next = heldRecord(record, identity, leaseSeconds, t);
    const written = await kube.writeLease(config.namespace, LEASE_NAME, next);
    if (!written.ok) return false;
    observed = { key: recordKey(next), at: t };
    return true;
  };

  const tick = async () => {
    if (stopped) return;
    const held = await tryAcquireOrRenew().catch(() => false);
    if (stopped) return;
    const t = now();
    if (held) {
      lastRenew = t;
      setLeading(true);
    } else if (leading && t - lastRenew >= config.renewDeadlineMs) {
      setLeading(false);
    }
    // client-go's jitter: spread candidates' tries so they do not collide every period.
    timer = setTimeout(() => (running = tick()), config.retryPeriodMs * (1 + (leading ? 0 : Math.random() * 0.2)));
  };
  running = tick();

  return {
    identity,
    isLeader: () => leading,
    onStartedLeading: (listener) => {
      startedLeading = listener;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      if (leading && config.releaseOnCancel) await releaseLease(options, identity, now);
      setLeading(false);
    },
  };
}

/** What tells one version of a Lease's record from another, as this replica last saw it change. */
const recordKey = (record: LeaseRecord) =>
  `${record.holderIdentity}|${record.renewTime?.getTime() ?? ""}|${record.leaseTransitions}`;

/** The record that holds the Lease for `identity` from `now`: acquired, or renewed when it held it. */
function heldRecord(
  record: LeaseRecord | undefined,
  identity: string,
  leaseDurationSeconds: number,
  now: number,
): LeaseRecord {
  const mine = record?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: mine ? record?.acquireTime : new Date(now),
    renewTime: new Date(now),
    leaseTransitions: record ? record.leaseTransitions + (mine ? 0 : 1) : 0,
    resourceVersion: record?.resourceVersion,
  };
}

/** Releases the Lease (empty holder) when this replica still holds it, so another takes over at its next try. */
async function releaseLease(options: LeaderOptions, identity: string, now: () => number): Promise<void> {
  const { kube, config, log } = options;
  const current = await kube.getLease(config.namespace, LEASE_NAME);
  if (!current.ok || current.value?.holderIdentity !== identity) return;
  const released = await kube.writeLease(config.namespace, LEASE_NAME, {
    ...current.value,
    holderIdentity: "",
    leaseDurationSeconds: 1,
    renewTime: new Date(now()),
  });
  log.info(released.ok ? "released the leader lease" : "could not release the leader lease", { identity });
}
