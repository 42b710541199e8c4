/**
 * @module server/kube/connection
 * One connection to the API server, shared by every call of the KubePort: client-node's API
 * clients over Bun's transport (bun-transport.ts), the options each call is sent with, discovery,
 * one page of a list as JSON, and the reflectors that list+watch a collection.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  type ConfigurationOptions,
  type HttpLibrary,
  type KubeConfig,
  type ObservableMiddleware,
  type RequestContext,
} from "@kubernetes/client-node";
// Deep imports: client-node exports no helper to add per-call middleware to KubernetesObjectApi,
// whose per-call options replace (not extend) its configuration.
import { of } from "@kubernetes/client-node/dist/gen/rxjsStub.js";
import { mergeConfiguration } from "@kubernetes/client-node/dist/gen/configuration.js";
import { tuningOf, type Tuning } from "../limits";
import type { Logger } from "../runtime/log";
import { describe } from "./failure";
import { startReflector } from "./reflector";
import { bunFetchOptions, bunHttpLibrary, bunWatch, setDeadline, type OnResponse } from "./bun-transport";
import type { Informer, WatchSink } from "./port";

/** Field manager recorded on every write, so `kubectl get -o yaml --show-managed-fields` names us. */
export const FIELD_MANAGER = "fluxhook";

/** What the API server is asked for to get lists and watch events of metadata only. */
export const METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

export interface KubeClientOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Told of every API request's answer (observe/metrics.ts ApiRequestCounts.record). */
  readonly onResponse?: OnResponse;
  /** Call timeout, PATCH budget, page size and watch backoff (limits.ts DEFAULT_TUNING); tests shorten them. */
  readonly tuning?: Partial<Tuning>;
}

/** client-node's per-call options. */
export type CallOptions = ConfigurationOptions<ObservableMiddleware>;

/** How one request is sent, beyond the transport every request shares. */
export interface Call {
  /** Its deadline; the call timeout of the tuning when absent. */
  readonly timeoutMs?: number;
  /** The Content-Type of a patch, which names its strategy (PatchStrategy). */
  readonly contentType?: string;
  readonly accept?: string;
}

/** A request for one page of a list, in client-node's parameter names. */
export interface PageRequest {
  readonly limit: number;
  readonly _continue?: string;
}

/** One page of a list as client-node answers it. */
export interface ListAnswer {
  readonly items: readonly unknown[] | null;
  readonly metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

/** A collection to list+watch. */
export interface Collection {
  /** For logs, e.g. "receivers". */
  readonly name: string;
  /** Its path, e.g. "/api/v1/secrets". */
  readonly path: string;
  readonly list: (page: PageRequest) => Promise<ListAnswer>;
  /** Watch events as PartialObjectMetadata (the list asks for metadata through its own call options). */
  readonly metadataOnly?: boolean;
}

/** An object by reference, with apiVersion settled. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * KubernetesObjectApi ignores the transport and middleware of per-call options (it sends with
 * its own configuration's), so ours are folded into that configuration once.
 */
class ObjectApi extends KubernetesObjectApi {
  configure(options: CallOptions): this {
    this.configuration = mergeConfiguration(this.configuration, options);
    return this;
  }

  /** Discovery of one kind (the API resource list of its group/version, cached by client-node). */
  discover(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind);
  }
}

export interface Connection {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  readonly tuning: Tuning;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  /** Objects of any kind by apiVersion and kind; its discovery cache is shared by every call. */
  readonly objects: ObjectApi;
  /** The per-call options of one request: Bun's transport, a deadline, a content type, an Accept. */
  call(how?: Call): CallOptions;
  /**
   * One page of objects of a kind in a namespace, as the API's JSON; undefined when the kind is not
   * served.
   */
  listPage(
    apiVersion: string,
    kind: string,
    namespace: string,
    page: { limit: number; token: string | undefined },
  ): Promise<{ items: unknown[]; continue: string | undefined } | undefined>;
  /** One object by reference, whole as the API answers it. */
  readObject(ref: ObjectRef): Promise<{ apiVersion?: string; kind?: string; metadata?: unknown }>;
  /** list+watch of one collection, page by page into `sink`, for the life of the process. */
  reflect(collection: Collection, sink: WatchSink): Informer;
}

/** The group and version of an apiVersion ("" is the core group). */
export function groupVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return { group: slash < 0 ? "" : apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

function callOptions(httpApi: HttpLibrary, timeoutMs: number, how: Call): CallOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      setDeadline(ctx, how.timeoutMs ?? timeoutMs);
      if (how.contentType) ctx.setHeaderParam("Content-Type", how.contentType);
      if (how.accept) ctx.setHeaderParam("Accept", how.accept);
      return of(ctx);
    },
    post: (res) => of(res),
  };
  return { httpApi, middleware: [middleware], middlewareMergeStrategy: "append" };
}

export function connect(options: KubeClientOptions): Connection {
  const { kubeConfig, log } = options;
  const tuning = tuningOf(options.tuning);
  const transport = bunFetchOptions(kubeConfig);
  // Surface a broken TLS configuration at start instead of at the first request.
  transport.catch((err) => log.error("cannot read the cluster's TLS settings", { error: describe(err) }));
  const httpApi = bunHttpLibrary(transport, options.onResponse);
  const call = (how: Call = {}) => callOptions(httpApi, tuning.callTimeoutMs, how);
  const watch = bunWatch(kubeConfig, transport, undefined, options.onResponse);
  const metadataWatch = bunWatch(kubeConfig, transport, METADATA_WATCH_ACCEPT, options.onResponse);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const objects = (kubeConfig.makeApiClient(ObjectApi as never) as ObjectApi).configure(call());

  return {
    kubeConfig,
    log,
    tuning,
    core: kubeConfig.makeApiClient(CoreV1Api),
    custom,
    objects,
    call,

    // Not ObjectApi.list: it deserialises a list's metadata as an object's (V1ObjectMeta), which
    // drops `continue`, so every list would end after its first page.
    async listPage(apiVersion, kind, namespace, page) {
      const resource = await objects.discover(apiVersion, kind);
      if (!resource) return undefined;
      const list = (await custom.listNamespacedCustomObject(
        {
          ...groupVersion(apiVersion),
          namespace,
          plural: resource.name,
          limit: page.limit,
          ...(page.token ? { _continue: page.token } : {}),
        },
        call(),
      )) as { items?: unknown[]; metadata?: { continue?: string } };
      return { items: list.items ?? [], continue: list.metadata?.continue || undefined };
    },

    readObject: (ref) =>
      objects.read(
        { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
        undefined,
        undefined,
        undefined,
      ),

    reflect: (collection, sink) =>
      startReflector({
        name: collection.name,
        path: collection.path,
        watch: collection.metadataOnly ? metadataWatch : watch,
        sink,
        log,
        backoff: tuning.watchBackoff,
        list: async (token) => {
          const listed = await collection.list({ limit: tuning.listPageSize, ...(token ? { _continue: token } : {}) });
          // Typed lists (V1SecretList) name it `_continue`; custom object lists are plain JSON.
          const next = listed.metadata?._continue ?? listed.metadata?.continue;
          return {
            // kube-apiserver sends an empty PartialObjectMetadataList's items as null.
            items: listed.items ?? [],
            resourceVersion: listed.metadata?.resourceVersion ?? "",
            continue: next || undefined,
          };
        },
      }),
  };
}
