/**
 * @module server/receivers/finalizers
 * Flux's `finalizers.fluxcd.io` on Receivers, kept as notification-controller keeps it: added to
 * every Receiver while it lives, removed once it is being deleted, so Flux and fluxhook stay
 * interchangeable and `kubectl delete receiver` (or a prune) completes with either running.
 *
 * Only the replica that writes status does this (--status-updates, and the leader). Each write is
 * conditional on the finalizer list it was decided on (port.ts): a 422 means another controller
 * changed it, and the watch event that follows decides again. Other failures are retried with
 * backoff.
 */
import type { Backoff } from "../../shared";
import { keyString, RECEIVER_FINALIZER, receiverLogFields, type ReceiverObject } from "../api/receiver";
import type { KubePort } from "../kube/port";
import { WorkQueue } from "../runtime/work-queue";
import type { Logger } from "../runtime/log";

/** Finalizer writes in flight at once (one per Receiver). */
const FINALIZER_WRITE_CONCURRENCY = 16;

/** The finalizers the Receiver should carry, or undefined when they are right already. */
function wantedFinalizers(r: ReceiverObject): readonly string[] | undefined {
  const has = r.finalizers.includes(RECEIVER_FINALIZER);
  if (r.deleting) return has ? r.finalizers.filter((f) => f !== RECEIVER_FINALIZER) : undefined;
  // The API server refuses new finalizers on an object being deleted: adding is for live ones.
  return has ? undefined : [...r.finalizers, RECEIVER_FINALIZER];
}

export interface FinalizerWriterOptions {
  readonly patch: Pick<KubePort, "patchReceiverFinalizers">;
  readonly backoff: Backoff;
  /** False while another replica leads. */
  readonly canWrite: () => boolean;
  /** The Receiver ("namespace/name") as last watched; undefined once deleted. */
  readonly subject: (receiver: string) => ReceiverObject | undefined;
  readonly log: Logger;
}

export class FinalizerWriter {
  readonly #options: FinalizerWriterOptions;
  readonly #writes: WorkQueue;

  constructor(options: FinalizerWriterOptions) {
    this.#options = options;
    this.#writes = new WorkQueue({
      concurrency: FINALIZER_WRITE_CONCURRENCY,
      backoff: options.backoff,
      work: (k) => this.#write(k),
    });
  }

  /** Brings the Receiver's finalizer in line soon (decided again when the write starts). */
  sync(r: ReceiverObject): void {
    if (this.#options.canWrite() && wantedFinalizers(r)) this.#writes.add(keyString(r.key));
  }

  /** The Receiver is gone. */
  forget(receiver: string): void {
    this.#writes.remove(receiver);
  }

  stop(): void {
    this.#writes.stop();
  }

  #write(k: string): Promise<void> | undefined {
    if (!this.#options.canWrite()) return undefined;
    const r = this.#options.subject(k);
    const finalizers = r && wantedFinalizers(r);
    if (!r || !finalizers) return undefined;
    return this.#patch(k, r, finalizers);
  }

  async #patch(k: string, r: ReceiverObject, finalizers: readonly string[]) {
    const adding = !r.deleting;
    const result = await this.#options.patch.patchReceiverFinalizers(
      r.key,
      r.finalizers,
      finalizers,
      r.resourceVersion,
    );
    if (result.ok) {
      this.#writes.forget(k);
      this.#options.log.info(adding ? "finalizer added" : "finalizer removed", {
        ...receiverLogFields(r.key),
        finalizer: RECEIVER_FINALIZER,
      });
      return;
    }
    // Gone already, or its finalizers changed since (the test failed, or a finalizer may no longer
    // be added because it is being deleted): the watch event that says so decides again.
    if (result.status === 404 || result.status === 409 || result.status === 422) return;
    const retryInMs = this.#writes.retry(k);
    this.#options.log.error(adding ? "cannot add the finalizer" : "cannot remove the finalizer", {
      ...receiverLogFields(r.key),
      error: result.reason,
      retryInMs,
    });
  }
}
