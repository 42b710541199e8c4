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
 * Reads are single-flight per Secret, at most SECRET_READ_CONCURRENCY at once, and retried with
 * backoff on errors (a Receiver whose Secret cannot be read stays as it was decided before).
 */
import type { KubeResult, WatchSink } from "../kube/port";
import type { Logger } from "../log";
import type { ObjectKey } from "./api";
import { keyString } from "./index";
import { atLeastVersion, olderVersion } from "../kube/resource-version";

/**
 * Secret reads in flight at once: the 10,000 Secrets of bench scenario (6) are read in about a
 * second, and the API server's default limit of 400 read requests in flight is far away.
 */
const SECRET_READ_CONCURRENCY = 64;
/** Retry delays of a failed read. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface SecretFetcherOptions {
  readonly get: (key: ObjectKey) => Promise<KubeResult<unknown>>;
  /** Where Secrets go: metadata objects as they are watched, full ones once read. */
  readonly sink: WatchSink;
  /** Whether a Receiver references this Secret ("namespace/name"). */
  readonly isReferenced: (secret: string) => boolean;
  readonly log: Logger;
  /** First retry delay (tests shorten it). */
  readonly retryMinMs?: number;
}

interface Metadata {
  readonly key: ObjectKey;
  readonly resourceVersion: string;
}

function metadataOf(obj: unknown): Metadata | undefined {
  const meta = (obj as { metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown } } | null)?.metadata;
  if (typeof meta?.name !== "string" || typeof meta.namespace !== "string") return undefined;
  return { key: { namespace: meta.namespace, name: meta.name }, resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : "" };
}

export class SecretFetcher {
  /** The current version of every Secret the watch reported. */
  readonly #versions = new Map<string, Metadata>();
  /** The version last read, per Secret. */
  readonly #read = new Map<string, string>();
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

  /** A Receiver references this Secret: read it if it exists and was not read at its version. */
  want(key: ObjectKey): void {
    this.#consider(keyString(key));
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
    this.#read.delete(k);
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
   * Whether the Secret exists, is referenced, and was not read at its current version or later
   * (a read can be ahead of the watch: it is served from the newest state).
   */
  #needsRead(k: string): boolean {
    const meta = this.#versions.get(k);
    if (meta === undefined || !this.#options.isReferenced(k)) return false;
    const read = this.#read.get(k);
    return read === undefined || !atLeastVersion(read, meta.resourceVersion);
  }

  #consider(k: string) {
    const meta = this.#versions.get(k);
    if (!meta || !this.#needsRead(k)) return;
    if (!this.#read.has(k) && !this.#failures.has(k)) this.#neverAttempted.add(k);
    this.#queue.set(k, meta.key);
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
      const issued = this.#versions.get(k)!.resourceVersion;
      void this.#fetch(k, key, issued)
        .catch((err: unknown) => this.#options.log.error("reading a Receiver's Secret failed", { secret: k, error: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          this.#inFlight.delete(k);
          this.#neverAttempted.delete(k);
          this.#consider(k);
          this.#pump();
        });
    }
  }

  /** Reads one Secret, asked for at version `issued`; the caller considers it again afterwards. */
  async #fetch(k: string, key: ObjectKey, issued: string) {
    const result = await this.#options.get(key);
    if (this.#stopped || !this.#versions.has(k)) return; // deleted meanwhile: the watch said so
    if (result.ok) {
      this.#failures.delete(k);
      this.#cancelRetry(k);
      const meta = metadataOf(result.value);
      if (!meta) {
        // Gone when read. Its DELETED event follows; a version newer than `issued` (re-created
        // meanwhile) is still to be read.
        this.#read.set(k, issued);
        return;
      }
      this.#read.set(k, meta.resourceVersion);
      // Older than what the watch has shown since (a read served just before a change): not
      // handed on, and read again.
      if (!olderVersion(meta.resourceVersion, this.#versions.get(k)!.resourceVersion)) this.#options.sink.upsert(result.value);
      return;
    }
    const failures = (this.#failures.get(k) ?? 0) + 1;
    this.#failures.set(k, failures);
    const delay = Math.min(RETRY_MAX_MS, (this.#options.retryMinMs ?? RETRY_MIN_MS) * 2 ** Math.min(failures - 1, 10));
    this.#options.log.error("cannot read a Receiver's Secret", { secret: k, error: result.reason, retryInMs: delay });
    // Counted as read at `issued` until the retry, so it is not read again at once (a newer
    // version is).
    this.#read.set(k, issued);
    this.#cancelRetry(k);
    const timer = setTimeout(() => {
      this.#retries.delete(k);
      if (this.#stopped || !this.#versions.has(k)) return;
      this.#read.delete(k);
      this.#consider(k);
    }, delay);
    timer.unref?.();
    this.#retries.set(k, timer);
  }
}
