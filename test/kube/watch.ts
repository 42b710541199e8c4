/**
 * @module watch
 * Change events, their bounded history and the fan-out to open watches. Everything here is
 * synchronous: a watch's backlog is replayed and the watch registered in the same tick as the
 * store write that precedes it, so no event can fall between "list" and "follow".
 */
import { expired, type Status } from "./errors";
import type { KindInfo } from "./registry";
import { EVERYTHING, matches, type Selector } from "./selectors";
import type { KubeObject } from "./types";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

/** One committed change. `object` is the stored snapshot (never mutated), `previous` the one it replaced. */
export interface ChangeEvent {
  readonly rv: number;
  readonly type: EventType;
  readonly info: KindInfo;
  readonly namespace: string;
  readonly object: KubeObject;
  readonly previous?: KubeObject;
}

/** Where a watch writes: one JSON line per event. */
export interface WatchSink {
  send(line: string): void;
  /** `clean` ends the response normally; `abrupt` resets the connection mid-stream. */
  end(mode: "clean" | "abrupt"): void;
}

/** What a watch wants to see. `namespace` undefined means all namespaces (or a cluster-scoped kind). */
export interface WatchFilter {
  readonly info: KindInfo;
  readonly namespace?: string;
  readonly selector: Selector;
}

/** Where a watch starts: synthetic ADDED events for the current objects, or the history after `rv`. */
export type WatchStart = { readonly initial: readonly KubeObject[] } | { readonly afterRv: number };

interface Subscription extends WatchFilter {
  readonly sink: WatchSink;
}

/** Serialise an event once per delivered type; most watches share the same line. */
const lineCache = new WeakMap<KubeObject, Partial<Record<EventType, string>>>();

export function eventLine(type: EventType, object: KubeObject): string {
  let lines = lineCache.get(object);
  if (!lines) lineCache.set(object, (lines = {}));
  return (lines[type] ??= `${JSON.stringify({ type, object })}\n`);
}

/** An ERROR watch event carrying a Status. */
export function errorLine(status: Status): string {
  return `${JSON.stringify({ type: "ERROR", object: status })}\n`;
}

/**
 * The type a watch with this filter sees, or undefined. As in the real server, a modification
 * that moves an object into a selector is ADDED and one that moves it out is DELETED.
 */
function deliveredType(event: ChangeEvent, filter: WatchFilter): EventType | undefined {
  if (filter.namespace !== undefined && event.namespace !== filter.namespace) return undefined;
  if (filter.selector === EVERYTHING || (filter.selector.labels.length === 0 && filter.selector.fields.length === 0)) {
    return event.type;
  }
  const now = matches(filter.selector, event.object);
  if (event.type !== "MODIFIED") return now ? event.type : undefined;
  const before = event.previous ? matches(filter.selector, event.previous) : now;
  if (now) return before ? "MODIFIED" : "ADDED";
  return before ? "DELETED" : undefined;
}

/** A ring buffer of the last `capacity` events, in resourceVersion order. */
class EventHistory {
  #buffer: ChangeEvent[] = [];
  #start = 0;
  #size = 0;
  /** Events at or below this resourceVersion are gone; watching from before it is a 410. */
  compactedThrough = 0;

  constructor(readonly capacity: number) {}

  push(event: ChangeEvent): void {
    if (this.capacity <= 0) {
      this.compactedThrough = event.rv;
      return;
    }
    if (this.#size < this.capacity) {
      this.#buffer[(this.#start + this.#size) % this.capacity] = event;
      this.#size++;
      return;
    }
    this.compactedThrough = this.#buffer[this.#start]!.rv;
    this.#buffer[this.#start] = event;
    this.#start = (this.#start + 1) % this.capacity;
  }

  #at(i: number): ChangeEvent {
    return this.#buffer[(this.#start + i) % this.capacity]!;
  }

  /** Events with rv > `rv`, oldest first (binary search: rvs only grow). */
  *after(rv: number): Generator<ChangeEvent> {
    let [lo, hi] = [0, this.#size];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#at(mid).rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#size; i++) yield this.#at(i);
  }

  clear(throughRv: number): void {
    this.#buffer = [];
    this.#start = 0;
    this.#size = 0;
    this.compactedThrough = throughRv;
  }
}

/** History plus open watches, indexed by kind. */
export class WatchHub {
  readonly #history: EventHistory;
  readonly #subscriptions = new Map<string, Set<Subscription>>();
  #latestRv = 0;

  constructor(historySize: number) {
    this.#history = new EventHistory(historySize);
  }

  /** The newest committed resourceVersion. */
  get latestRv(): number {
    return this.#latestRv;
  }

  /** The oldest resourceVersion a watch may start from. */
  get oldestRv(): number {
    return this.#history.compactedThrough;
  }

  get openWatches(): number {
    let n = 0;
    for (const set of this.#subscriptions.values()) n += set.size;
    return n;
  }

  /** Record a committed change and deliver it to every matching watch. */
  publish(event: ChangeEvent): void {
    this.#latestRv = event.rv;
    this.#history.push(event);
    const subs = this.#subscriptions.get(event.info.key);
    if (!subs) return;
    for (const sub of subs) {
      const type = deliveredType(event, sub);
      if (type) sub.sink.send(eventLine(type, event.object));
    }
  }

  /**
   * Replay the start of a watch into its sink and register it. Throws a 410 KubeApiError when
   * `afterRv` is older than the retained history. Returns the unsubscribe function.
   */
  subscribe(filter: WatchFilter, start: WatchStart, sink: WatchSink): () => void {
    if ("afterRv" in start) {
      if (start.afterRv < this.#history.compactedThrough) throw expired(start.afterRv, this.#history.compactedThrough);
      for (const event of this.#history.after(start.afterRv)) {
        if (event.info.key !== filter.info.key) continue;
        const type = deliveredType(event, filter);
        if (type) sink.send(eventLine(type, event.object));
      }
    } else {
      for (const object of start.initial) sink.send(eventLine("ADDED", object));
    }
    const sub: Subscription = { ...filter, sink };
    let set = this.#subscriptions.get(filter.info.key);
    if (!set) this.#subscriptions.set(filter.info.key, (set = new Set()));
    set.add(sub);
    return () => set.delete(sub);
  }

  /** Forget all history: every watch from an existing resourceVersion now gets a 410. */
  compact(): void {
    this.#history.clear(this.#latestRv);
  }

  /** End every open watch; returns how many there were. */
  endAll(mode: "clean" | "abrupt"): number {
    const subs = [...this.#subscriptions.values()].flatMap((set) => [...set]);
    for (const sub of subs) sub.sink.end(mode);
    return subs.length;
  }

  /** Tell every open watch its position is gone (ERROR 410, then a clean end), as after an etcd compaction. */
  expireAll(): number {
    this.compact();
    const subs = [...this.#subscriptions.values()].flatMap((set) => [...set]);
    for (const sub of subs) {
      sub.sink.send(errorLine(expired(this.#latestRv - 1, this.#latestRv).toStatus()));
      sub.sink.end("clean");
    }
    return subs.length;
  }

  /** Only for a bookmark: the current resourceVersion as the watch's kind. */
  bookmarkLine(info: KindInfo): string {
    const object = {
      kind: info.kind,
      apiVersion: info.apiVersion,
      metadata: { resourceVersion: String(this.#latestRv) },
    };
    return `${JSON.stringify({ type: "BOOKMARK", object })}\n`;
  }
}
