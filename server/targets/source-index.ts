/**
 * @module server/targets/source-index
 * The sources a routing Receiver can match, kept from watches rather than listed per delivery:
 * every GitRepository, OCIRepository, ImageRepository and HelmRepository in the cluster, each
 * reduced at once to what routing needs (api/sources.ts: name, labels, the key of the repository
 * it follows, a GitRepository's ref), indexed by that key and by kind and namespace.
 *
 * It starts on demand (`start`, when a Receiver with `fluxhook.io/route-by` is first served), so
 * a cluster whose Receivers do not route pays for no watch. Deliveries ask it only once every kind
 * has been listed (`whenSynced`); from then on the watches keep it current, and a delivery reads it
 * without an API call.
 */
import { routedKind, ROUTED_KINDS, readSource, type SourceRecord } from "../api/sources";
import type { RepositoryEvent } from "../api/repository";
import type { Informer, WatchSink } from "../kube/port";

export interface SourceIndexOptions {
  /** list+watch one kind in every namespace (KubePort.watchObjects). */
  readonly watch: (apiVersion: string, kind: string, sink: WatchSink) => Informer;
  /** How long a delivery waits for the first lists (limits.ts Tuning.sourceIndexWaitMs). */
  readonly waitMs: number;
}

/** namespace → name → record, for one kind. */
type ByNamespace = Map<string, Map<string, SourceRecord>>;

const family = (kind: string) => routedKind(kind)?.family;

export class SourceIndex {
  readonly #options: SourceIndexOptions;
  readonly #byKind = new Map<string, ByNamespace>(ROUTED_KINDS.map((k) => [k.kind, new Map()]));
  /** `family\nkey` → the records that follow it. */
  readonly #byRepository = new Map<string, Set<SourceRecord>>();
  #informers: Informer[] | undefined;
  /** Kinds listed at least once. */
  readonly #listed = new Set<string>();
  /** Per kind, the records a list in progress named (what it did not name is gone at its end). */
  readonly #listing = new Map<string, Set<SourceRecord>>();
  #waiters: (() => void)[] = [];
  #size = 0;

  constructor(options: SourceIndexOptions) {
    this.#options = options;
  }

  /** Starts the watches; later calls do nothing. */
  start(): void {
    if (this.#informers) return;
    this.#informers = ROUTED_KINDS.map((k) => this.#options.watch(k.apiVersion, k.kind, this.#sink(k.kind)));
  }

  get started(): boolean {
    return this.#informers !== undefined;
  }

  /** Every kind was listed once. */
  get synced(): boolean {
    return this.#listed.size === ROUTED_KINDS.length;
  }

  /** Sources indexed. */
  get size(): number {
    return this.#size;
  }

  /** Starts the index if needed and waits for its first lists, at most `waitMs`; false if they did not come. */
  whenSynced(): Promise<boolean> {
    this.start();
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(false);
      }, this.#options.waitMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#waiters.push(done);
    });
  }

  /** Kinds not listed yet, for the reason a delivery gives when it cannot wait longer. */
  unlisted(): string[] {
    return ROUTED_KINDS.map((k) => k.kind).filter((k) => !this.#listed.has(k));
  }

  get(kind: string, namespace: string, name: string): SourceRecord | undefined {
    return this.#byKind.get(kind)?.get(namespace)?.get(name);
  }

  /** The records of a kind in one namespace, or in every namespace when undefined. */
  *records(kind: string, namespace: string | undefined): Iterable<SourceRecord> {
    const byNamespace = this.#byKind.get(kind);
    if (!byNamespace) return;
    if (namespace !== undefined) {
      yield* byNamespace.get(namespace)?.values() ?? [];
      return;
    }
    for (const names of byNamespace.values()) yield* names.values();
  }

  /** Records of a kind in one namespace, or in every namespace when undefined. */
  count(kind: string, namespace: string | undefined): number {
    const byNamespace = this.#byKind.get(kind);
    if (!byNamespace) return 0;
    if (namespace !== undefined) return byNamespace.get(namespace)?.size ?? 0;
    let n = 0;
    for (const names of byNamespace.values()) n += names.size;
    return n;
  }

  /** Calls `visit` with each record of a kind in one namespace, or in every namespace when undefined (no iterator: a walk of 10,000 per delivery). */
  forEach(kind: string, namespace: string | undefined, visit: (record: SourceRecord) => void): void {
    const byNamespace = this.#byKind.get(kind);
    if (!byNamespace) return;
    if (namespace !== undefined) byNamespace.get(namespace)?.forEach(visit);
    else for (const names of byNamespace.values()) names.forEach(visit);
  }

  /** The records that follow one of the event's repositories (of the kinds its family can follow). */
  *following(event: RepositoryEvent): Iterable<SourceRecord> {
    for (const key of event.keys) yield* this.#byRepository.get(`${event.kind}\n${key}`) ?? [];
  }

  stop(): void {
    for (const informer of this.#informers ?? []) informer.stop();
  }

  #sink(kind: string): WatchSink {
    return {
      listPage: (items, first) => {
        if (first) this.#listing.set(kind, new Set());
        const seen = this.#listing.get(kind)!;
        for (const item of items) {
          const record = this.#put(kind, item);
          if (record) seen.add(record);
        }
      },
      listEnd: () => {
        const seen = this.#listing.get(kind) ?? new Set();
        this.#listing.delete(kind);
        for (const record of [...this.records(kind, undefined)]) if (!seen.has(record)) this.#drop(record);
        this.#listed.add(kind);
        if (this.synced) {
          for (const waiter of this.#waiters) waiter();
          this.#waiters = [];
        }
      },
      upsert: (obj) => void this.#put(kind, obj),
      remove: (obj) => {
        const gone = readSource(kind, obj);
        const record = gone && this.get(kind, gone.namespace, gone.name);
        if (record) this.#drop(record);
      },
    };
  }

  #put(kind: string, obj: unknown): SourceRecord | undefined {
    const record = readSource(kind, obj);
    if (!record) return undefined;
    const byNamespace = this.#byKind.get(kind)!;
    let names = byNamespace.get(record.namespace);
    if (!names) byNamespace.set(record.namespace, (names = new Map()));
    const old = names.get(record.name);
    if (old) this.#unlink(old);
    else this.#size++;
    names.set(record.name, record);
    if (record.repository !== undefined) {
      const key = `${family(kind)}\n${record.repository}`;
      let followers = this.#byRepository.get(key);
      if (!followers) this.#byRepository.set(key, (followers = new Set()));
      followers.add(record);
    }
    return record;
  }

  #drop(record: SourceRecord): void {
    const names = this.#byKind.get(record.kind)?.get(record.namespace);
    if (names?.get(record.name) !== record) return;
    names.delete(record.name);
    if (names.size === 0) this.#byKind.get(record.kind)!.delete(record.namespace);
    this.#unlink(record);
    this.#size--;
  }

  #unlink(record: SourceRecord): void {
    if (record.repository === undefined) return;
    const key = `${family(record.kind)}\n${record.repository}`;
    const followers = this.#byRepository.get(key);
    followers?.delete(record);
    if (followers?.size === 0) this.#byRepository.delete(key);
  }
}
