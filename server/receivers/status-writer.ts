/**
 * @module server/receivers/status-writer
 * Writes Receiver status, one write per Receiver at a time so writes land in order, decided again
 * when each write starts (the Secret or the object may have changed while it was queued), and
 * retried with backoff until it lands. It remembers what it wrote until the watch shows that
 * version: watch events older than our write carry a stale status, and deciding on them would
 * write again (or "correct" a newer status back).
 */
import type { Backoff } from "../../shared";
import { receiverLogFields, type ObjectKey, type ReceiverStatus } from "../api/receiver";
import { sameStatus, type Readiness } from "../api/status";
import type { KubePort } from "../kube/port";
import { olderVersion } from "../kube/resource-version";
import { WorkQueue } from "../runtime/work-queue";
import type { Logger } from "../runtime/log";
import { FULL_GC_EVERY_STATUS_WRITES } from "../limits";

/** Status writes in flight at once: enough to mark thousands of Receivers Ready at start-up in seconds. */
const STATUS_WRITE_CONCURRENCY = 16;

/** A Receiver as the writer needs it when a write starts. */
export interface StatusSubject {
  readonly key: ObjectKey;
  /** The status decided now, or undefined when there is none to write (suspended, or pending). */
  readonly desired: ReceiverStatus | undefined;
  /** The status as it stands (see `current`). */
  readonly current: ReceiverStatus | undefined;
  /** What `desired` was decided from. */
  readonly readiness: Readiness | undefined;
}

export interface StatusWriterOptions {
  readonly patch: Pick<KubePort, "patchReceiverStatus">;
  /** Retry delays of a failed write (limits.ts Tuning.statusWriteBackoff). */
  readonly backoff: Backoff;
  /** False while another replica leads: status is then that replica's to write. */
  readonly canWrite: () => boolean;
  /** The Receiver ("namespace/name") as it stands when its write starts; undefined once deleted. */
  readonly subject: (receiver: string) => StatusSubject | undefined;
  /** The Receiver's resourceVersion as last watched; undefined once deleted. */
  readonly resourceVersionOf: (receiver: string) => string | undefined;
  /** A write landed: what it replaced and what it wrote (for the transition's Event and log line). */
  readonly onWritten?: (
    key: ObjectKey,
    before: ReceiverStatus | undefined,
    after: ReceiverStatus,
    readiness: Readiness,
  ) => void;
  readonly log: Logger;
  /** A full garbage collection, run after every FULL_GC_EVERY_STATUS_WRITES writes (default: Bun.gc). */
  readonly collectGarbage?: () => void;
}

export class StatusWriter {
  readonly #options: StatusWriterOptions;
  readonly #writes: WorkQueue;
  /** receiver → the status we wrote and the resourceVersion it produced, until the watch shows it. */
  readonly #written = new Map<string, { resourceVersion: string; status: ReceiverStatus }>();
  /** Writes landed since the last full collection. */
  #sinceCollection = 0;

  constructor(options: StatusWriterOptions) {
    const { backoff } = options;
    this.#writes = new WorkQueue({ concurrency: STATUS_WRITE_CONCURRENCY, backoff, work: (k) => this.#write(k) });
    this.#options = options;
  }

  get canWrite(): boolean {
    return this.#options.canWrite();
  }

  /** Writes the Receiver's status soon (or after its write in flight). */
  queue(receiver: string): void {
    this.#writes.add(receiver);
  }

  /** The Receiver's status as it stands: our own last write until the watch has caught up with it. */
  current(receiver: string, resourceVersion: string, watched: ReceiverStatus | undefined): ReceiverStatus | undefined {
    const written = this.#written.get(receiver);
    if (!written) return watched;
    if (olderVersion(resourceVersion, written.resourceVersion)) return written.status;
    this.#written.delete(receiver);
    return watched;
  }

  /** The Receiver is gone. */
  forget(receiver: string): void {
    this.#written.delete(receiver);
    this.#writes.remove(receiver);
  }

  stop(): void {
    this.#writes.stop();
  }

  #write(k: string): Promise<void> | undefined {
    // Not leading: the leader writes; on becoming leader every Receiver is decided again.
    if (!this.#options.canWrite()) return undefined;
    const subject = this.#options.subject(k);
    if (!subject?.desired || !subject.readiness || sameStatus(subject.current, subject.desired)) return undefined;
    return this.#patch(k, subject, subject.desired, subject.readiness);
  }

  async #patch(k: string, subject: StatusSubject, status: ReceiverStatus, readiness: Readiness) {
    const key = subject.key;
    const result = await this.#options.patch.patchReceiverStatus(key, status);
    if (result.ok) {
      if (++this.#sinceCollection >= FULL_GC_EVERY_STATUS_WRITES) {
        this.#sinceCollection = 0;
        (this.#options.collectGarbage ?? (() => Bun.gc(true)))();
      }
      this.#writes.forget(k);
      const seen = this.#options.resourceVersionOf(k);
      if (seen !== undefined && olderVersion(seen, result.value))
        this.#written.set(k, { resourceVersion: result.value, status });
      const ready = status.conditions?.find((c) => c.type === "Ready");
      this.#options.log.info("receiver status updated", {
        ...receiverLogFields(key),
        ready: ready?.status,
        reason: ready?.reason,
      });
      this.#options.onWritten?.(key, subject.current, status, readiness);
      return;
    }
    if (result.status === 404) return; // deleted meanwhile; the watch will tell us
    const retryInMs = this.#writes.retry(k);
    this.#options.log.error("receiver status update failed", {
      ...receiverLogFields(key),
      error: result.reason,
      retryInMs,
    });
  }
}
