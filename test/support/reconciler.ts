/**
 * The reconciler over its two caches, without a cluster: tests feed the caches' sinks as the
 * watches would (kube/port.ts replaceAll, upsert, remove) and read the index it keeps.
 */
import { DEFAULT_TUNING } from "../../server/limits";
import { ReceiverIndex } from "../../server/receivers/index";
import { ReceiverCache } from "../../server/receivers/receiver-cache";
import { Reconciler, type ReconcilerOptions } from "../../server/receivers/reconciler";
import { SecretCache } from "../../server/receivers/secret-cache";
import { silentLogger } from "../../server/runtime/log";

export interface ReconcilerRig {
  readonly index: ReceiverIndex;
  readonly secrets: SecretCache;
  readonly receivers: ReceiverCache;
  readonly reconciler: Reconciler;
}

/** A reconciler made as sources/ make it; `secrets` defaults to a cache of whole Secrets (as files give). */
export function reconcilerRig(
  options: Partial<Omit<ReconcilerOptions, "receivers" | "index">> & { secrets?: SecretCache } = {},
): ReconcilerRig {
  const index = new ReceiverIndex();
  const secrets = options.secrets ?? new SecretCache({ log: silentLogger, backoff: DEFAULT_TUNING.secretReadBackoff });
  const receivers = new ReceiverCache(secrets);
  const reconciler = new Reconciler({ log: silentLogger, ...options, receivers, secrets, index });
  return { index, secrets, receivers, reconciler };
}
