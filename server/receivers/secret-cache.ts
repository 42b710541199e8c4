/**
 * @module server/receivers/secret-fetcher
 * Reads the Secrets that Receivers reference, and only those.
 *
 * The cluster's Secrets are watched as metadata only (kube/port.ts watchSecretMetadata). This
 * module sits between that watch and the controller: it passes every metadata object on (the
 * controller records the Secret as existing but `pending`), and GETs a Secret when a Receiver
 * references it and the version it last read is not the current one. The full Secret then goes
 * to the controller as an update. So a Secret rotation is seen within moments, as with a full
 * watch, while the data of every other Secret (TLS keys, Helm releases) never leaves the API
 * server, as with Flux, which reads a Receiver's Secret when it needs it.
 *
 * A referenced Secret the watch has not shown is read too: the Receivers and the Secrets come
 * in two streams, and the Receiver's may be ahead (a `kubectl apply` of both at once). Until that
 * read answers (`awaits`), its Receivers wait rather than be marked TokenNotFound; a 404 then
 * decides them. A Secret known to be absent (read, or deleted by the watch) is not read again:
 * the watch tells when it is created.
 *
 * Reads are single-flight per Secret, at most SECRET_READ_CONCURRENCY at once, and retried with
 * backoff on errors. A Receiver whose Secret cannot be read stays as it was decided before for
 * the first few failures (a blip), then is TokenNotFound with the error (`onUnreadable`), as Flux
 * marks it, so that `kubectl get receivers` shows e.g. missing RBAC.
 */
import type { KubeResult, WatchSink } from "../kube/port";
import type { Logger } from "../observe/log";
import { keyString, type ObjectKey } from "../api/receiver";
import { atLeastVersion, olderVersion } from "../kube/resource-version";

/**
 * Secret reads in flight at once: the 10,000 Secrets of bench scenario (6) are read in about a
 * second, and the API server's default limit of 400 read requests in flight is far away.
 */
const SECRET_READ_CONCURRENCY = 64;
/** Retry delays of a failed read. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/** Consecutive failed reads after which the Secret's Receivers show the error (~1.5 s of retries). */
export const READ_FAILURES_BEFORE_UNREADABLE = 3;

export interface SecretFetcherOptions {
  readonly get: (key: ObjectKey) => Promise<KubeResult<unknown>>;
  /** Where Secrets go: metadata objects as they are watched, full ones once read. */
  readonly sink: WatchSink;
  /** Whether a Receiver references this Secret ("namespace/name"). */
  readonly isReferenced: (secret: string) => boolean;
  /** Reads of this Secret keep failing with this reason (until it is read or deleted). */
  readonly onUnreadable?: (secret: string, reason: string) => void;
  readonly log: Logger;
  /** First retry delay (tests shorten it). */
  readonly retryMinMs?: number;
}

interface Metadata {
  readonly key: ObjectKey;
  readonly resourceVersion: string;
}

function metadataOf(obj: unknown): Metadata | undefined {
  const meta = (obj as { metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown } } | null)
    ?.metadata;
  if (typeof meta?.name !== "string" || typeof meta.namespace !== "string") return undefined;
  return {
    key: { namespace: meta.namespace, name: meta.name },
    resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : "",
  };
}

export class SecretFetcher {
  /** The current version of every Secret the watch reported. */
  readonly #versions = new Map<string, Metadata>();
  /**
   * The version last read, per Secret; "" for a referenced Secret known to be absent (a read
   * found none, or the watch deleted it), so that it is not read again until the watch shows it.
   */
  readonly #read = new Map<string, string>();
  /** Secrets the watch deleted while they were being read: what that read found is stale. */
  readonly #deletedDuringRead = new Set<string>();
  readonly #queue = new Map<string, ObjectKey>();
  readonly #inFlight = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retries = new Map<string, ReturnType<typeof setTimeout>>();
  /** Secrets not read even once yet, for readiness. */
  readonly #neverAttempted = new Set<string>();
  readonly #options: SecretFetcherOptions;
  #stopped = false;

  constructor(options: SecretFetcherOptions) {
    this.#options = options;
  }

  /** The sink for the metadata watch. */
  readonly sink: WatchSink = (() => {
    let seen = new Set<string>();
    return {
      listPage: (items: readonly unknown[], first: boolean) => {
        if (first) seen = new Set();
        const keys: string[] = [];
        for (const obj of items) {
          const meta = metadataOf(obj);
          if (!meta) continue;
          const k = keyString(meta.key);
          keys.push(k);
          seen.add(k);
          this.#versions.set(k, meta);
        }
        // The controller records the page first, so that what is read next finds its Receivers.
        this.#options.sink.listPage(items, first);
        for (const k of keys) this.#consider(k);
      },
      listEnd: () => {
        for (const k of [...this.#versions.keys()]) if (!seen.has(k)) this.#forget(k);
        // Absent Secrets no Receiver references any more need no memory of being absent.
        for (const k of [...this.#read.keys()])
          if (!this.#versions.has(k) && !this.#options.isReferenced(k)) this.#read.delete(k);
        seen = new Set();
        this.#options.sink.listEnd();
      },
      upsert: (obj: unknown) => {
        const meta = metadataOf(obj);
        if (meta) this.#versions.set(keyString(meta.key), meta);
        this.#options.sink.upsert(obj);
        if (meta) this.#consider(keyString(meta.key));
      },
      remove: (obj: unknown) => {
        const meta = metadataOf(obj);
        if (meta) this.#forget(keyString(meta.key));
        this.#options.sink.remove(obj);
      },
    };
  })();

  /**
   * A Receiver references this Secret: read it if it was not read at its current version, or,
   * when the watch has not shown it, if it is not known to be absent.
   */
  want(key: ObjectKey): void {
    this.#consider(keyString(key), key);
  }

  /**
   * True while a Secret the watch has not shown is being read to learn whether it exists (queued,
   * in flight, or waiting to retry): its Receivers are not decided meanwhile.
   */
  awaits(secret: string): boolean {
    if (this.#versions.has(secret)) return false;
    // A failed read will be retried; one known to be absent (a 404, or deleted by the watch) is not.
    if (this.#retries.has(secret)) return true;
    return !this.#read.has(secret) && (this.#queue.has(secret) || this.#inFlight.has(secret));
  }

  /** Referenced Secrets whose first read has not finished (the server is not ready before). */
  get unread(): number {
    let n = 0;
    for (const k of this.#neverAttempted) if (this.#options.isReferenced(k)) n++;
    return n;
  }

  stop(): void {
    this.#stopped = true;
    this.#queue.clear();
    for (const timer of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  #forget(k: string) {
    this.#versions.delete(k);
    if (this.#options.isReferenced(k)) this.#read.set(k, "");
    else this.#read.delete(k);
    if (this.#inFlight.has(k)) this.#deletedDuringRead.add(k);
    this.#queue.delete(k);
    this.#failures.delete(k);
    this.#neverAttempted.delete(k);
    this.#cancelRetry(k);
  }

  #cancelRetry(k: string) {
    const timer = this.#retries.get(k);
    if (timer) clearTimeout(timer);
    this.#retries.delete(k);
  }

  /**
   * Whether the Secret is referenced and was not read at its current version or later (a read can
   * be ahead of the watch: it is served from the newest state); or, when the watch has not shown
   * it, whether nothing is known of it yet.
   */
  #needsRead(k: string): boolean {
    if (!this.#options.isReferenced(k)) return false;
    const meta = this.#versions.get(k);
    const read = this.#read.get(k);
    if (meta === undefined) return read === undefined;
    return read === undefined || !atLeastVersion(read, meta.resourceVersion);
  }

  #consider(k: string, key: ObjectKey | undefined = this.#versions.get(k)?.key) {
    if (!key || !this.#needsRead(k)) return;
    if (!this.#read.has(k) && !this.#failures.has(k)) this.#neverAttempted.add(k);
    this.#queue.set(k, key);
    this.#pump();
  }

  #pump() {
    for (const [k, key] of this.#queue) {
      if (this.#stopped || this.#inFlight.size >= SECRET_READ_CONCURRENCY) return;
      // Stays queued behind the read in flight, and is considered again when that one lands.
      if (this.#inFlight.has(k)) continue;
      this.#queue.delete(k);
      // The read in flight when this was queued may have read the current version already.
      if (!this.#needsRead(k)) continue;
      this.#inFlight.add(k);
      const issued = this.#versions.get(k)?.resourceVersion;
      void this.#fetch(k, key, issued)
        .catch((err: unknown) =>
          this.#options.log.error("reading a Receiver's Secret failed", {
            secret: k,
            error: err instanceof Error ? err.message : String(err),
          }),
        )
        .finally(() => {
          this.#inFlight.delete(k);
          this.#neverAttempted.delete(k);
          this.#consider(k, key);
          this.#pump();
        });
    }
  }

  /**
   * Reads one Secret, asked for at version `issued` (undefined: the watch had not shown it); the
   * caller considers it again afterwards.
   */
  async #fetch(k: string, key: ObjectKey, issued: string | undefined) {
    const result = await this.#options.get(key);
    const deleted = this.#deletedDuringRead.delete(k);
    const current = this.#versions.get(k);
    if (this.#stopped || (issued !== undefined && !current)) return; // deleted meanwhile: the watch said so
    if (result.ok) {
      this.#failures.delete(k);
      this.#cancelRetry(k);
      const meta = metadataOf(result.value);
      if (!meta || (deleted && !current)) {
        // Gone when read, or deleted since. A version newer than `issued` (re-created meanwhile)
        // is still to be read; with none, the Secret is absent and its Receivers are decided.
        this.#read.set(k, issued ?? "");
        if (!current) {
          this.#queue.delete(k); // absent: nothing to read again until the watch shows it
          this.#options.sink.remove({ metadata: { namespace: key.namespace, name: key.name } });
        }
        return;
      }
      this.#read.set(k, meta.resourceVersion);
      // Older than what the watch has shown since (a read served just before a change): not
      // handed on, and read again.
      if (!current || !olderVersion(meta.resourceVersion, current.resourceVersion))
        this.#options.sink.upsert(result.value);
      return;
    }
    const failures = (this.#failures.get(k) ?? 0) + 1;
    this.#failures.set(k, failures);
    const delay = Math.min(RETRY_MAX_MS, (this.#options.retryMinMs ?? RETRY_MIN_MS) * 2 ** Math.min(failures - 1, 10));
    this.#options.log.error("cannot read a Receiver's Secret", { secret: k, error: result.reason, retryInMs: delay });
    // Counted as read at `issued` until the retry, so it is not read again at once (a newer
    // version is). A Secret the watch has not shown stays awaited until then.
    this.#read.set(k, issued ?? "");
    this.#cancelRetry(k);
    const timer = setTimeout(() => {
      this.#retries.delete(k);
      if (this.#stopped) return;
      this.#read.delete(k);
      // No longer referenced: its failures are forgotten, so a new reference starts afresh.
      if (!this.#options.isReferenced(k)) this.#failures.delete(k);
      else this.#consider(k, key);
    }, delay);
    timer.unref?.();
    this.#retries.set(k, timer);
    if (failures >= READ_FAILURES_BEFORE_UNREADABLE) this.#options.onUnreadable?.(k, result.reason);
  }
}
