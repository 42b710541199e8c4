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
 * list did not settle (it failed, or a Secret changed meanwhile) is read Secret by Secret. A
 * Secret whose reads fail stays as it was for the first few failures (a blip), then is unreadable
 * with the API's message, as Flux reports it, so that `kubectl get receivers` shows e.g. missing
 * RBAC.
 *
 * Each Secret is two facts: the version the metadata watch shows, and its data's state, one of
 * `SecretState`. `lookup` answers from both (and from whether a read is out), and every change
 * tells the Secret's Receivers when, and only when, that lookup changed.
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

/** What a Receiver sees of its Secret. */
export type SecretLookup =
  | { readonly kind: "absent" }
  | { readonly kind: "pending" }
  | { readonly kind: "unreadable"; readonly reason: string }
  | { readonly kind: "ready"; readonly data: SecretData };

/**
 * The state of one Secret's data. Versions are resourceVersions; "" stands for "the watch had not
 * shown it".
 */
export type SecretState =
  /** Nothing of its data is known: no Receiver references it (only theirs are kept), or its first read has not answered. */
  | { readonly kind: "unread" }
  /** Its namespace's Secrets are being listed (the first sync): that list reads it, or it is read on its own after. */
  | { readonly kind: "listing" }
  /** Read (or whole, from files) at `record.resourceVersion`. */
  | { readonly kind: "read"; readonly record: SecretRecord }
  /**
   * It does not exist: the watch deleted it (asked ""), or a read asked at version `asked` found
   * none. Read again only once the watch shows a version newer than `asked`.
   */
  | { readonly kind: "absent"; readonly asked: string }
  /**
   * Its last read, asked at version `asked`, failed with the API's `reason`; it is read again after
   * the backoff, or at once for a newer version. `had`, an earlier read, is served meanwhile.
   */
  | {
      readonly kind: "failing";
      readonly asked: string;
      readonly reason: string;
      readonly had: SecretRecord | undefined;
    };

export interface SecretCacheOptions {
  /** Reads one Secret; without it (files) Secrets arrive whole through `sink`. */
  readonly get?: (key: ObjectKey) => Promise<KubeResult<unknown>>;
  /**
   * Lists one page of a namespace's Secrets, whole; with it, the first sync reads namespaces whose
   * Secrets are mostly referenced in pages (see above), and no Secret is read before that sync.
   */
  readonly list?: (namespace: string, continueToken: string | undefined) => Promise<KubeResult<SecretPage>>;
  /** Told of each read (GET or list page) the API refused or failed (not of a Secret found absent). */
  readonly onReadFailed?: () => void;
  readonly log: Logger;
  /** Retry delays of failed reads (limits.ts Tuning.secretReadBackoff). */
  readonly backoff: Backoff;
}

interface Entry {
  readonly key: ObjectKey;
  /** The version the metadata watch (or the files) shows; undefined when it does not show the Secret. */
  watched: string | undefined;
  /** Replaced whole on every change, so a read can tell whether the state it began from still holds. */
  state: SecretState;
  /** The Receivers ("namespace/name") referencing it. */
  readonly referrers: Referrers;
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

/** Told which Receivers may be decided differently: those of one Secret, or all of them after a list. */
export type SecretChanges = (receivers: Iterable<string> | "all") => void;

const ABSENT: SecretLookup = Object.freeze({ kind: "absent" });
const PENDING: SecretLookup = Object.freeze({ kind: "pending" });

export class SecretCache {
  readonly #entries = new Map<string, Entry>();
  readonly #options: SecretCacheOptions;
  readonly #reads: WorkQueue;
  /** Namespaces being read in pages, each with the Secrets that list is to read. */
  readonly #lists: WorkQueue;
  readonly #listed = new Map<string, Entry[]>();
  #changed: SecretChanges = () => {};
  /** The end of a list is being applied: every Receiver is told once after it, not each Secret's. */
  #endingList = false;
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
      work: (secret) => this.#read(secret),
    });
    this.#lists = new WorkQueue({
      concurrency: SECRET_LIST_CONCURRENCY,
      work: (namespace) => this.#readNamespace(namespace),
    });
  }

  /** The one listener (the reconciler's event handler) of changes that may decide Receivers differently. */
  onChange(listener: SecretChanges): void {
    this.#changed = listener;
  }

  /** True once the Secrets' first list was delivered. */
  get synced(): boolean {
    return this.#synced;
  }

  lookup(secret: string): SecretLookup {
    const entry = this.#entries.get(secret);
    return entry ? this.#lookupOf(entry) : ABSENT;
  }

  /** A Receiver references this Secret: it is read if its current version was not. */
  refer(secret: ObjectKey, receiver: string): void {
    const entry = this.#entry(secret);
    entry.referrers.add(receiver);
    this.#consider(entry);
  }

  unrefer(secret: string, receiver: string): void {
    const entry = this.#entries.get(secret);
    if (!entry) return;
    entry.referrers.delete(receiver);
    if (entry.referrers.size === 0) {
      // A Secret no Receiver references keeps no data, and no read of it is pending: it is read
      // again if one refers to it again. (Files have no reads: their Secrets arrive whole and stay.)
      this.#reads.remove(keyString(entry.key));
      if (this.#options.get || entry.state.kind !== "read") entry.state = { kind: "unread" };
    }
    this.#prune(entry);
  }

  /**
   * The Receivers' first list is in, so every Secret the first sync references is known (the
   * Receiver cache calls this). Whichever of the two first lists ends last starts the reads.
   */
  referrersKnown(): void {
    this.#referrersKnown = true;
    this.#startReads();
  }

  /** Referenced Secrets whose first read has not answered. */
  get unread(): number {
    if (!this.#options.get) return 0;
    let count = 0;
    for (const entry of this.#entries.values())
      if (entry.referrers.size > 0 && (entry.state.kind === "unread" || entry.state.kind === "listing")) count++;
    return count;
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
        for (const object of items) {
          const record = readSecret(object);
          if (!record) continue;
          const entry = this.#entry(record);
          seen.add(keyString(record));
          this.#show(entry, record);
          page.push(entry);
        }
        for (const entry of page) this.#consider(entry);
      },
      listEnd: () => {
        this.#endingList = true;
        try {
          for (const [secret, entry] of [...this.#entries]) {
            if (seen.has(secret)) continue;
            // Not in the list: gone, whatever was shown or read of it before. One the watch never
            // showed is left to its read, if one is out.
            const shownOrRead =
              entry.watched !== undefined || entry.state.kind === "read" || this.#had(entry.state) !== undefined;
            if (shownOrRead) this.#gone(entry);
            // Absent Secrets no Receiver references need no memory of being absent.
            else if (entry.referrers.size === 0 && entry.state.kind === "absent") entry.state = { kind: "unread" };
            this.#prune(entry);
          }
        } finally {
          this.#endingList = false;
        }
        seen = new Set();
        this.#synced = true;
        this.#startReads();
        this.#changed("all");
      },
      upsert: (object: unknown) => {
        const record = readSecret(object);
        if (!record) return;
        const entry = this.#entry(record);
        const before = this.#lookupOf(entry);
        this.#show(entry, record);
        this.#tell(entry, before);
        this.#consider(entry);
      },
      remove: (object: unknown) => {
        const record = readSecret(object);
        const entry = record && this.#entries.get(keyString(record));
        if (!entry) return;
        const before = this.#lookupOf(entry);
        this.#gone(entry);
        this.#tell(entry, before);
        if (entry.referrers.size > 0)
          this.#options.log.debug("a Receiver's Secret was deleted", { secret: keyString(entry.key) });
        this.#prune(entry);
      },
    };
  })();

  #entry(key: ObjectKey): Entry {
    const secret = keyString(key);
    let entry = this.#entries.get(secret);
    if (!entry) {
      entry = {
        key: { namespace: key.namespace, name: key.name },
        watched: undefined,
        state: { kind: "unread" },
        referrers: new Referrers(),
      };
      this.#entries.set(secret, entry);
    }
    return entry;
  }

  /** What `lookup` answers for the entry. */
  #lookupOf(entry: Entry): SecretLookup {
    const state = entry.state;
    switch (state.kind) {
      case "read":
        return { kind: "ready", data: state.record.data };
      case "failing":
        // A Secret read once is served from what was read; reads that keep failing decide.
        if (state.had) return { kind: "ready", data: state.had.data };
        return this.#reads.failures(keyString(entry.key)) >= READ_FAILURES_BEFORE_UNREADABLE
          ? { kind: "unreadable", reason: state.reason }
          : PENDING;
      case "listing":
        return PENDING;
      case "absent":
        // Found absent by a read while the watch still shows it: the watch says what follows.
        return entry.watched === undefined ? ABSENT : PENDING;
      case "unread":
        // Shown by the watch, or not shown and being read to learn whether it exists.
        return entry.watched !== undefined || this.#reads.state(keyString(entry.key)) !== undefined ? PENDING : ABSENT;
    }
  }

  /** Tells the Secret's Receivers when its lookup changed from `before` (at a list's end, all are told). */
  #tell(entry: Entry, before: SecretLookup) {
    if (this.#endingList || entry.referrers.size === 0 || sameLookup(before, this.#lookupOf(entry))) return;
    this.#changed(entry.referrers);
  }

  /** Drops an entry that holds nothing any more. */
  #prune(entry: Entry) {
    const secret = keyString(entry.key);
    if (entry.referrers.size > 0 || entry.watched !== undefined || entry.state.kind !== "unread") return;
    // Not while a read of it is queued or out, nor an entry made anew under its key since.
    if (this.#reads.state(secret) !== undefined || this.#entries.get(secret) !== entry) return;
    this.#entries.delete(secret);
  }

  /** The watch or the files show the Secret as `s`: metadata (a version), or whole (files). */
  #show(entry: Entry, record: SecretRecord) {
    entry.watched = record.resourceVersion;
    if (!record.pending) entry.state = { kind: "read", record: record };
  }

  /** The Secret is gone (the watch deleted it, or a list no longer names it): nothing to read until it is shown again. */
  #gone(entry: Entry) {
    entry.watched = undefined;
    this.#reads.remove(keyString(entry.key));
    entry.state = entry.referrers.size > 0 ? { kind: "absent", asked: "" } : { kind: "unread" };
  }

  #had(state: SecretState): SecretRecord | undefined {
    return state.kind === "read" ? state.record : state.kind === "failing" ? state.had : undefined;
  }

  /**
   * Whether the Secret is referenced and its data is not known at the version the watch shows (a
   * read can be ahead of the watch: it is served from the newest state); or, when the watch has
   * not shown it, whether nothing is known of it yet.
   */
  #needsRead(entry: Entry): boolean {
    if (!this.#options.get || entry.referrers.size === 0) return false;
    const state = entry.state;
    const newer = (asked: string) => entry.watched !== undefined && !atLeastVersion(asked, entry.watched);
    switch (state.kind) {
      case "unread":
        return true;
      case "listing":
        return false;
      case "read":
        return newer(state.record.resourceVersion);
      case "absent":
        return newer(state.asked);
      case "failing":
        // A failed read waits for its retry; a newer version is read at once.
        return !this.#reads.retrying(keyString(entry.key)) || newer(state.asked);
    }
  }

  #consider(entry: Entry) {
    if (this.#stopped || !this.#needsRead(entry)) return;
    // With lists, the first sync decides how each is read (#startReads).
    if (this.#options.list && !this.#reading) return;
    this.#reads.add(keyString(entry.key));
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

  /** One run of the read queue for a Secret; it is considered again afterwards. */
  #read(secret: string): Promise<void> | undefined {
    const entry = this.#entries.get(secret);
    // The read in flight when this was queued may have read the current version already.
    if (!entry || !this.#needsRead(entry)) return undefined;
    return this.#fetch(entry)
      .catch((err: unknown) =>
        this.#options.log.error("reading a Receiver's Secret failed", {
          secret,
          error: err instanceof Error ? err.message : String(err),
        }),
      )
      .finally(() => {
        // A failed read waits for its retry: adding it now would run it at once and drop the
        // backoff. A newer version from the watch still reads it sooner (the sink considers it).
        if (!this.#reads.retrying(secret)) this.#consider(entry);
        this.#prune(entry);
      });
  }

  /** Reads one Secret at the version the watch shows now. */
  async #fetch(entry: Entry) {
    const secret = keyString(entry.key);
    const from = entry.state;
    const asked = entry.watched ?? "";
    const result = await this.#options.get!(entry.key);
    // Deleted, or no longer referenced, meanwhile: the watch or the Receivers said so since.
    if (this.#stopped || entry.state !== from) return;
    const before = this.#lookupOf(entry);
    if (result.ok) {
      this.#reads.forget(secret);
      const record = readSecret(result.value);
      if (!record) {
        // Gone when read. A version newer than the one asked (re-created meanwhile) is still to be
        // read; with none, the Secret is absent (once the watch, if it shows it, says so too).
        entry.state = { kind: "absent", asked };
      } else if (entry.watched !== undefined && olderVersion(record.resourceVersion, entry.watched)) {
        // Older than what the watch has shown since (a read served just before a change): not
        // used, and read again.
        return;
      } else entry.state = { kind: "read", record: record };
      this.#tell(entry, before);
      return;
    }
    this.#options.onReadFailed?.();
    const retryInMs = this.#reads.retry(secret);
    this.#options.log.error("cannot read a Receiver's Secret", { secret, error: result.reason, retryInMs });
    entry.state = { kind: "failing", asked, reason: result.reason, had: this.#had(from) };
    this.#tell(entry, before);
  }

  /**
   * The first sync: every referenced Secret that needs a read, by namespace; a namespace where
   * enough are to be read, and they are most of its Secrets, is listed, the rest read one by one.
   */
  #readReferenced() {
    const byNamespace = new Map<string, { wanted: Entry[]; watched: number }>();
    const single: Entry[] = [];
    for (const entry of this.#entries.values()) {
      const namespace = entry.key.namespace;
      let group = byNamespace.get(namespace);
      if (!group) byNamespace.set(namespace, (group = { wanted: [], watched: 0 }));
      if (entry.watched !== undefined) group.watched++;
      if (!this.#needsRead(entry)) continue;
      // One the watch has not shown is not in a list either: a GET tells whether it exists.
      if (entry.watched === undefined) single.push(entry);
      else group.wanted.push(entry);
    }
    for (const [namespace, { wanted, watched }] of byNamespace) {
      if (wanted.length >= SECRET_LIST_MIN_READS && wanted.length >= watched * SECRET_LIST_MIN_SHARE) {
        for (const entry of wanted) entry.state = { kind: "listing" };
        this.#listed.set(namespace, wanted);
        this.#lists.add(namespace);
      } else single.push(...wanted);
    }
    for (const entry of single) this.#consider(entry);
  }

  /**
   * Lists a namespace's Secrets page by page and hands each one asked for on as a read; a page's
   * other Secrets are not kept. Those the list did not settle are then read one by one.
   */
  async #readNamespace(namespace: string) {
    const wanted = this.#listed.get(namespace) ?? [];
    this.#listed.delete(namespace);
    const asked = new Map(wanted.map((entry) => [keyString(entry.key), entry] as const));
    let token: string | undefined;
    try {
      do {
        const page = await this.#options.list!(namespace, token);
        if (this.#stopped) return;
        if (!page.ok) {
          this.#options.onReadFailed?.();
          this.#options.log.error("cannot list the Secrets of a namespace; reading them one by one", {
            namespace,
            error: page.reason,
          });
          return;
        }
        for (const object of page.value.items) {
          const record = readSecret(object);
          const entry = record && asked.get(keyString(record));
          // Deleted since, or no longer referenced (no longer listing): its data is not kept.
          if (!record || record.pending || entry?.state.kind !== "listing") continue;
          // Older than what the watch has shown since: read on its own after the list.
          if (entry.watched !== undefined && olderVersion(record.resourceVersion, entry.watched)) continue;
          const before = this.#lookupOf(entry);
          entry.state = { kind: "read", record: record };
          this.#tell(entry, before);
        }
        token = page.value.continue;
      } while (token);
    } catch (err) {
      this.#options.log.error("cannot list the Secrets of a namespace; reading them one by one", {
        namespace,
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      for (const entry of wanted) {
        if (entry.state.kind === "listing") entry.state = { kind: "unread" };
        this.#consider(entry);
        this.#prune(entry);
      }
    }
  }
}

/** Whether two lookups decide a Receiver alike (the same keys, or the same reason). */
function sameLookup(a: SecretLookup, b: SecretLookup): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "ready") return sameData(a.data, (b as typeof a).data);
  if (a.kind === "unreadable") return a.reason === (b as typeof a).reason;
  return true;
}

function sameData(a: SecretData, b: SecretData): boolean {
  if (a === b) return true;
  for (const key of ["token", "email", "audience"] as const) {
    const x = a[key];
    const y = b[key];
    if (x === undefined || y === undefined ? x !== y : !x.equals(y)) return false;
  }
  return true;
}
