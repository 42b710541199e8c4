/**
 * @module server/kube/client
 * KubePort implemented with the real `@kubernetes/client-node`.
 */
import {
  CoreV1Api,
  CoordinationV1Api,
  CustomObjectsApi,
  V1MicroTime,
  VersionApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type HttpLibrary,
  type RequestContext,
} from "@kubernetes/client-node";
// Deep imports: client-node exports no helper to add per-call middleware to KubernetesObjectApi,
// whose per-call options replace (not extend) its configuration.
import { of } from "@kubernetes/client-node/dist/gen/rxjsStub.js";
import { mergeConfiguration } from "@kubernetes/client-node/dist/gen/configuration.js";
import {
  RECEIVER_GROUP,
  RECEIVER_PLURAL,
  RECEIVER_VERSION,
  type ObjectKey,
  type ReceiverStatus,
} from "../api/receiver";
import { PATCH_MAX_ATTEMPTS, PATCH_RETRY_BASE_MS, PATCH_RETRY_BUDGET_MS, tuningOf, type Tuning } from "../limits";
import { backoffDelayMs } from "../../shared";
import type { Logger } from "../runtime/log";
import { startReflector, describe } from "./reflector";
import { bunFetchOptions, bunHttpLibrary, bunWatch, setDeadline, type OnResponse } from "./bun-transport";
import { observe } from "../api/observed";
import {
  replaceAll,
  type EventRecord,
  type Informer,
  type KubePort,
  type KubeResult,
  type PartialObject,
  type TargetRef,
  type WatchSink,
} from "./port";

/** Field manager recorded on every write, so `kubectl get -o yaml --show-managed-fields` names us. */
export const FIELD_MANAGER = "fluxhook";

/**
 * Loads the cluster configuration: the explicit path, else KUBECONFIG, else the in-cluster
 * service account. Throws with a readable message when none is usable.
 */
export function loadKubeConfig(
  path: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): KubeConfig {
  const kc = new KubeConfig();
  const file = path ?? env.KUBECONFIG;
  if (file) {
    // KUBECONFIG may list several files; client-node merges them like kubectl.
    if (!path) kc.loadFromDefault();
    else kc.loadFromFile(file);
  } else {
    // loadFromCluster does not fail outside a cluster; it yields "https://undefined:undefined".
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new Error("KUBECONFIG is not set and KUBERNETES_SERVICE_HOST is not set (not running in a cluster)");
    }
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster())
    throw new Error(`no cluster in the Kubernetes configuration${file ? ` (${file})` : " (in-cluster)"}`);
  return kc;
}

/** What the API server is asked for to get lists and watch events of metadata only. */
const METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/** Per-call options: Bun's transport, a deadline on every request, a content type for patches, an Accept. */
function callOptions(
  httpApi: HttpLibrary,
  timeoutMs: number,
  contentType?: string,
  accept?: string,
): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      setDeadline(ctx, timeoutMs);
      if (contentType) ctx.setHeaderParam("Content-Type", contentType);
      if (accept) ctx.setHeaderParam("Accept", accept);
      return of(ctx);
    },
    post: (res) => of(res),
  };
  return { httpApi, middleware: [middleware], middlewareMergeStrategy: "append" };
}

/** Turns a client-node error into a short reason fit for a response body or a log line. */
/** A failed call as a value; `what` prefixes the reason unless empty (the API's message names the object). */
function failure(err: unknown, what: string): { ok: false; reason: string; status?: number } {
  const e = err as { code?: number; statusCode?: number; body?: unknown; name?: string };
  const status = e.code ?? e.statusCode;
  const prefix = what ? `${what}: ` : "";
  if (e.name === "TimeoutError" || e.name === "AbortError")
    return { ok: false, reason: `${prefix}Kubernetes API timed out` };
  if (typeof status === "number") {
    let message = "";
    try {
      const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
      message = typeof body?.message === "string" ? body.message : "";
    } catch {
      // not a Status object
    }
    if (status === 404) return { ok: false, status, reason: `${prefix}not found` };
    return { ok: false, status, reason: `${prefix}${message || `Kubernetes API answered ${status}`}` };
  }
  return { ok: false, reason: `${prefix}${describe(err)}` };
}

/** Retry-After of a 429 (or 503) answer, in milliseconds. */
function retryAfterMs(err: unknown): number | undefined {
  const header = (err as { headers?: Record<string, string> }).headers?.["retry-after"];
  const seconds = header === undefined ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * Runs a write with bounded retries: on 409 (conflict), 429 (honouring Retry-After), 5xx and
 * connection errors, with jittered exponential backoff, for at most PATCH_MAX_ATTEMPTS attempts
 * and within `budgetMs` overall, so a delivery still answers inside GitHub's 10 s. A call that
 * timed out is not retried when the budget left could not fit another; 4xx other than 409/429
 * are final. Then the target counts as failed, with the last reason.
 */
async function withRetries<T>(
  what: string,
  attempt: () => Promise<T>,
  options: { budgetMs: number; now?: () => number },
): Promise<KubeResult<T>> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  for (let n = 1; ; n++) {
    try {
      return { ok: true, value: await attempt() };
    } catch (err) {
      const result = failure(err, what);
      const status = result.status;
      const timedOut = (err as Error)?.name === "TimeoutError" || (err as Error)?.name === "AbortError";
      const retryable = status === undefined ? !timedOut : status === 409 || status === 429 || status >= 500;
      if (!retryable || n >= PATCH_MAX_ATTEMPTS)
        return n > 1 ? { ...result, reason: `${result.reason} (after ${n} attempts)` } : result;
      const delay =
        retryAfterMs(err) ?? backoffDelayMs({ baseMs: PATCH_RETRY_BASE_MS, capMs: PATCH_RETRY_BUDGET_MS }, n);
      if (now() - started + delay >= options.budgetMs)
        return { ...result, reason: `${result.reason} (after ${n} attempts)` };
      await Bun.sleep(delay);
    }
  }
}

const objectName = (ref: TargetRef) => `${ref.kind} ${ref.namespace}/${ref.name}`;

function labelSelector(matchLabels: Readonly<Record<string, string>>): string {
  return Object.entries(matchLabels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

function partial(
  obj: { apiVersion?: string; kind?: string; metadata?: unknown },
  fallback: { apiVersion: string; kind: string },
): PartialObject {
  // Flux hands CEL a PartialObjectMetadata: apiVersion, kind and metadata only; managedFields are noise.
  const { managedFields: _managed, ...metadata } = (obj.metadata ?? {}) as Record<string, unknown>;
  return {
    apiVersion: obj.apiVersion ?? fallback.apiVersion,
    kind: obj.kind ?? fallback.kind,
    metadata: metadata as PartialObject["metadata"],
  };
}

/** An item of a metadata list (kind PartialObjectMetadata) as the target's own kind, as CEL's `res` names it. */
const partialOf = (item: { metadata?: unknown }, target: { apiVersion: string; kind: string }) =>
  partial({ metadata: item.metadata }, target);

/**
 * KubernetesObjectApi ignores the transport and middleware of per-call options (it sends with
 * its own configuration's), so ours are folded into that configuration once.
 */
class ObjectApi extends KubernetesObjectApi {
  configure(options: ConfigurationOptions<ObservableMiddleware>): this {
    this.configuration = mergeConfiguration(this.configuration, options);
    return this;
  }

  /** Discovery of one kind (the API resource list of its group/version, cached by client-node). */
  discover(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind);
  }
}

export interface KubeClientOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Told of every API request's answer (observe/metrics.ts ApiRequestCounts.record). */
  readonly onResponse?: OnResponse;
  /** Call timeout, PATCH budget, page size and watch backoff (limits.ts DEFAULT_TUNING); tests shorten them. */
  readonly tuning?: Partial<Tuning>;
}

/** The request of a PATCH of one Receiver (or its status), as fluxhook's field manager. */
const receiverPatch = (key: ObjectKey, body: unknown) => ({
  group: RECEIVER_GROUP,
  version: RECEIVER_VERSION,
  plural: RECEIVER_PLURAL,
  namespace: key.namespace,
  name: key.name,
  body,
  fieldManager: FIELD_MANAGER,
});

/** The patched object's resourceVersion ("" when the answer has none). */
function resourceVersionOf(patched: unknown): string {
  const version = (patched as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata?.resourceVersion;
  return typeof version === "string" ? version : "";
}

export function createKubeClient(options: KubeClientOptions): KubePort {
  const kc = options.kubeConfig;
  const tuning = tuningOf(options.tuning);
  const timeout = tuning.callTimeoutMs;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  const transport = bunFetchOptions(kc);
  // Surface a broken TLS configuration at start instead of at the first request.
  transport.catch((err) => options.log.error("cannot read the cluster's TLS settings", { error: describe(err) }));
  const httpApi = bunHttpLibrary(transport, options.onResponse);
  const watch = bunWatch(kc, transport, undefined, options.onResponse);
  const call = (contentType?: string) => callOptions(httpApi, timeout, contentType);
  const objects = (kc.makeApiClient(ObjectApi as never) as ObjectApi).configure(call());
  /**
   * One page of objects of a kind in a namespace, as the API's JSON; undefined when the kind is not
   * served. Not ObjectApi.list: it deserialises a list's metadata as an object's (V1ObjectMeta),
   * which drops `continue`, so every list would end after its first page.
   */
  const listPage = async (
    apiVersion: string,
    kind: string,
    namespace: string,
    page: { labelSelector?: string; limit?: number; token?: string },
  ): Promise<{ items: unknown[]; continue: string | undefined } | undefined> => {
    const resource = await objects.discover(apiVersion, kind);
    if (!resource) return undefined;
    const slash = apiVersion.indexOf("/");
    const list = (await custom.listNamespacedCustomObject(
      {
        group: slash < 0 ? "" : apiVersion.slice(0, slash),
        version: apiVersion.slice(slash + 1),
        namespace,
        plural: resource.name,
        ...(page.labelSelector ? { labelSelector: page.labelSelector } : {}),
        ...(page.limit !== undefined ? { limit: page.limit } : {}),
        ...(page.token ? { _continue: page.token } : {}),
      },
      call(),
    )) as { items?: unknown[]; metadata?: { continue?: string } };
    return { items: list.items ?? [], continue: list.metadata?.continue || undefined };
  };
  /** One object by reference (targets, sources, consumers), whole as the API answers it. */
  const readObject = (ref: { apiVersion: string; kind: string; namespace: string; name: string }) =>
    objects.read(
      { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
      undefined,
      undefined,
      undefined,
    );
  const pageSize = tuning.listPageSize;
  type Paged = { limit: number; _continue?: string };
  const metadataWatch = bunWatch(kc, transport, METADATA_WATCH_ACCEPT, options.onResponse);
  const reflector = (
    name: string,
    path: string,
    list: (page: Paged) => Promise<{
      items: unknown[] | null;
      metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
    }>,
    sink: WatchSink,
    over = watch,
  ) =>
    startReflector({
      name,
      path,
      watch: over,
      sink,
      log: options.log,
      backoff: tuning.watchBackoff,
      list: async (token) => {
        const result = await list({ limit: pageSize, ...(token ? { _continue: token } : {}) });
        // Typed lists (V1SecretList) name it `_continue`; custom object lists are plain JSON.
        const next = result.metadata?._continue ?? result.metadata?.continue;
        return {
          // kube-apiserver sends an empty PartialObjectMetadataList's items as null.
          items: result.items ?? [],
          resourceVersion: result.metadata?.resourceVersion ?? "",
          continue: next || undefined,
        };
      },
    });

  const versionApi = kc.makeApiClient(VersionApi);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const eventBody = (e: EventRecord) => ({
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: e.name, namespace: e.namespace },
    involvedObject: e.involvedObject,
    type: e.type,
    reason: e.reason,
    message: e.message,
    count: e.count,
    firstTimestamp: e.firstTimestamp,
    lastTimestamp: e.lastTimestamp,
    source: { component: FIELD_MANAGER },
    reportingComponent: FIELD_MANAGER,
    reportingInstance: e.reportingInstance,
  });
  const micro = (d: Date | undefined) => (d ? new V1MicroTime(d.getTime()) : undefined);

  return {
    async version(timeoutMs) {
      try {
        // getCode(param, options): its request object is empty, so an options object in its
        // place type-checks and is dropped (the TLS settings and the deadline with it).
        const info = await versionApi.getCode({}, timeoutMs === undefined ? call() : callOptions(httpApi, timeoutMs));
        return { ok: true, value: info.gitVersion };
      } catch (err) {
        return failure(err, "Kubernetes API");
      }
    },

    async servesReceivers() {
      try {
        const resource = await objects.discover(`${RECEIVER_GROUP}/${RECEIVER_VERSION}`, "Receiver");
        return { ok: true, value: resource?.name === RECEIVER_PLURAL };
      } catch (err) {
        const result = failure(err, "discovery");
        // No such group/version: the CRD is not installed.
        return result.status === 404 ? { ok: true, value: false } : result;
      }
    },

    watchReceivers(namespace, sink) {
      const base = `/apis/${RECEIVER_GROUP}/${RECEIVER_VERSION}`;
      const group = RECEIVER_GROUP;
      const version = RECEIVER_VERSION;
      const plural = RECEIVER_PLURAL;
      return namespace === undefined
        ? reflector(
            "receivers",
            `${base}/${plural}`,
            (page) => custom.listClusterCustomObject({ group, version, plural, ...page }, call()),
            sink,
          )
        : reflector(
            "receivers",
            `${base}/namespaces/${namespace}/${plural}`,
            (page) => custom.listNamespacedCustomObject({ group, version, namespace, plural, ...page }, call()),
            sink,
          );
    },

    // Secrets are watched as metadata only (the API server strips them to PartialObjectMetadata),
    // and only the ones Receivers reference are read, with getSecret: the data of the other
    // Secrets in the cluster (TLS keys, Helm releases) never reaches fluxhook.
    watchSecretMetadata(namespace, sink) {
      const list = (page: Paged) => {
        const options = callOptions(httpApi, timeout, undefined, METADATA_LIST_ACCEPT);
        return namespace === undefined
          ? core.listSecretForAllNamespaces(page, options)
          : core.listNamespacedSecret({ namespace, ...page }, options);
      };
      return reflector(
        "secrets",
        namespace === undefined ? "/api/v1/secrets" : `/api/v1/namespaces/${namespace}/secrets`,
        list,
        sink,
        metadataWatch,
      );
    },

    async listSecrets(namespace, token) {
      try {
        const list = await core.listNamespacedSecret(
          { namespace, limit: pageSize, ...(token ? { _continue: token } : {}) },
          call(),
        );
        return { ok: true, value: { items: list.items, continue: list.metadata?._continue || undefined } };
      } catch (err) {
        return failure(err, `Secrets in ${namespace}`);
      }
    },

    async getSecret(key) {
      try {
        return {
          ok: true,
          value: await core.readNamespacedSecret({ namespace: key.namespace, name: key.name }, call()),
        };
      } catch (err) {
        // The reason goes into the Receiver's status as Flux words it: the API's own message.
        const result = failure(err, "");
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },

    async patchReceiverFinalizers(key, current, wanted, resourceVersion) {
      // An absent list cannot be tested (RFC 6902): the version decided on is, so a list another
      // controller added meanwhile is never replaced by ours.
      const body =
        current.length === 0
          ? [
              { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
              { op: "add", path: "/metadata/finalizers", value: wanted },
            ]
          : [
              { op: "test", path: "/metadata/finalizers", value: current },
              { op: "replace", path: "/metadata/finalizers", value: wanted },
            ];
      try {
        const patched = await custom.patchNamespacedCustomObject(
          receiverPatch(key, body),
          call(PatchStrategy.JsonPatch),
        );
        return { ok: true, value: resourceVersionOf(patched) };
      } catch (err) {
        return failure(err, `Receiver ${key.namespace}/${key.name} finalizers`);
      }
    },

    async patchReceiverStatus(key: ObjectKey, status: ReceiverStatus): Promise<KubeResult<string>> {
      try {
        const patched = await custom.patchNamespacedCustomObjectStatus(
          receiverPatch(key, { status }),
          call(PatchStrategy.MergePatch),
        );
        return { ok: true, value: resourceVersionOf(patched) };
      } catch (err) {
        return failure(err, `Receiver ${key.namespace}/${key.name} status`);
      }
    },

    async createEvent(event) {
      try {
        await core.createNamespacedEvent({ namespace: event.namespace, body: eventBody(event) }, call());
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Event ${event.namespace}/${event.name}`);
      }
    },

    async updateEvent(event) {
      try {
        const { count, lastTimestamp, message } = eventBody(event);
        await core.patchNamespacedEvent(
          { namespace: event.namespace, name: event.name, body: { count, lastTimestamp, message } },
          call(PatchStrategy.MergePatch),
        );
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Event ${event.namespace}/${event.name}`);
      }
    },

    async getLease(namespace, name) {
      try {
        const lease = await coordination.readNamespacedLease({ namespace, name }, call());
        const spec = lease.spec ?? {};
        return {
          ok: true,
          value: {
            holderIdentity: spec.holderIdentity ?? "",
            leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
            acquireTime: spec.acquireTime ? new Date(spec.acquireTime) : undefined,
            renewTime: spec.renewTime ? new Date(spec.renewTime) : undefined,
            leaseTransitions: spec.leaseTransitions ?? 0,
            resourceVersion: lease.metadata?.resourceVersion,
          },
        };
      } catch (err) {
        const result = failure(err, `Lease ${namespace}/${name}`);
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },

    async writeLease(namespace, name, lease) {
      const body = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace, ...(lease.resourceVersion ? { resourceVersion: lease.resourceVersion } : {}) },
        spec: {
          holderIdentity: lease.holderIdentity,
          leaseDurationSeconds: lease.leaseDurationSeconds,
          acquireTime: micro(lease.acquireTime),
          renewTime: micro(lease.renewTime),
          leaseTransitions: lease.leaseTransitions,
        },
      };
      try {
        if (lease.resourceVersion) await coordination.replaceNamespacedLease({ namespace, name, body }, call());
        else await coordination.createNamespacedLease({ namespace, body }, call());
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Lease ${namespace}/${name}`);
      }
    },

    async getObject(ref) {
      try {
        return { ok: true, value: partial(await readObject(ref), ref) };
      } catch (err) {
        return failure(err, objectName(ref));
      }
    },

    // Metadata only, as Flux lists targets: a list of 1,000 HelmReleases of 20 KB read 19.8 MiB in
    // full, a few hundred KiB as PartialObjectMetadata (issue 22, finding 7).
    async listObjects(apiVersion, kind, namespace, matchLabels, name) {
      const where = namespace === undefined ? "every namespace" : namespace;
      try {
        const resource = await objects.discover(apiVersion, kind);
        if (!resource) return { ok: false, reason: `${kind} in ${where}: ${apiVersion} ${kind} is not served` };
        const slash = apiVersion.indexOf("/");
        const selectors = {
          group: slash < 0 ? "" : apiVersion.slice(0, slash),
          version: apiVersion.slice(slash + 1),
          plural: resource.name,
          ...(Object.keys(matchLabels).length > 0 ? { labelSelector: labelSelector(matchLabels) } : {}),
          ...(name !== undefined ? { fieldSelector: `metadata.name=${name}` } : {}),
          limit: pageSize,
        };
        const options = callOptions(httpApi, timeout, undefined, METADATA_LIST_ACCEPT);
        const found: PartialObject[] = [];
        let token: string | undefined;
        do {
          const page = { ...selectors, ...(token ? { _continue: token } : {}) };
          const list = (await (namespace === undefined
            ? custom.listClusterCustomObject(page, options)
            : custom.listNamespacedCustomObject({ ...page, namespace }, options))) as {
            items?: { metadata?: unknown }[] | null;
            metadata?: { continue?: string };
          };
          // kube-apiserver sends an empty PartialObjectMetadataList's items as null.
          for (const item of list.items ?? []) found.push(partialOf(item, { apiVersion, kind }));
          token = list.metadata?.continue || undefined;
        } while (token);
        return { ok: true, value: found };
      } catch (err) {
        return failure(err, `${kind} in ${where}`);
      }
    },

    watchObjects(apiVersion, kind, sink) {
      const slash = apiVersion.indexOf("/");
      const group = apiVersion.slice(0, slash);
      const version = apiVersion.slice(slash + 1);
      let informer: Informer | undefined;
      let unserved = false;
      let stopped = false;
      let failures = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const later = (delayMs: number) => {
        if (!stopped) timer = setTimeout(discover, delayMs);
      };
      // Discovery first: a kind whose controller is not installed (no image-reflector-controller) is
      // an empty set, asked about again now and then, not a list that fails and is logged forever.
      const discover = async () => {
        let plural: string | undefined;
        try {
          plural = (await objects.discover(apiVersion, kind))?.name;
        } catch (err) {
          const result = failure(err, `discovery of ${apiVersion} ${kind}`);
          if (result.status !== 404) {
            options.log.error(`${kind}: discovery failed, asking again`, { error: result.reason });
            later(backoffDelayMs(tuning.watchBackoff, ++failures));
            return;
          }
        }
        if (stopped) return;
        failures = 0;
        if (plural === undefined) {
          if (!unserved) {
            options.log.info(`${kind}: ${apiVersion} is not served; none are routed to until it is`);
            replaceAll(sink, []);
            unserved = true;
          }
          later(tuning.unservedKindDiscoveryMs);
          return;
        }
        informer = reflector(
          plural,
          `/apis/${apiVersion}/${plural}`,
          (page) => custom.listClusterCustomObject({ group, version, plural, ...page }, call()),
          sink,
        );
      };
      void discover();
      return {
        get synced() {
          return informer ? informer.synced : unserved;
        },
        get connected() {
          return informer ? informer.connected : unserved;
        },
        stop() {
          stopped = true;
          if (timer) clearTimeout(timer);
          informer?.stop();
        },
      };
    },

    async observeObject(ref) {
      try {
        return { ok: true, value: observe(await readObject(ref), ref) };
      } catch (err) {
        const result = failure(err, objectName(ref));
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },

    async observeObjects(apiVersion, kind, namespace, maxObjects) {
      const items = [];
      let token: string | undefined;
      try {
        do {
          const limit = Math.min(pageSize, maxObjects - items.length + 1);
          const list = await listPage(apiVersion, kind, namespace, { limit, token });
          // A kind whose controller is not installed (no HelmRelease CRD) has no objects to find.
          if (!list) return { ok: true, value: { items: [], truncated: false } };
          for (const item of list.items) items.push(observe(item, { kind, namespace, name: "" }));
          token = list.continue;
        } while (token && items.length <= maxObjects);
      } catch (err) {
        // A group/version not served at all (no such CRD) has no objects to find either.
        const result = failure(err, `${kind} in ${namespace}`);
        if (result.status === 404) return { ok: true, value: { items: [], truncated: false } };
        return result;
      }
      return { ok: true, value: { items: items.slice(0, maxObjects), truncated: items.length > maxObjects } };
    },

    async annotateObject(ref, annotations) {
      const patch = () =>
        objects.patch(
          {
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            metadata: { name: ref.name, namespace: ref.namespace, annotations: { ...annotations } },
          },
          undefined,
          undefined,
          FIELD_MANAGER,
          undefined,
          PatchStrategy.MergePatch,
        );
      const result = await withRetries(objectName(ref), patch, {
        budgetMs: tuning.patchBudgetMs,
      });
      return result.ok ? { ok: true, value: undefined } : result;
    },
  };
}
