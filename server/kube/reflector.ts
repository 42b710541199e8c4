/**
 * @module server/kube/reflector
 * list + watch of one collection, kept going for the life of the process.
 *
 * client-node's ListWatch stops for good on the first non-410 error and caches whole objects
 * (Secrets can be large: Helm keeps releases in them). This reflector hands each object to a
 * sink that keeps only what it needs, and it never gives up:
 *
 * - watch from the list's resourceVersion, with bookmarks, so a reconnect resumes where it left;
 * - a watch that ends normally (server timeout, inactivity) resumes from the last version seen;
 * - 429 on a watch (kube-apiserver's watch cache still initialising, or API Priority and
 *   Fairness shedding load): watch again from the same version after Retry-After, as client-go
 *   does; re-listing would add load where the server asked for less;
 * - 410 Gone (history compacted) or any other error: re-list after a capped, jittered backoff,
 *   and hand the full list to `replace` so deletions made meanwhile are not missed.
 */
import type { Watch } from "@kubernetes/client-node";
import { backoffDelayMs, type Backoff } from "../../shared";
import type { Informer, WatchSink } from "./port";
import type { Logger } from "../runtime/log";
import { describe, timedOut } from "./failure";

/** One page of a list; `continue` is the token of the next page, absent on the last. */
export interface ListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string;
  readonly continue: string | undefined;
}

export interface ReflectorOptions {
  /** For logs, e.g. "receivers". */
  readonly name: string;
  /** The collection path to watch, e.g. "/api/v1/secrets". */
  readonly path: string;
  /** A page of the list: the first without a token, the next with the previous page's. */
  readonly list: (continueToken: string | undefined) => Promise<ListPage>;
  readonly watch: Pick<Watch, "watch">;
  readonly sink: WatchSink;
  readonly log: Logger;
  /** Re-list delays after an error (limits.ts Tuning.watchBackoff). */
  readonly backoff: Backoff;
}

/**
 * Server-side watch timeout, as client-go picks it: a random 5-10 minutes, so that many
 * replicas do not reconnect in lockstep and a silently broken connection is replaced.
 */
const watchTimeoutSeconds = () => 300 + Math.floor(Math.random() * 300);

interface WatchEvent {
  type?: string;
  object?: { code?: number; metadata?: { resourceVersion?: string } };
}

export function startReflector(options: ReflectorOptions): Informer {
  const reflector = new Reflector(options);
  reflector.start();
  return reflector;
}

/** One watch request: what its events and its end have shown so far. */
interface WatchAttempt {
  /** An ERROR event came (a Status, 410 Expired): the version fell out of the server's history. */
  expired: boolean;
  /** Its `done` was called: the watch ended before the request returned its AbortController. */
  done: boolean;
}

class Reflector implements Informer {
  readonly #options: ReflectorOptions;
  /** The version to watch from: the list's, then each event's; "" means list again. */
  #resourceVersion = "";
  #stopped = false;
  #synced = false;
  #connected = false;
  /** Failures since the last event, for the backoff. */
  #failures = 0;
  #abort: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ReflectorOptions) {
    this.#options = options;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    void this.#listThenWatch();
  }

  stop(): void {
    this.#stopped = true;
    this.#connected = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#abort?.abort();
  }

  #schedule(next: () => void, delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(next, delayMs);
  }

  #backoff(): number {
    return backoffDelayMs(this.#options.backoff, ++this.#failures);
  }

  #fail(stage: string, err: unknown): void {
    this.#connected = false;
    this.#resourceVersion = "";
    const delay = this.#backoff();
    this.#options.log.error(`${this.#options.name}: ${stage} failed, re-listing`, {
      error: describe(err),
      retryInMs: Math.round(delay),
    });
    this.#schedule(() => void this.#listThenWatch(), delay);
  }

  async #listThenWatch(): Promise<void> {
    if (this.#stopped) return;
    const { list, sink } = this.#options;
    // Page by page, each handed to the sink before the next is read: a large collection is never
    // in memory whole. Every page comes from the first page's snapshot; a token that expired
    // meanwhile (410) fails the list, which starts again.
    let listedVersion = "";
    try {
      let page: ListPage | undefined;
      do {
        const first: boolean = page === undefined;
        page = await list(page?.continue);
        if (this.#stopped) return;
        if (first) listedVersion = page.resourceVersion;
        sink.listPage(page.items, first);
      } while (page.continue);
    } catch (err) {
      this.#fail("list", err);
      return;
    }
    this.#resourceVersion = listedVersion;
    sink.listEnd();
    this.#synced = true;
    void this.#watchFrom();
  }

  /** Opens one watch from the last version seen; its events and its end are handled below. */
  async #watchFrom(): Promise<void> {
    if (this.#stopped) return;
    const attempt: WatchAttempt = { expired: false, done: false };
    try {
      this.#abort = await this.#options.watch.watch(
        this.#options.path,
        { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds() },
        (type: string, obj: unknown, raw?: WatchEvent) => this.#onEvent(attempt, type, obj, raw),
        (err: unknown) => this.#onWatchEnd(attempt, err),
      );
      if (this.#stopped) this.#abort.abort();
      else if (!attempt.done) this.#connected = true;
    } catch (err) {
      this.#fail("watch", err);
    }
  }

  #onEvent(attempt: WatchAttempt, type: string, obj: unknown, raw?: WatchEvent): void {
    const object = (raw?.object ?? obj) as WatchEvent["object"];
    const version = object?.metadata?.resourceVersion;
    switch (type) {
      case "ADDED":
      case "MODIFIED":
        this.#options.sink.upsert(obj);
        break;
      case "DELETED":
        this.#options.sink.remove(obj);
        break;
      case "BOOKMARK":
        break;
      case "ERROR":
        // A Status object: 410 Expired means our version fell out of the server's history.
        attempt.expired = true;
        return;
      default:
        return;
    }
    if (version) this.#resourceVersion = version;
    this.#connected = true;
    this.#failures = 0;
  }

  /** A watch ended: watch again, re-list, or back off, by how it ended. */
  #onWatchEnd(attempt: WatchAttempt, err: unknown): void {
    attempt.done = true;
    this.#abort = undefined;
    if (this.#stopped) return;
    this.#connected = false;
    const { name, log } = this.#options;
    const { statusCode: status, retryAfterMs } = (err ?? {}) as { statusCode?: number; retryAfterMs?: number };
    if (status === 429) {
      const delay = Math.max(retryAfterMs ?? 0, this.#backoff());
      log.info(`${name}: the API server asked to wait, watching again`, { retryInMs: Math.round(delay) });
      this.#schedule(() => void this.#watchFrom(), delay);
    } else if (attempt.expired || status === 410) {
      log.info(`${name}: watch history expired, re-listing`);
      this.#resourceVersion = "";
      this.#schedule(() => void this.#listThenWatch(), 0);
    } else if (err && !timedOut(err)) {
      this.#fail("watch", err);
    } else {
      // Normal end of a watch (server timeout or inactivity): resume from the last version.
      this.#schedule(() => void this.#watchFrom(), 0);
    }
  }
}
