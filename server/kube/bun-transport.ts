/**
 * @module server/kube/bun-transport
 * HTTP for client-node under Bun.
 *
 * client-node sends its requests through the `undici` package and carries the cluster's CA and
 * client certificate in an undici dispatcher. Bun runs the same code but ignores the dispatcher,
 * so every TLS cluster (all real ones) fails with "unable to verify the first certificate". This
 * module gives client-node an HttpLibrary and a watch that use Bun's fetch with the equivalent
 * `tls` options, read once from the KubeConfig; authentication headers still come from
 * client-node (`applySecurityAuthentication`), so tokens, exec plugins and in-cluster token
 * rotation keep working.
 */
import { RequestContext, ResponseContext, type HttpLibrary, type KubeConfig } from "@kubernetes/client-node";
import { HttpMethod } from "@kubernetes/client-node/dist/gen/http/http.js";
import { from, type Observable } from "@kubernetes/client-node/dist/gen/rxjsStub.js";

interface HttpsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface BunTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
  serverName?: string;
}

/** Bun `fetch` options for this KubeConfig's cluster and user (CA, client certificate, skip-verify, proxy). */
export async function bunFetchOptions(kc: KubeConfig): Promise<{ tls?: BunTlsOptions; proxy?: string }> {
  const https: HttpsOptions = {};
  await kc.applyToHTTPSOptions(https as never);
  const text = (v: string | Buffer | undefined) => (v === undefined ? undefined : v.toString());
  const tls: BunTlsOptions = {};
  if (https.ca) tls.ca = text(https.ca);
  if (https.cert) tls.cert = text(https.cert);
  if (https.key) tls.key = text(https.key);
  if (https.rejectUnauthorized !== undefined) tls.rejectUnauthorized = https.rejectUnauthorized;
  if (kc.getCurrentCluster()?.skipTLSVerify) tls.rejectUnauthorized = false;
  if (https.servername) tls.serverName = https.servername;
  const proxy = kc.getCurrentCluster()?.proxyUrl;
  return { ...(Object.keys(tls).length ? { tls } : {}), ...(proxy ? { proxy } : {}) };
}

/** Told of every request's answer: its status, or undefined when none came (for the metrics). */
export type OnResponse = (method: string, url: string, status: number | undefined) => void;

/** fetch, telling `onResponse` how it ended. */
async function observedFetch(url: string, init: RequestInit, onResponse: OnResponse | undefined): Promise<Response> {
  const method = init.method ?? "GET";
  try {
    const response = await fetch(url, init);
    onResponse?.(method, url, response.status);
    return response;
  } catch (err) {
    // A request we aborted (a watch stopped) is not an API failure.
    if (!(err instanceof Error && err.name === "AbortError")) onResponse?.(method, url, undefined);
    throw err;
  }
}

/** Each request's deadline timer, cleared once its answer is read (see `setDeadline`). */
const deadlines = new WeakMap<RequestContext, ReturnType<typeof setTimeout>>();

/**
 * Aborts the request unless its answer is read within `timeoutMs`. Not `AbortSignal.timeout`:
 * that signal lives its full timeout after the answer, holding what fetch attached to it, and
 * throws a DOMException when it fires; at start-up with 10,000 Receivers (30,000 writes in
 * seconds) those were ~30,000 signals and ~20,000 exceptions of old-space garbage at once
 * (bench/README.md, scenario 6). A cleared timer leaves nothing behind.
 */
export function setDeadline(ctx: RequestContext, timeoutMs: number): void {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("The operation timed out.", "TimeoutError")),
    timeoutMs,
  );
  deadlines.set(ctx, timer);
  ctx.setSignal(controller.signal);
}

/** An HttpLibrary for client-node's generated APIs, sending through Bun's fetch. */
export function bunHttpLibrary(
  options: Promise<{ tls?: BunTlsOptions; proxy?: string }>,
  onResponse?: OnResponse,
): HttpLibrary {
  return {
    send(request: RequestContext): Observable<ResponseContext> {
      const run = async () => {
        const init = {
          method: request.getHttpMethod().toString(),
          headers: request.getHeaders(),
          body: request.getBody() as BodyInit | undefined,
          signal: request.getSignal(),
          ...(await options),
        } as RequestInit;
        try {
          const response = await observedFetch(request.getUrl(), init, onResponse);
          const headers: Record<string, string> = {};
          response.headers.forEach((value, name) => {
            headers[name] = value;
          });
          // Read within the deadline, which ends with it; JSON (every answer fluxhook asks for)
          // as text at once, without a byte copy beside it.
          const body: string | Buffer<ArrayBuffer> = /json|text|yaml/i.test(response.headers.get("content-type") ?? "")
            ? await response.text()
            : Buffer.from(await response.arrayBuffer());
          return new ResponseContext(response.status, headers, {
            text: async () => (typeof body === "string" ? body : body.toString("utf8")),
            binary: async () => (typeof body === "string" ? Buffer.from(body, "utf8") : body),
            stream: () => new Blob([body]).stream(),
          });
        } finally {
          clearTimeout(deadlines.get(request));
          deadlines.delete(request);
        }
      };
      return from(run());
    },
  };
}

export type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;

/** Idle time after which a silent watch is presumed dead (bookmarks and events reset it). */
const WATCH_IDLE_TIMEOUT_MS = 90_000;

/** A watch the API server did not open: its status, and Retry-After when it sent one (429). */
function watchRefused(path: string, response: Response): Error {
  const retryAfter = Number(response.headers.get("retry-after") ?? Number.NaN);
  return Object.assign(new Error(`watch ${path}: HTTP ${response.status}`), {
    statusCode: response.status,
    ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
  });
}

/**
 * The watch stream's events, one JSON object a line, each handed to `callback` as it comes;
 * `onChunk` is told of every chunk (the idle timer). A line that is not JSON is skipped.
 */
async function readWatchEvents(
  body: ReadableStream<Uint8Array>,
  onChunk: () => void,
  callback: WatchCallback,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    onChunk();
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      let event: { type?: string; object?: unknown };
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (event.type) callback(event.type, event.object, event);
    }
  }
}

/**
 * The same contract as client-node's `Watch.watch`: `done(err)` is called exactly once, when the
 * stream ends or fails; an idle stream ends with a TimeoutError.
 */
export function bunWatch(
  kc: KubeConfig,
  options: Promise<{ tls?: BunTlsOptions; proxy?: string }>,
  accept?: string,
  onResponse?: OnResponse,
) {
  return {
    async watch(
      path: string,
      query: Record<string, string | number | boolean | undefined>,
      callback: WatchCallback,
      done: (err: unknown) => void,
    ): Promise<AbortController> {
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new Error("no current cluster in the Kubernetes configuration");
      const url = new URL(cluster.server + path);
      url.searchParams.set("watch", "true");
      for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
      const controller = new AbortController();
      let finished = false;
      let idle: ReturnType<typeof setTimeout> | undefined;
      const finish = (err: unknown) => {
        if (finished) return;
        finished = true;
        if (idle) clearTimeout(idle);
        controller.abort();
        done(err);
      };
      const resetIdle = () => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(
          () => finish(new DOMException("watch idle for too long", "TimeoutError")),
          WATCH_IDLE_TIMEOUT_MS,
        );
      };
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      void (async () => {
        try {
          resetIdle();
          const headers = accept ? { ...ctx.getHeaders(), Accept: accept } : ctx.getHeaders();
          const response = await observedFetch(
            url.toString(),
            { headers, signal: controller.signal, ...(await options) } as RequestInit,
            onResponse,
          );
          if (response.status !== 200 || !response.body) {
            await response.body?.cancel().catch(() => {});
            finish(watchRefused(path, response));
            return;
          }
          await readWatchEvents(response.body, resetIdle, callback);
          finish(null);
        } catch (err) {
          finish(finished ? null : err);
        }
      })();
      return controller;
    },
  };
}
