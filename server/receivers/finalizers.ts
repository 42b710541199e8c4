/**
 * @module server/receivers/finalizers
 * Flux's `finalizers.fluxcd.io` on Receivers, kept as notification-controller keeps it: added to
 * every Receiver while it lives, removed once it is being deleted, so Flux and fluxhook stay
 * interchangeable and `kubectl delete receiver` (or a prune) completes with either running.
 *
 * Only the replica that writes status does this (--status-updates and leadership). Each write is
 * conditional on the resourceVersion it was decided on: a 409 means the object changed, and the
 * watch event that follows decides again. Other failures are retried with backoff.
 */
import { keyString, RECEIVER_FINALIZER, receiverLogFields, type ReceiverObject } from "../api/receiver";
import type { KubePort } from "../kube/port";
import type { Logger } from "../observe/log";

/** Retry delays of a failed finalizer write (API errors other than a conflict). */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 60_000;

export interface FinalizerOptions {
  readonly kube: Pick<KubePort, "patchReceiverFinalizers">;
  readonly log: Logger;
  readonly retryMinMs?: number;
}

/** The finalizers the Receiver should carry, or undefined when they are already right. */
export function wantedFinalizers(r: ReceiverObject): readonly string[] | undefined {
  const has = r.finalizers.includes(RECEIVER_FINALIZER);
  if (r.deleting) return has ? r.finalizers.filter((f) => f !== RECEIVER_FINALIZER) : undefined;
  // The API server refuses new finalizers on an object being deleted; adding is for live ones only.
  return has ? undefined : [...r.finalizers, RECEIVER_FINALIZER];
}

export class ReceiverFinalizers {
  readonly #options: FinalizerOptions;
  /** receiver key → the resourceVersion a write is in flight for (one at a time per Receiver). */
  readonly #writing = new Map<string, string>();
  /** receiver key → the latest object seen, decided again after a write in flight or a retry. */
  readonly #latest = new Map<string, ReceiverObject>();
  readonly #failures = new Map<string, number>();
  readonly #retries = new Map<string, ReturnType<typeof setTimeout>>();
  #stopped = false;

  constructor(options: FinalizerOptions) {
    this.#options = options;
  }

  /** Brings the Receiver's finalizer in line with its life: present while it lives, gone when deleted. */
  sync(r: ReceiverObject): void {
    const k = keyString(r.key);
    if (this.#stopped) return;
    this.#latest.set(k, r);
    if (this.#writing.has(k) || this.#retries.has(k)) return;
    const finalizers = wantedFinalizers(r);
    if (!finalizers) {
      this.#latest.delete(k);
      this.#failures.delete(k);
      return;
    }
    this.#writing.set(k, r.resourceVersion);
    void this.#write(r, finalizers).finally(() => {
      this.#writing.delete(k);
      const latest = this.#latest.get(k);
      if (latest && latest.resourceVersion !== r.resourceVersion && !this.#retries.has(k)) this.sync(latest);
    });
  }

  /** The Receiver is gone (or no longer ours to write): nothing more to do for it. */
  forget(key: ReceiverObject["key"]): void {
    const k = keyString(key);
    this.#latest.delete(k);
    this.#failures.delete(k);
    const retry = this.#retries.get(k);
    if (retry) clearTimeout(retry);
    this.#retries.delete(k);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#retries.values()) clearTimeout(t);
    this.#retries.clear();
  }

  async #write(r: ReceiverObject, finalizers: readonly string[]) {
    const k = keyString(r.key);
    const adding = !r.deleting;
    const result = await this.#options.kube.patchReceiverFinalizers(r.key, finalizers, r.resourceVersion);
    if (result.ok) {
      this.#failures.delete(k);
      this.#options.log.info(adding ? "finalizer added" : "finalizer removed", {
        ...receiverLogFields(r.key),
        finalizer: RECEIVER_FINALIZER,
      });
      return;
    }
    // Gone already, or changed since: the watch event that says so decides again.
    if (result.status === 404 || result.status === 409) return;
    const failures = (this.#failures.get(k) ?? 0) + 1;
    this.#failures.set(k, failures);
    const delay = Math.min(RETRY_MAX_MS, (this.#options.retryMinMs ?? RETRY_MIN_MS) * 2 ** Math.min(failures - 1, 10));
    this.#options.log.error(adding ? "cannot add the finalizer" : "cannot remove the finalizer", {
      ...receiverLogFields(r.key),
      error: result.reason,
      retryInMs: delay,
    });
    const retry = setTimeout(() => {
      this.#retries.delete(k);
      // The newest object seen meanwhile; none if it was forgotten.
      const latest = this.#latest.get(k);
      if (latest) this.sync(latest);
    }, delay);
    retry.unref?.();
    this.#retries.set(k, retry);
  }
}
