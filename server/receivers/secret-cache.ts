/**
 * @module server/receivers/secret-cache
 * The one owner of what fluxhook knows about Secrets, answering one question per Secret:
 * `lookup` → absent, pending, unreadable (with the reason), or ready (with its keys).
 *
 * In a cluster the Secrets are watched as metadata only (kube/port.ts watchSecretMetadata): a
 * watched Secret is `pending` until it is read, and it is read (GET) only when a Receiver
 * references it and the version last read is not the current one. So a rotation is seen within
 * moments, as with a full watch, while the data of every other Secret (TLS keys, Helm releases)
 * never leaves the API server, as with Flux, which reads a Receiver's Secret when it needs it.
 * From files, Secrets arrive whole and nothing is read.
 *
 * A referenced Secret the watch has not shown is read too: Receivers and Secrets come in two
 * streams, and the Receivers' may be ahead (a `kubectl apply` of both at once). Until that read
 * answers, the Secret is pending rather than absent; a 404 makes it absent. A Secret known to be
 * absent is not read again: the watch tells when it is created.
 *
 * Reads run on a work queue (one per Secret at a time, SECRET_READ_CONCURRENCY at once, retried
 * with backoff). At the first sync, a namespace most of whose Secrets are referenced is read in
 * pages instead (a LIST, SECRET_LIST_MIN_SHARE): one request per hundred Secrets rather than one
 * each, and the data of a listed Secret no Receiver references is dropped with its page. What a
 * list did not settle (it failed, or a Secret changed meanwhile) is read Secret by Secret. A Secret whose reads fail stays as it was for the first few failures (a blip),
 * then is unreadable with the API's message, as Flux reports it, so that `kubectl get receivers`
 * shows e.g. missing RBAC.
 */
import type { Backoff } from "../../shared";
import { readSecret, type SecretData, type SecretRecord } from "../api/secret";
import { keyString, type ObjectKey } from "../api/receiver";
import type { KubeResult, SecretPage, WatchSink } from "../kube/port";
import { atLeastVersion, olderVersion } from "../kube/resource-version";
import { WorkQueue } from "../runtime/work-queue";
import type { Logger } from "../runtime/log";
import { SECRET_LIST_CONCURRENCY, SECRET_LIST_MIN_READS, SECRET_LIST_MIN_SHARE } from "../limits";

/** Secret reads in flight at once: thousands of Secrets are read in seconds, far below the API server's limits. */
const SECRET_READ_CONCURRENCY = 64;
/** Consecutive failed reads after which the Secret is unreadable (~1.5 s of retries). */
export const READ_FAILURES_BEFORE_UNREADABLE = 3;

export type SecretState =
  | { readonly kind: "absent" }
  | { readonly kind: "pending" }
  | { readonly kind: "unreadable"; readonly reason: string }
  | { readonly kind: "ready"; readonly data: SecretData };

export interface SecretCacheOptions {
  /** Reads one Secret; without it (files) Secrets arrive whole through `sink`. */
  readonly get?: (key: ObjectKey) => Promise<KubeResult<unknown>>;
  /**
   * Lists one page of a namespace's Secrets, whole; with it, the first sync reads namespaces whose
   * Secrets are mostly referenced in pages (see above), and no Secret is read before that sync.
   */
  readonly list?: (namespace: string, continueToken: string | undefined) => Promise<KubeResult<SecretPage>>;
  readonly log: Logger;
  /** Retry delays of failed reads (limits.ts Tuning.secretReadBackoff). */
  readonly backoff: Backoff;
}

interface Entry {
  readonly key: ObjectKey;
  /** The version the watch last showed; undefined when it has not shown the Secret (or deleted it). */
  watched: string | undefined;
  /** What is known of the data: read (or whole from files), or metadata only (`pending`). */
  record: SecretRecord | undefined;
  /** The version last read; "" when a read or the watch found it absent. */
  readVersion: string | undefined;
  /** The version whose read failed, counted as read until the retry (a newer version is read at once). */
  failedVersion: string | undefined;
  unreadable: string | undefined;
  /** The Receivers ("namespace/name") referencing it. */
  readonly referrers: Referrers;
  /** The watch deleted it while it was being read: what that read found is stale. */
  deletedDuringRead: boolean;
  /** Referenced and not read even once yet (the server is not ready before). */
  neverAttempted: boolean;
  /** Read by the list of its namespace in flight: not read on its own until that list ends. */
  listing: boolean;
}

/**
 * A set of Receiver keys that is usually of one: most Secrets serve one Receiver, and a JS Set
 * costs about 500 bytes of table even for one key (5 MB of the heap with 10,000 Receivers, each
 * with its own Secret; bench/README.md).
 */
export class Referrers implements Iterable<string> {
  #one: string | undefined;
  #many: Set<string> | undefined;

  get size(): number {
    return this.#many ? this.#many.size : this.#one === undefined ? 0 : 1;
  }

  add(key: string): void {
    if (this.#many) this.#many.add(key);
    else if (this.#one === undefined || this.#one === key) this.#one = key;
    else {
      this.#many = new Set([this.#one, key]);
      this.#one = undefined;
    }
  }

  delete(key: string): void {
    if (this.#many) this.#many.delete(key);
    else if (this.#one === key) this.#one = undefined;
  }

  *[Symbol.iterator](): Iterator<string> {
    if (this.#many) yield* [...this.#many];
    else if (this.#one !== undefined) yield this.#one;
  }
}

/** Told which Receivers to decide again: those of one Secret, or all of them after a list. */
export type SecretChanges = (receivers: Iterable<string> | "all") => void;

export class SecretCache {
  readonly #entries = new Map<string, Entry>();
  readonly #options: SecretCacheOptions;
  readonly #reads: WorkQueue;
  /** Namespaces being read in pages, each with the Secrets that list is to read. */
  readonly #lists: WorkQueue;
  readonly #listed = new Map<string, Entry[]>();
  #changed: SecretChanges = () => {};
  /** A list page is being applied: its Receivers are decided at the list's end, not per item. */
  #bulk = false;
  #synced = false;
  /** The Receivers' first list is in (referrersKnown): every reference of the first sync is known. */
  #referrersKnown = false;
  /** Reads have started: with lists, not before both first lists are in (#startReads). */
  #reading = false;
  #stopped = false;

  constructor(options: SecretCacheOptions) {
    this.#options = options;
    this.#reads = new WorkQueue({
      concurrency: SECRET_READ_CONCURRENCY,
      backoff: options.backoff,
      work: (k) => this.#read(k),
    });
    this.#lists = new WorkQueue({ concurrency: SECRET_LIST_CONCURRENCY, work: (ns) => this.#readNamespace(ns) });
  }

  /** The one listener (the controller) of changes that may decide Receivers differently. */
  onChange(listener: SecretChanges): void {
    this.#changed = listener;
  }

  /** True once the Secrets' first list was delivered. */
  get synced(): boolean {
    return this.#synced;
  }

  lookup(secret: string): SecretState {
    const e = this.#entries.get(secret);
    const r = e?.record;
    // A Secret read once is served from what was read; reads that keep failing decide.
    if (r && !r.pending) return { kind: "ready", data: r.data };
    if (e?.unreadable !== undefined) return { kind: "unreadable", reason: e.unreadable };
    if (r || (e && this.#awaited(e))) return { kind: "pending" };
    return { kind: "absent" };
  }

  /** A Receiver references this Secret: it is read if its current version was not. */
  refer(secret: ObjectKey, receiver: string): void {
    const e = this.#entry(secret);
    e.referrers.add(receiver);
    this.#consider(e);
  }

  unrefer(secret: string, receiver: string): void {
    const e = this.#entries.get(secret);
    if (!e) return;
    e.referrers.delete(receiver);
    if (e.referrers.size === 0) {
      e.unreadable = undefined;
      // A Secret no Receiver references keeps no data: it is read again if one refers to it again.
      // (Files have no reads: their Secrets arrive whole and stay.)
      if (this.#options.get && e.record && !e.record.pending) {
        e.record = { ...e.record, pending: true, data: {} };
        e.readVersion = undefined;
      }
    }
    this.#prune(e);
  }

  /**
   * The Receivers' first list is in, so every Secret the first sync references is known (the
   * controller calls this). Whichever of the two first lists ends last starts the reads.
   */
  referrersKnown(): void {
    this.#referrersKnown = true;
    this.#startReads();
  }

  /**
   * With lists, nothing is read before both first lists are in (#consider): then every Secret and
   * every reference is known, and what is referenced is read, by namespace where it pays. A
   * namespace's list decided before all its Receivers were listed would read most of them by GET.
   */
  #startReads() {
    if (this.#reading || !this.#synced || !this.#referrersKnown) return;
    this.#reading = true;
    if (this.#options.list) this.#readReferenced();
  }

  /** Referenced Secrets whose first read has not finished. */
  get unread(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.neverAttempted && e.referrers.size > 0) n++;
    return n;
  }

  stop(): void {
    this.#stopped = true;
    this.#reads.stop();
    this.#lists.stop();
  }

  /** The sink of the Secret watch (metadata objects) or of the files (whole Secrets). */
  readonly sink: WatchSink = (() => {
    let seen = new Set<string>();
    return {
      listPage: (items: readonly unknown[], first: boolean) => {
        if (first) seen = new Set();
        const page: Entry[] = [];
        this.#bulk = true;
        try {
          for (const obj of items) {
            const s = readSecret(obj);
            if (!s) continue;
            const e = this.#entry(s);
            seen.add(keyString(s));
            e.watched = s.resourceVersion;
            this.#put(e, s);
            page.push(e);
          }
        } finally {
          this.#bulk = false;
        }
        for (const e of page) this.#consider(e);
      },
      listEnd: () => {
        this.#bulk = true;
        try {
          for (const [k, e] of [...this.#entries]) {
            if (seen.has(k)) continue;
            if (e.watched !== undefined) this.#forget(e);
            // Absent Secrets no Receiver references need no memory of being absent.
            else if (e.referrers.size === 0) e.readVersion = undefined;
            if (e.record) this.#delete(e);
            this.#prune(e);
          }
        } finally {
          this.#bulk = false;
        }
        seen = new Set();
        this.#synced = true;
        this.#startReads();
        this.#changed("all");
      },
      upsert: (obj: unknown) => {
        const s = readSecret(obj);
        if (!s) return;
        const e = this.#entry(s);
        e.watched = s.resourceVersion;
        this.#put(e, s);
        this.#consider(e);
      },
      remove: (obj: unknown) => {
        const s = readSecret(obj);
        const e = s && this.#entries.get(keyString(s));
        if (!e) return;
        this.#forget(e);
        this.#delete(e);
        // After its Receivers were decided again (#delete tells them synchronously).
        if (e.referrers.size > 0)
          this.#options.log.debug("a Receiver's Secret was deleted", { secret: keyString(e.key) });
        this.#prune(e);
      },
    };
  })();

  #entry(key: ObjectKey): Entry {
    const k = keyString(key);
    let e = this.#entries.get(k);
    if (!e) {
      e = {
        key: { namespace: key.namespace, name: key.name },
        watched: undefined,
        record: undefined,
        readVersion: undefined,
        failedVersion: undefined,
        unreadable: undefined,
        referrers: new Referrers(),
        deletedDuringRead: false,
        neverAttempted: false,
        listing: false,
      };
      this.#entries.set(k, e);
    }
    return e;
  }

  /** Drops an entry that holds nothing any more. */
  #prune(e: Entry) {
    const k = keyString(e.key);
    if (e.referrers.size > 0 || e.watched !== undefined || e.record || e.readVersion !== undefined) return;
    // Not while its namespace's list runs, nor an entry made anew under its key since.
    if (e.listing || this.#reads.state(k) !== undefined || this.#entries.get(k) !== e) return;
    this.#entries.delete(k);
  }

  #notify(e: Entry) {
    if (!this.#bulk && e.referrers.size > 0) this.#changed(e.referrers);
  }

  /** Records what the watch, the files or a read showed of the Secret. */
  #put(e: Entry, s: SecretRecord) {
    const before = e.record;
    // Metadata of a version already read (a re-list, or a watch behind the read) changes nothing.
    if (before && s.pending && !before.pending && atLeastVersion(before.resourceVersion, s.resourceVersion)) return;
    e.record = s;
    if (!s.pending && e.unreadable !== undefined) {
      e.unreadable = undefined;
      return this.#notify(e);
    }
    // The same data under a newer version: recorded, nothing to decide again.
    if (before && before.pending === s.pending && sameData(before, s)) return;
    this.#notify(e);
  }

  /** The Secret is gone (deleted by the watch, or found absent by a read). */
  #delete(e: Entry) {
    e.record = undefined;
    e.unreadable = undefined;
    this.#notify(e);
  }

  /** The watch no longer shows the Secret: nothing to read until it shows it again. */
  #forget(e: Entry) {
    const k = keyString(e.key);
    e.watched = undefined;
    e.readVersion = e.referrers.size > 0 ? "" : undefined;
    e.failedVersion = undefined;
    if (this.#reads.state(k) === "running") e.deletedDuringRead = true;
    this.#reads.remove(k);
    e.neverAttempted = false;
  }

  /**
   * True while a Secret the watch has not shown is being read to learn whether it exists (queued,
   * in flight, or waiting to retry; one known to be absent is not).
   */
  #awaited(e: Entry): boolean {
    if (e.watched !== undefined) return false;
    const state = this.#reads.state(keyString(e.key));
    if (state === "waiting to retry") return true;
    return e.readVersion === undefined && state !== undefined;
  }

  /**
   * Whether the Secret is referenced and was not read at its current version or later (a read can
   * be ahead of the watch: it is served from the newest state); or, when the watch has not shown
   * it, whether nothing is known of it yet.
   */
  #needsRead(e: Entry): boolean {
    if (!this.#options.get || e.referrers.size === 0) return false;
    const read = this.#reads.state(keyString(e.key)) === "waiting to retry" ? e.failedVersion : e.readVersion;
    if (e.watched === undefined) return read === undefined;
    return read === undefined || !atLeastVersion(read, e.watched);
  }

  #consider(e: Entry) {
    if (this.#stopped || e.listing || !this.#needsRead(e)) return;
    // With lists, the first sync decides how each is read (#startReads).
    if (this.#options.list && !this.#reading) return;
    const k = keyString(e.key);
    if (e.readVersion === undefined && this.#reads.failures(k) === 0) e.neverAttempted = true;
    this.#reads.add(k);
  }

  /** One run of the read queue for a Secret; it is considered again afterwards. */
  #read(k: string): Promise<void> | undefined {
    const e = this.#entries.get(k);
    if (!e) return undefined;
    if (e.referrers.size === 0) this.#reads.forget(k); // a new reference starts afresh
    // The read in flight when this was queued may have read the current version already.
    if (!this.#needsRead(e)) return undefined;
    return this.#fetch(e, e.watched)
      .catch((err: unknown) =>
        this.#options.log.error("reading a Receiver's Secret failed", {
          secret: k,
          error: err instanceof Error ? err.message : String(err),
        }),
      )
      .finally(() => {
        e.neverAttempted = false;
        // A failed read waits for its retry: adding it now would run it at once and drop the
        // backoff. A newer version from the watch still reads it sooner (the sink considers it).
        if (!this.#reads.retrying(k)) this.#consider(e);
        this.#prune(e);
      });
  }

  /** A read (GET or list) found the Secret as `s`. */
  #readFound(e: Entry, s: SecretRecord) {
    e.readVersion = s.resourceVersion;
    // Older than what the watch has shown since (a read served just before a change): not
    // used, and read again.
    const current = e.watched;
    if (current === undefined || !olderVersion(s.resourceVersion, current)) this.#put(e, s);
  }

  /**
   * The first sync: every referenced Secret that needs a read, by namespace; a namespace where
   * enough are to be read, and they are most of its Secrets, is listed, the rest read one by one.
   */
  #readReferenced() {
    const byNamespace = new Map<string, { wanted: Entry[]; watched: number }>();
    const single: Entry[] = [];
    for (const e of this.#entries.values()) {
      const ns = e.key.namespace;
      let group = byNamespace.get(ns);
      if (!group) byNamespace.set(ns, (group = { wanted: [], watched: 0 }));
      if (e.watched !== undefined) group.watched++;
      if (!this.#needsRead(e)) continue;
      // One the watch has not shown is not in a list either: a GET tells whether it exists.
      if (e.watched === undefined) single.push(e);
      else group.wanted.push(e);
    }
    for (const [ns, { wanted, watched }] of byNamespace) {
      if (wanted.length >= SECRET_LIST_MIN_READS && wanted.length >= watched * SECRET_LIST_MIN_SHARE) {
        for (const e of wanted) {
          e.listing = true;
          e.neverAttempted = true;
        }
        this.#listed.set(ns, wanted);
        this.#lists.add(ns);
      } else single.push(...wanted);
    }
    for (const e of single) this.#consider(e);
  }

  /**
   * Lists a namespace's Secrets page by page and hands each one asked for on as a read; a page's
   * other Secrets are not kept. Those the list did not settle are then read one by one.
   */
  async #readNamespace(namespace: string) {
    const wanted = this.#listed.get(namespace) ?? [];
    this.#listed.delete(namespace);
    // The version each was asked for: one the watch deleted meanwhile is not handed on.
    const asked = new Map(wanted.map((e) => [keyString(e.key), e] as const));
    let token: string | undefined;
    try {
      do {
        const page = await this.#options.list!(namespace, token);
        if (this.#stopped) return;
        if (!page.ok) {
          this.#options.log.error("cannot list the Secrets of a namespace; reading them one by one", {
            namespace,
            error: page.reason,
          });
          return;
        }
        for (const obj of page.value.items) {
          const s = readSecret(obj);
          const e = s && asked.get(keyString(s));
          // Deleted since, or no longer referenced: its data is not kept.
          if (!s || s.pending || !e || e.watched === undefined || e.referrers.size === 0) continue;
          this.#readFound(e, s);
        }
        token = page.value.continue;
      } while (token);
    } catch (err) {
      this.#options.log.error("cannot list the Secrets of a namespace; reading them one by one", {
        namespace,
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      for (const e of wanted) {
        e.listing = false;
        e.neverAttempted = false;
        this.#consider(e);
        this.#prune(e);
      }
    }
  }

  /** Reads one Secret, asked for at version `issued` (undefined: the watch had not shown it). */
  async #fetch(e: Entry, issued: string | undefined) {
    const k = keyString(e.key);
    const result = await this.#options.get!(e.key);
    const deleted = e.deletedDuringRead;
    e.deletedDuringRead = false;
    const current = e.watched;
    if (this.#stopped || (issued !== undefined && current === undefined)) return; // deleted meanwhile: the watch said so
    if (result.ok) {
      this.#reads.forget(k);
      e.failedVersion = undefined;
      const s = readSecret(result.value);
      if (!s || (deleted && current === undefined)) {
        // Gone when read, or deleted since. A version newer than `issued` (re-created meanwhile)
        // is still to be read; with none, the Secret is absent and its Receivers are decided.
        e.readVersion = issued ?? "";
        if (current === undefined) this.#delete(e);
        return;
      }
      this.#readFound(e, s);
      return;
    }
    e.failedVersion = issued ?? "";
    const retryInMs = this.#reads.retry(k);
    this.#options.log.error("cannot read a Receiver's Secret", { secret: k, error: result.reason, retryInMs });
    if (
      this.#reads.failures(k) >= READ_FAILURES_BEFORE_UNREADABLE &&
      e.referrers.size > 0 &&
      e.unreadable !== result.reason
    ) {
      e.unreadable = result.reason;
      this.#notify(e);
    }
  }
}

function sameData(a: SecretRecord, b: SecretRecord): boolean {
  for (const key of ["token", "email", "audience"] as const) {
    const x = a.data[key];
    const y = b.data[key];
    if (x === undefined || y === undefined ? x !== y : !x.equals(y)) return false;
  }
  return true;
}
