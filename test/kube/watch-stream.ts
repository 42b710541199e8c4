/**
 * @module watch-stream
 * A watch as an HTTP response: chunked JSON lines, flushed per event, with bookmarks, a timeout,
 * and two ways to end (clean, or a connection reset). The hub does the event logic.
 *
 * Bun does not send response headers until the first body chunk, and client-node's `Watch`
 * only returns its abort handle once headers arrive (so `ListWatch.stop()` could not stop it).
 * When a watch has nothing to replay we therefore send one "\n": JSON-lines readers (client-go,
 * client-node's `Watch`) skip blank lines.
 */
import { KubeApiError } from "./errors";
import { errorLine, type WatchFilter, type WatchHub, type WatchStart } from "./watch";

export interface WatchStreamOptions {
  hub: WatchHub;
  filter: WatchFilter;
  start: WatchStart;
  /** Send BOOKMARK events this often; no bookmarks when undefined. */
  bookmarkIntervalMs?: number;
  /** End the stream cleanly after this long. */
  timeoutSeconds?: number;
  /** The request's signal: the client went away. */
  signal?: AbortSignal;
  /** Rewrites each event line before it is sent (e.g. to metadata only). */
  transform?: (line: string) => string;
}

const encoder = new TextEncoder();

export function watchResponse(options: WatchStreamOptions): Response {
  const { hub, filter } = options;
  let finished = false;
  let unsubscribe: (() => void) | undefined;
  const timers: ReturnType<typeof setTimeout>[] = [];
  let cleanup = () => {};

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let sent = 0;
      const send = (line: string) => {
        if (finished) return;
        sent++;
        controller.enqueue(encoder.encode(options.transform ? options.transform(line) : line));
      };
      const end = (mode: "clean" | "abrupt") => {
        if (finished) return;
        cleanup();
        // error() with no reason resets the connection without Bun logging an error.
        if (mode === "clean") controller.close();
        else controller.error();
      };
      cleanup = () => {
        finished = true;
        unsubscribe?.();
        for (const timer of timers) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => cleanup();
      options.signal?.addEventListener("abort", onAbort);

      try {
        unsubscribe = hub.subscribe(filter, options.start, { send, end });
      } catch (error) {
        if (!(error instanceof KubeApiError)) throw error;
        // The real server answers 200 and reports "410 Expired" as the only event.
        send(errorLine(error.toStatus()));
        end("clean");
        return;
      }
      if (sent === 0) controller.enqueue(encoder.encode("\n"));
      if (options.bookmarkIntervalMs !== undefined) {
        const interval = options.bookmarkIntervalMs;
        const tick = () => {
          send(hub.bookmarkLine(filter.info));
          timers[0] = setTimeout(tick, interval);
        };
        timers[0] = setTimeout(tick, interval);
      }
      if (options.timeoutSeconds !== undefined)
        timers.push(setTimeout(() => end("clean"), options.timeoutSeconds * 1000));
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-cache, private" },
  });
}
