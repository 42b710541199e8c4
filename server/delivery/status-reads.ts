/**
 * @module server/delivery/status-reads
 * What status queries read of the cluster, shared between them, so that the API requests queries
 * cost do not grow with the rate they are sent at:
 *
 * - an object read by several queries at once is one GET (each query still reads its targets
 *   afresh: `handled` must see the controller's latest status);
 * - the Kustomizations (or HelmReleases) of a namespace, read to find a source's consumers, are one
 *   paged LIST per namespace and kind per STATUS_LIST_TTL_MS, shared by the queries in flight and
 *   served to those that follow until the interval ends; a failed list is kept as long, so a
 *   failing API server is asked no more often.
 *
 * Each object is projected as it is read (kube/client.ts, api/observed.ts): what is kept is a few
 * status fields, the name and the source it names, never a spec. At most STATUS_LISTS_KEPT lists
 * are kept, the least recently read dropped first.
 */
import type { ObservedObject } from "../api/observed";
import type { KubePort, KubeResult, TargetRef } from "../kube/port";
import { MAX_CONSUMERS_SCANNED, STATUS_LIST_TTL_MS, STATUS_LISTS_KEPT } from "../limits";

/** A namespace's objects of one consumer kind, projected; `truncated` when more exist than were read. */
export type ConsumerList = KubeResult<{ readonly items: readonly ObservedObject[]; readonly truncated: boolean }>;

export interface StatusReadsOptions {
  readonly listTtlMs?: number;
  readonly listsKept?: number;
  /** Milliseconds, monotonic. */
  readonly now?: () => number;
}

interface CachedList {
  readonly list: Promise<ConsumerList>;
  /** When it stops serving: never while it is being read, STATUS_LIST_TTL_MS after it was. */
  expires: number;
}

export class StatusReads {
  readonly #cluster: Pick<KubePort, "observeObject" | "observeObjects">;
  readonly #ttlMs: number;
  readonly #kept: number;
  readonly #now: () => number;
  /** Reads in flight only: a settled read is forgotten at once. */
  readonly #objects = new Map<string, Promise<KubeResult<ObservedObject | undefined>>>();
  /** Map order is the order of last use, the least recent first. */
  readonly #lists = new Map<string, CachedList>();

  constructor(cluster: Pick<KubePort, "observeObject" | "observeObjects">, options: StatusReadsOptions = {}) {
    this.#cluster = cluster;
    this.#ttlMs = options.listTtlMs ?? STATUS_LIST_TTL_MS;
    this.#kept = options.listsKept ?? STATUS_LISTS_KEPT;
    this.#now = options.now ?? (() => performance.now());
  }

  /** One object, as the API server has it now; reads of it already in flight are joined. */
  object(ref: TargetRef): Promise<KubeResult<ObservedObject | undefined>> {
    const key = `${ref.apiVersion}\n${ref.kind}\n${ref.namespace}\n${ref.name}`;
    let read = this.#objects.get(key);
    if (!read) {
      read = this.#cluster.observeObject(ref);
      this.#objects.set(key, read);
      const forget = () => this.#objects.delete(key);
      read.then(forget, forget);
    }
    return read;
  }

  /** The objects of one consumer kind in a namespace: read once per interval, whoever asks. */
  consumers(kind: { readonly apiVersion: string; readonly kind: string }, namespace: string): Promise<ConsumerList> {
    const key = `${kind.apiVersion}\n${kind.kind}\n${namespace}`;
    const now = this.#now();
    const cached = this.#lists.get(key);
    if (cached && now < cached.expires) {
      this.#lists.delete(key);
      this.#lists.set(key, cached);
      return cached.list;
    }
    const list = this.#cluster
      .observeObjects(kind.apiVersion, kind.kind, namespace, MAX_CONSUMERS_SCANNED)
      .then((result): ConsumerList => {
        // A consumer is matched by the source it names; its labels are not kept.
        if (!result.ok) return result;
        return { ok: true, value: { ...result.value, items: result.value.items.map((o) => ({ ...o, labels: {} })) } };
      });
    const entry: CachedList = { list, expires: Number.POSITIVE_INFINITY };
    const settled = () => {
      entry.expires = this.#now() + this.#ttlMs;
    };
    list.then(settled, settled);
    this.#lists.delete(key);
    this.#lists.set(key, entry);
    this.#sweep(now);
    return list;
  }

  /** Drops the lists past their interval, then the least recently read beyond STATUS_LISTS_KEPT. */
  #sweep(now: number): void {
    for (const [key, entry] of this.#lists) if (now >= entry.expires) this.#lists.delete(key);
    for (const key of this.#lists.keys()) {
      if (this.#lists.size <= this.#kept) break;
      this.#lists.delete(key);
    }
  }

  /** Lists kept now (tests). */
  get lists(): number {
    return this.#lists.size;
  }
}
