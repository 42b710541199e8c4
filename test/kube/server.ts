/**
 * @module server
 * The Kubernetes API test server: Bun.serve on 127.0.0.1 (port 0 by default) in front of the
 * store, with fault injection, a request log, stop/restart on the same port, and client config
 * helpers. Tests reach it only through `@kubernetes/client-node`, like the code under test.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Server } from "bun";
import { failureStatus, KubeApiError, REASON_BY_CODE } from "./errors";
import { FaultInjector, type FaultStatus } from "./faults";
import { handle, json, type HandlerContext } from "./handlers";
import { ListPager } from "./pager";
import { makeKubeConfig, writeKubeconfigFile } from "./kubeconfig";
import { KindRegistry, type KindInfo, type KindSpec, BUILTIN_KINDS } from "./registry";
import { RequestLog, type RequestFilter, type RequestRecord } from "./request-log";
import { route } from "./router";
import { ObjectStore } from "./store";
import { createStoreApi, type StoreApi } from "./store-api";
import type { KubeObject } from "./types";
import { WatchHub } from "./watch";

export interface KubeApiServerOptions {
  /** Port to listen on; default 0 (a free port, kept across {@link KubeApiServer.restart}). */
  port?: number;
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Watch events kept for resuming watches; older resourceVersions get 410 Expired. Default 10,000. */
  historySize?: number;
  /** Interval between BOOKMARK events on watches that allow them. Default 1,000 ms. */
  bookmarkIntervalMs?: number;
  /** Kinds to register on top of the built-in ones. */
  kinds?: readonly KindSpec[];
  /** The built-in kinds to serve; default all of BUILTIN_KINDS (drop one for a cluster without that CRD). */
  builtinKinds?: readonly KindSpec[];
  /** Objects to create at start (store API semantics: status is kept). */
  objects?: readonly KubeObject[];
  /** Request records kept; past it the oldest half is dropped. 0 disables the log. Default 100,000. */
  requestLogLimit?: number;
}

export interface KubeApiServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, stable across stop/restart. */
  readonly url: string;
  readonly port: number;
  readonly registry: KindRegistry;
  readonly store: StoreApi;
  readonly faults: FaultInjector;
  /** Requests received, oldest first. */
  readonly requests: readonly RequestRecord[];
  /** False between {@link stop} and {@link restart}. */
  readonly running: boolean;
  /** Watch streams currently open. */
  readonly openWatches: number;
  /** Add a kind (served and discoverable at once). */
  registerKind(spec: KindSpec): KindInfo;
  /** Requests matching the filter, e.g. `{ method: "PATCH", path: "/apis/…/gitrepositories/app" }`. */
  count(filter?: RequestFilter): number;
  resetRequests(): void;
  /** Drop the watch history and list snapshots: an older resourceVersion or continue token now gets 410 Expired. */
  compact(): void;
  /** Compact, then send every open watch an ERROR 410 event and end it cleanly (an etcd compaction). */
  expireWatches(): number;
  /** End every open watch: "abrupt" (default) resets the connection, "clean" ends the response. */
  dropWatches(mode?: "abrupt" | "clean"): number;
  /** Stop listening and reset every connection; state is kept and the store API still works. */
  stop(): Promise<void>;
  /** Listen again on the same port with the same state. */
  restart(): Promise<void>;
  /** A client-node KubeConfig for this server (namespace defaults to "default"). */
  kubeConfig(namespace?: string): KubeConfig;
  /** Write a kubeconfig file for subprocesses and return its path (a new temp dir unless `dir`). */
  writeKubeconfig(dir?: string): string;
  close(): Promise<void>;
}

function isWatch(url: URL): boolean {
  const watch = url.searchParams.get("watch");
  return watch === "true" || watch === "1" || /^\/apis?\/(?:[^/]+\/)?v[^/]*\/watch\//.test(url.pathname);
}

/** A response Bun turns into a connection reset with nothing sent (error() with no reason is not logged). */
function dropResponse(): Response {
  return new Response(new ReadableStream({ start: (controller) => controller.error() }));
}

function faultResponse(fault: FaultStatus): Response {
  const reason = REASON_BY_CODE[fault.status] ?? "InternalError";
  const details = fault.retryAfterSeconds !== undefined ? { retryAfterSeconds: fault.retryAfterSeconds } : undefined;
  const status = failureStatus(fault.status, reason, fault.message ?? `injected fault: ${reason}`, details);
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
  return Response.json(status, { status: fault.status, headers });
}

/** The single place where failures become responses: a KubeApiError's Status, or a 500. */
export function errorResponse(error: unknown): Response {
  if (error instanceof KubeApiError) return json(error.toStatus(), error.code);
  const message = error instanceof Error ? error.message : String(error);
  return json(failureStatus(500, "InternalError", `Internal error occurred: ${message}`), 500);
}

class TestKubeApiServer implements KubeApiServer {
  readonly registry: KindRegistry;
  readonly faults = new FaultInjector();
  readonly store: StoreApi;
  readonly #hub: WatchHub;
  readonly #pager = new ListPager();
  readonly #objects: ObjectStore;
  readonly #log: RequestLog;
  readonly #hostname: string;
  readonly #ctx: HandlerContext;
  #server: Server<undefined> | undefined;
  #port: number;

  constructor(options: KubeApiServerOptions) {
    this.registry = new KindRegistry([...(options.builtinKinds ?? BUILTIN_KINDS), ...(options.kinds ?? [])]);
    this.#hub = new WatchHub(options.historySize ?? 10_000);
    this.#objects = new ObjectStore(this.#hub);
    this.store = createStoreApi(this.#objects, this.registry);
    this.#log = new RequestLog(options.requestLogLimit ?? 100_000);
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    const server = this;
    this.#ctx = {
      registry: this.registry,
      store: this.#objects,
      hub: this.#hub,
      pager: this.#pager,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000,
      get serverAddress() {
        return `${server.#hostname}:${server.#port}`;
      },
    };
    for (const object of options.objects ?? []) this.store.create(object);
  }

  listen(): void {
    this.#server = Bun.serve({
      hostname: this.#hostname,
      port: this.#port,
      // Watches and hung requests stay open for as long as the test wants.
      idleTimeout: 0,
      development: false,
      fetch: (request) => this.#fetch(request),
      error: errorResponse,
    });
    this.#port = this.#server.port ?? this.#port;
  }

  get url(): string {
    return `http://${this.#hostname}:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get requests(): readonly RequestRecord[] {
    return this.#log.records;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  get openWatches(): number {
    return this.#hub.openWatches;
  }

  async #fetch(request: Request): Promise<Response> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return errorResponse(new KubeApiError(400, "BadRequest", "malformed request URL"));
    }
    const method = request.method.toUpperCase();
    const watch = isWatch(url);
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: request.headers.get("content-type") ?? undefined,
      accept: request.headers.get("accept") ?? undefined,
      status: 0,
      time: Date.now(),
      watch,
    };
    this.#log.add(record);

    const fault = this.faults.match({ method, path: url.pathname, watch, query: url.searchParams });
    if (fault?.respond === "drop") {
      record.fault = "drop";
      return dropResponse();
    }
    if (fault?.respond === "hang") {
      record.fault = "hang";
      await fault.released;
      return dropResponse();
    }
    if (fault?.respond === "hold") {
      record.fault = "hold";
      await fault.released;
    } else if (fault) {
      record.fault = "status";
      record.status = fault.respond.status;
      return faultResponse(fault.respond);
    }

    let response: Response;
    try {
      response = await handle(this.#ctx, { method, url, request, watch }, route(url.pathname, this.registry));
    } catch (error) {
      response = errorResponse(error);
    }
    record.status = response.status;
    return response;
  }

  registerKind(spec: KindSpec): KindInfo {
    return this.registry.register(spec);
  }

  count(filter?: RequestFilter): number {
    return this.#log.count(filter);
  }

  resetRequests(): void {
    this.#log.reset();
  }

  compact(): void {
    this.#hub.compact();
    this.#pager.expire();
  }

  expireWatches(): number {
    return this.#hub.expireAll();
  }

  dropWatches(mode: "abrupt" | "clean" = "abrupt"): number {
    return this.#hub.endAll(mode);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.faults.releaseAll();
    this.#hub.endAll("abrupt");
    await server.stop(true);
  }

  async restart(): Promise<void> {
    if (this.#server) return;
    this.listen();
  }

  kubeConfig(namespace?: string): KubeConfig {
    return makeKubeConfig(this.url, namespace);
  }

  writeKubeconfig(dir?: string): string {
    return writeKubeconfigFile(this.url, dir);
  }

  async close(): Promise<void> {
    this.faults.clear();
    await this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Start a server; `await using api = await startKubeApiServer()` closes it at the end of the scope. */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const server = new TestKubeApiServer(options);
  server.listen();
  return server;
}
