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
  let resourceVersion = "";
  let stopped = false;
  let synced = false;
  let connected = false;
  let failures = 0;
  let abort: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const schedule = (fn: () => void, delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(fn, delayMs);
  };

  const backoff = () => backoffDelayMs(options.backoff, ++failures);

  const fail = (stage: string, err: unknown) => {
    connected = false;
    resourceVersion = "";
    const delay = backoff();
    options.log.error(`${options.name}: ${stage} failed, re-listing`, {
      error: describe(err),
      retryInMs: Math.round(delay),
    });
    schedule(listThenWatch, delay);
  };

  const listThenWatch = async () => {
    if (stopped) return;
    // Page by page, each handed to the sink before the next is read: a large collection is never
    // in memory whole. Every page comes from the first page's snapshot; a token that expired
    // meanwhile (410) fails the list, which starts again.
    let listedVersion = "";
    try {
      let page: ListPage | undefined;
      do {
        const first: boolean = page === undefined;
        page = await options.list(page?.continue);
        if (stopped) return;
        if (first) listedVersion = page.resourceVersion;
        options.sink.listPage(page.items, first);
      } while (page.continue);
    } catch (err) {
      fail("list", err);
      return;
    }
    resourceVersion = listedVersion;
    options.sink.listEnd();
    synced = true;
    void watchFrom();
  };

  const watchFrom = async () => {
    if (stopped) return;
    let expired = false;
    let ended = false;
    const onEvent = (type: string, obj: unknown, raw?: WatchEvent) => {
      const object = (raw?.object ?? obj) as WatchEvent["object"];
      const rv = object?.metadata?.resourceVersion;
      switch (type) {
        case "ADDED":
        case "MODIFIED":
          options.sink.upsert(obj);
          break;
        case "DELETED":
          options.sink.remove(obj);
          break;
        case "BOOKMARK":
          break;
        case "ERROR":
          // A Status object: 410 Expired means our version fell out of the server's history.
          expired = true;
          return;
        default:
          return;
      }
      if (rv) resourceVersion = rv;
      connected = true;
      failures = 0;
    };
    const onDone = (err: unknown) => {
      ended = true;
      abort = undefined;
      if (stopped) return;
      connected = false;
      const { statusCode: status, retryAfterMs } = (err ?? {}) as { statusCode?: number; retryAfterMs?: number };
      if (status === 429) {
        const delay = Math.max(retryAfterMs ?? 0, backoff());
        options.log.info(`${options.name}: the API server asked to wait, watching again`, {
          retryInMs: Math.round(delay),
        });
        schedule(watchFrom, delay);
      } else if (expired || status === 410) {
        options.log.info(`${options.name}: watch history expired, re-listing`);
        resourceVersion = "";
        schedule(listThenWatch, 0);
      } else if (err && (err as Error).name !== "TimeoutError" && (err as Error).name !== "AbortError") {
        fail("watch", err);
      } else {
        // Normal end of a watch (server timeout or inactivity): resume from the last version.
        schedule(watchFrom, 0);
      }
    };
    try {
      abort = await options.watch.watch(
        options.path,
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds() },
        onEvent,
        onDone,
      );
      if (stopped) abort.abort();
      else if (!ended) connected = true;
    } catch (err) {
      fail("watch", err);
    }
  };

  void listThenWatch();

  return {
    get synced() {
      return synced;
    },
    get connected() {
      return connected;
    },
    stop() {
      stopped = true;
      connected = false;
      if (timer) clearTimeout(timer);
      abort?.abort();
    },
  };
}

/** An error's message without request details (client-node errors may carry headers). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0]!.slice(0, 300);
  return String(err).slice(0, 300);
}
