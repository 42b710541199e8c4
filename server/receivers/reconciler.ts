/**
 * @module server/receivers/reconciler
 * Keeps the index and the Receivers' status in step with the cluster, in client-go's shape: the
 * caches' event handlers only queue a Receiver's key ("namespace/name"), and one work queue runs
 * `reconcile(key)`, at most once per key at a time. A reconcile reads the Receiver and its Secret
 * from the caches, decides once (decide.ts), updates the index, and then writes in Flux's order:
 * the finalizer, the status, and on a Ready transition the Event. A failed write queues the key
 * again after its backoff; what a write produced comes back only through the caches (the watch
 * event of it) and, until the watch shows it, through what this replica remembers having written.
 *
 * Nothing is reconciled before both caches hold their first list; readiness (server.ts) then also
 * waits for the first Secret reads, so a Receiver is never marked TokenNotFound only because its
 * Secret had not been read yet.
 */
import type { Backoff } from "../../shared";
import {
  keyString,
  RECEIVER_FINALIZER,
  receiverLogFields,
  type ObjectKey,
  type ReceiverObject,
  type ReceiverSpec,
  type ReceiverStatus,
} from "../api/receiver";
import {
  Reason,
  SUCCEEDED_MESSAGE,
  TERMINAL_PREFIX,
  desiredStatus,
  sameStatus,
  transitionEvent,
  type Readiness,
  type ReconcileEvent,
} from "../api/status";
import type { KubePort, KubeResult } from "../kube/port";
import { olderVersion } from "../kube/resource-version";
import { FULL_GC_EVERY_STATUS_WRITES } from "../limits";
import type { Logger } from "../runtime/log";
import { Slots } from "../runtime/slots";
import { WorkQueue } from "../runtime/work-queue";
import { decide, sameEntry, type Decision } from "./decide";
import type { ReceiverIndex } from "./index";
import { PathArbiter } from "./paths";
import { compilationKey, NOTHING_COMPILED, type Prepared } from "./prepare";
import type { ReceiverCache } from "./receiver-cache";
import type { SecretCache } from "./secret-cache";

/**
 * Receivers writing at once (each its finalizer, then its status): thousands are marked Ready at
 * start-up in seconds, with never more than this many writes in flight at the API server.
 */
export const RECONCILE_WRITE_CONCURRENCY = 16;

/** What the reconciler writes, and where: set in a cluster with --status-updates. */
export interface ReconcileWriter {
  /**
   * Flux's finalizer and the status: both are kept by whoever writes status (beside Flux,
   * --status-updates=false, they are Flux's).
   */
  readonly kube: Pick<KubePort, "patchReceiverFinalizers" | "patchReceiverStatus">;
  /** False while another replica leads: the leader writes. */
  readonly canWrite: () => boolean;
  /** Retry delays of a failed write (limits.ts Tuning.statusWriteBackoff). */
  readonly backoff: Backoff;
  /** Records the Event of a Ready transition (Flux's reasons); the recorder aggregates and writes it. */
  readonly recordEvent?: (key: ObjectKey, uid: string, event: ReconcileEvent) => void;
  /** A full garbage collection, run after every FULL_GC_EVERY_STATUS_WRITES status writes (default: Bun.gc). */
  readonly collectGarbage?: () => void;
}

/** Told what the reconciler did, for the metrics and the Events. */
export interface ReconcileObserver {
  /**
   * A reconcile finished, after `seconds`: deciding the Receiver (preparing its spec included)
   * and, when something changed, until its writes landed. Flux's runtime measures its Reconcile
   * the same way (gotk_reconcile_duration_seconds).
   */
  readonly reconciled?: (key: ObjectKey, seconds: number) => void;
  /** A status write failed (and is retried); not one whose Receiver was deleted meanwhile. */
  readonly statusWriteFailed?: () => void;
  /** A Receiver is gone, so that what was recorded about it can go too. */
  readonly deleted?: (key: ObjectKey) => void;
}

export interface ReconcilerOptions {
  readonly receivers: ReceiverCache;
  readonly secrets: SecretCache;
  readonly index: ReceiverIndex;
  /** Undefined when nothing is written (files, or --status-updates=false). */
  readonly writer?: ReconcileWriter;
  /**
   * Receivers from files have no status: one that cannot serve (suspended, Stalled) answers 503
   * at the path its token gives, not 404 for want of a status.webhookPath.
   */
  readonly withoutStatus?: boolean;
  /** --no-cross-namespace-refs: a Receiver naming every namespace (`namespace: "*"`) is not Ready. */
  readonly noCrossNamespaceRefs?: boolean;
  /** No cluster (a receivers file alone): one that routes by repository is not Ready (no sources to index). */
  readonly withoutSources?: boolean;
  /**
   * Compiles and checks a valid spec (CEL expressions, OIDC providers); a failure is a terminal
   * error. Called once per change of what it depends on (prepare.ts compilationKey), not per
   * reconcile. Without it every valid spec serves with nothing compiled.
   */
  readonly prepare?: (spec: ReceiverSpec) => Prepared;
  readonly observe?: ReconcileObserver;
  readonly log: Logger;
  /** Kubernetes' condition timestamp format (RFC 3339, seconds). */
  readonly now?: () => string;
}

/** What this replica remembers of a Receiver it reconciled. */
interface Remembered {
  readonly key: ObjectKey;
  /** The last preparation of its spec and what it was computed from. */
  prepared: { readonly key: string; readonly result: Prepared } | undefined;
  /** What this replica last wrote, until the watch shows the resourceVersion it produced. */
  written: Written | undefined;
}

interface Written {
  readonly resourceVersion: string;
  readonly finalizers: readonly string[] | undefined;
  readonly status: ReceiverStatus | undefined;
}

/** A Receiver's finalizers and status as they stand: the watch's, or our own newer writes. */
interface Current {
  readonly resourceVersion: string;
  readonly finalizers: readonly string[];
  readonly status: ReceiverStatus | undefined;
}

/** What one reconcile writes, decided once. */
interface Writes {
  /** The finalizer list to write, or undefined when it is right already. */
  readonly finalizers: readonly string[] | undefined;
  /** The status to write, or undefined when it says what it says already. */
  readonly status: ReceiverStatus | undefined;
  readonly readiness: Readiness | undefined;
}

const metaNow = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export class Reconciler {
  readonly #options: ReconcilerOptions;
  readonly #receivers: ReceiverCache;
  readonly #secrets: SecretCache;
  readonly #index: ReceiverIndex;
  readonly #paths: PathArbiter;
  readonly #queue: WorkQueue;
  readonly #writeSlots = new Slots(RECONCILE_WRITE_CONCURRENCY);
  readonly #remembered = new Map<string, Remembered>();
  /** Receivers whose reconcile waits for a write slot, each with what calls that wait off. */
  readonly #waiting = new Map<string, () => void>();
  /** Status writes landed since the last full collection. */
  #statusWrites = 0;
  #stopped = false;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
    this.#receivers = options.receivers;
    this.#secrets = options.secrets;
    this.#index = options.index;
    this.#paths = new PathArbiter(options.log);
    // Decisions never wait for one another (a run that writes nothing ends at once); writes wait
    // for one of the write slots.
    this.#queue = new WorkQueue({
      concurrency: Number.POSITIVE_INFINITY,
      backoff: options.writer?.backoff,
      work: (key) => this.#reconcile(key),
    });
    // The event handlers: a changed Receiver, or the Receivers of a changed Secret, are queued.
    this.#receivers.onChange((keys) => this.#enqueue(keys));
    this.#secrets.onChange((keys) => this.#enqueue(keys === "all" ? this.#receivers.keys() : keys));
  }

  /** True once both caches hold their first list (every Receiver is then decided, or waits for its Secret). */
  get synced(): boolean {
    return this.#receivers.synced && this.#secrets.synced;
  }

  /** Receivers by readiness, for the metrics (suspended ones count as not ready). */
  counts(): { ready: number; notReady: number } {
    let ready = 0;
    for (const entry of this.#index.entries()) if (entry.unavailable === undefined) ready++;
    return { ready, notReady: this.#receivers.size - ready };
  }

  /** Reconciles every Receiver again (on becoming leader: the previous one may have left work). */
  resync(): void {
    this.#enqueue(this.#receivers.keys());
  }

  /** Stops reconciling; writes in flight finish, those waiting for a slot are not made. */
  stop(): void {
    this.#stopped = true;
    this.#queue.stop();
  }

  #enqueue(keys: Iterable<string>) {
    if (!this.synced) return;
    for (const key of [...keys]) {
      // A reconcile still waiting for a write slot is called off: its re-run decides at once, so
      // the index never waits behind other Receivers' writes.
      this.#waiting.get(key)?.();
      this.#queue.add(key);
      // One whose writes are out (each up to a call timeout) runs again only after them: the index
      // is decided now, so a revoked Secret or a suspension stops deliveries at once.
      if (this.#queue.addedWhileRunning(key)) this.#decideAndIndex(key);
    }
  }

  /** Decides one Receiver on what the caches hold and swaps its index entry; undefined while its Secret is read. */
  #decideAndIndex(
    key: string,
  ): { receiver: ReceiverObject; remembered: Remembered; current: Current; decision: Decision } | undefined {
    const receiver = this.#receivers.get(key);
    if (!receiver) return undefined;
    let remembered = this.#remembered.get(key);
    if (!remembered)
      this.#remembered.set(key, (remembered = { key: receiver.key, prepared: undefined, written: undefined }));
    const current = this.#current(remembered, receiver);
    const decision = decide(receiver, {
      secret: (secret) => this.#secrets.lookup(secret),
      prepare: (spec) => this.#prepare(remembered, spec),
      status: current.status,
      otherAt: (path, self) => this.#otherAt(path, self),
      withoutStatus: this.#options.withoutStatus ?? false,
      noCrossNamespaceRefs: this.#options.noCrossNamespaceRefs ?? false,
      withoutSources: this.#options.withoutSources ?? false,
    });
    // Its Secret is being read: what was decided before stands, and the Secret cache queues it once read.
    if (decision.pending) return undefined;
    this.#updateIndex(key, receiver, decision);
    return { receiver, remembered, current, decision };
  }

  /** One run for one Receiver: decided once, indexed, then written (see the module comment). */
  #reconcile(key: string): Promise<void> | undefined {
    if (!this.#receivers.get(key)) return this.#deleted(key);
    const started = performance.now();
    const decided = this.#decideAndIndex(key);
    if (!decided) return undefined;
    const { receiver, remembered, current, decision } = decided;
    const writes = this.#writesFor(receiver, current, decision);
    if (!writes) {
      this.#options.observe?.reconciled?.(receiver.key, (performance.now() - started) / 1000);
      return undefined;
    }
    return this.#write(key, remembered, receiver, current, writes, started).catch((err: unknown) => {
      // The port answers failures as values: a throw is a bug, logged and retried like a failed write.
      const retryInMs = this.#queue.retry(key);
      this.#options.log.error("reconciling a Receiver failed", {
        ...receiverLogFields(receiver.key),
        error: err instanceof Error ? err.message : String(err),
        retryInMs,
      });
    });
  }

  /**
   * The Receiver's finalizers and status as they stand: our own last write until the watch has
   * caught up with it. Watch events older than our write carry stale values, and deciding on them
   * would write again (or "correct" a newer status back).
   */
  #current(remembered: Remembered, receiver: ReceiverObject): Current {
    const written = remembered.written;
    if (written && olderVersion(receiver.resourceVersion, written.resourceVersion))
      return {
        resourceVersion: written.resourceVersion,
        finalizers: written.finalizers ?? receiver.finalizers,
        status: written.status ?? receiver.status,
      };
    remembered.written = undefined;
    return receiver;
  }

  /** The spec's preparation, reused while what it depends on is unchanged. */
  #prepare(remembered: Remembered, spec: ReceiverSpec): Prepared {
    const prepare = this.#options.prepare;
    if (!prepare) return { ok: true, compiled: NOTHING_COMPILED };
    const key = compilationKey(spec);
    if (remembered.prepared?.key === key) return remembered.prepared.result;
    const result = prepare(spec);
    remembered.prepared = { key, result };
    return result;
  }

  /** The other Receiver serving this path, if one does. */
  #otherAt(path: string, self: ObjectKey): ReceiverObject | undefined {
    const holder = this.#index.lookup(path);
    const holderKey = holder && keyString(holder.key);
    return holderKey !== undefined && holderKey !== keyString(self) ? this.#receivers.get(holderKey) : undefined;
  }

  /** The decision in the index: the entry swapped at once, and the paths it took or freed arbitrated. */
  #updateIndex(key: string, receiver: ReceiverObject, decision: Decision) {
    const before = this.#index.get(receiver.key)?.path;
    if (decision.refused !== undefined) {
      const holder = this.#index.lookup(decision.refused);
      this.#paths.refuse(receiver.key, decision.refused, holder ? keyString(holder.key) : undefined);
    } else this.#paths.release(key);
    if (decision.entry) {
      // The same decision again (a watch event of our own write) keeps the entry it made: a
      // long-lived entry replaced by an equal one is old-space garbage (sharedWith).
      const current = this.#index.get(receiver.key);
      if (!current || !sameEntry(current, decision.entry)) {
        // An older Receiver takes the path: the younger one is reconciled again, and refused.
        const evicted = this.#index.set(decision.entry);
        if (evicted) this.#enqueue([keyString(evicted.key)]);
      }
    } else this.#index.remove(receiver.key);
    if (before !== undefined && before !== this.#index.get(receiver.key)?.path) this.#freed(before);
  }

  /** A path no longer served by the Receiver that held it: those refused it are reconciled again. */
  #freed(path: string) {
    this.#enqueue(this.#paths.waiting(path));
  }

  /** What this reconcile is to write: nothing unless this replica writes and something changed. */
  #writesFor(receiver: ReceiverObject, current: Current, decision: Decision): Writes | undefined {
    if (!this.#options.writer?.canWrite()) return undefined;
    const finalizers = wantedFinalizers(receiver.deleting, current.finalizers);
    const readiness = decision.readiness;
    const desired =
      readiness &&
      desiredStatus(
        readiness,
        receiver.generation,
        current.status,
        (this.#options.now ?? metaNow)(),
        receiver.requestedAt,
      );
    const status = desired && !sameStatus(current.status, desired) ? desired : undefined;
    return finalizers || status ? { finalizers, status, readiness } : undefined;
  }

  /** The writes of one reconcile, in Flux's order: the finalizer, the status, then its Event. */
  async #write(
    key: string,
    remembered: Remembered,
    receiver: ReceiverObject,
    current: Current,
    writes: Writes,
    started: number,
  ) {
    const writer = this.#options.writer!;
    const release = await this.#slot(key);
    // Changed while it waited for a slot: the re-run decides again, and writes what it decides.
    if (!release) return;
    // Before each write: stopped, no longer leading (the leader writes), or changed since the
    // decision (its re-run writes what it decides).
    const stale = () => this.#stopped || this.#queue.addedWhileRunning(key) || !writer.canWrite();
    try {
      if (stale()) return;
      if (writes.finalizers) {
        const result = await writer.kube.patchReceiverFinalizers(
          receiver.key,
          current.finalizers,
          writes.finalizers,
          current.resourceVersion,
        );
        if (!result.ok) return this.#finalizerFailed(key, receiver, result);
        this.#remember(remembered, result.value, { finalizers: writes.finalizers });
        this.#options.log.info(receiver.deleting ? "finalizer removed" : "finalizer added", {
          ...receiverLogFields(receiver.key),
          finalizer: RECEIVER_FINALIZER,
        });
      }
      if (writes.status) {
        if (stale()) return;
        const result = await writer.kube.patchReceiverStatus(receiver.key, writes.status);
        if (!result.ok) return this.#statusFailed(key, receiver, result);
        this.#remember(remembered, result.value, { status: writes.status });
        if (++this.#statusWrites >= FULL_GC_EVERY_STATUS_WRITES) {
          this.#statusWrites = 0;
          (writer.collectGarbage ?? (() => Bun.gc(true)))();
        }
        const ready = writes.status.conditions?.find((condition) => condition.type === "Ready");
        this.#options.log.info("receiver status updated", {
          ...receiverLogFields(receiver.key),
          ready: ready?.status,
          reason: ready?.reason,
        });
        // The status landed; its Event tells of that write, so it is recorded even if a newer decision waits.
        if (writes.readiness && writer.canWrite())
          this.#transitioned(receiver, current.status, writes.status, writes.readiness);
      }
      this.#queue.forget(key);
      this.#options.observe?.reconciled?.(receiver.key, (performance.now() - started) / 1000);
    } finally {
      release();
    }
  }

  /** One of the write slots, or undefined when the Receiver changed while it waited (#enqueue). */
  async #slot(key: string): Promise<(() => void) | undefined> {
    const acquiring = this.#writeSlots.acquire();
    const calledOff = new Promise<undefined>((resolve) => this.#waiting.set(key, () => resolve(undefined)));
    try {
      const release = await Promise.race([acquiring, calledOff]);
      if (!release) void acquiring.then((granted) => granted());
      return release;
    } finally {
      this.#waiting.delete(key);
    }
  }

  /** A write landed at `resourceVersion`: remembered until the watch shows that version. */
  #remember(remembered: Remembered, resourceVersion: string, wrote: Partial<Pick<Written, "finalizers" | "status">>) {
    const seen = this.#receivers.get(keyString(remembered.key))?.resourceVersion;
    if (seen === undefined || !olderVersion(seen, resourceVersion)) return;
    remembered.written = {
      resourceVersion,
      finalizers: wrote.finalizers ?? remembered.written?.finalizers,
      status: wrote.status ?? remembered.written?.status,
    };
  }

  #finalizerFailed(key: string, receiver: ReceiverObject, result: Extract<KubeResult<string>, { ok: false }>) {
    // Gone already, or its finalizers changed since (the test failed, or a finalizer may no longer
    // be added because it is being deleted): the watch event that says so reconciles it again.
    if (result.status === 404 || result.status === 409 || result.status === 422) return;
    const retryInMs = this.#queue.retry(key);
    this.#options.log.error(receiver.deleting ? "cannot remove the finalizer" : "cannot add the finalizer", {
      ...receiverLogFields(receiver.key),
      error: result.reason,
      retryInMs,
    });
  }

  #statusFailed(key: string, receiver: ReceiverObject, result: Extract<KubeResult<string>, { ok: false }>) {
    if (result.status === 404) return; // deleted meanwhile; the watch tells the rest
    this.#options.observe?.statusWriteFailed?.();
    const retryInMs = this.#queue.retry(key);
    this.#options.log.error("receiver status update failed", {
      ...receiverLogFields(receiver.key),
      error: result.reason,
      retryInMs,
    });
  }

  /**
   * A status was written: on a Ready transition, its Event and a log line as Flux's (failures at
   * error with the error under `error`; controller-runtime words the retried ones "Reconciler error").
   */
  #transitioned(
    receiver: ReceiverObject,
    before: ReceiverStatus | undefined,
    after: ReceiverStatus,
    readiness: Readiness,
  ) {
    const event = transitionEvent(before, after, readiness);
    if (!event) return;
    this.#options.writer?.recordEvent?.(receiver.key, receiver.uid, event);
    const fields = receiverLogFields(receiver.key);
    const log = this.#options.log;
    if (readiness.kind === "terminal")
      log.error(TERMINAL_PREFIX, { ...fields, reason: readiness.reason, error: readiness.message });
    else if (readiness.kind === "token-not-found")
      log.error("Reconciler error", { ...fields, reason: Reason.tokenNotFound, error: readiness.message });
    else if (readiness.kind === "ready") log.info(SUCCEEDED_MESSAGE, fields);
  }

  /** The Receiver is gone: what was decided and remembered about it goes too. */
  #deleted(key: string): undefined {
    const remembered = this.#remembered.get(key);
    if (!remembered) return undefined;
    this.#remembered.delete(key);
    this.#queue.forget(key);
    const path = this.#index.get(remembered.key)?.path;
    this.#index.remove(remembered.key);
    this.#paths.release(key);
    if (path !== undefined) this.#freed(path);
    this.#options.observe?.deleted?.(remembered.key);
    this.#options.log.info("receiver deleted", receiverLogFields(remembered.key));
    return undefined;
  }
}

/** The finalizers the Receiver should carry, or undefined when they are right already. */
function wantedFinalizers(deleting: boolean, finalizers: readonly string[]): readonly string[] | undefined {
  const has = finalizers.includes(RECEIVER_FINALIZER);
  if (deleting) return has ? finalizers.filter((finalizer) => finalizer !== RECEIVER_FINALIZER) : undefined;
  // The API server refuses new finalizers on an object being deleted: adding is for live ones.
  return has ? undefined : [...finalizers, RECEIVER_FINALIZER];
}
