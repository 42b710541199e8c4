/**
 * @module server/kube/port
 * The narrow interface through which fluxhook talks to Kubernetes. Everything the server does to
 * a cluster is one of these methods, so the RBAC it needs can be read off this file, and tests can
 * run the whole server against the test API server through the real client (kube/client.ts).
 */
import type { ObjectKey, ReceiverStatus } from "../api/receiver";
import type { ObservedObject } from "../api/observed";

/**
 * A watched collection: an initial list, then events, re-listed after errors. A list arrives in
 * pages, so that the sink can keep what it needs of each page before the next is read.
 */
export interface WatchSink {
  /** One page of the full current set (after the first list and every re-list); `first` starts it. */
  listPage(items: readonly unknown[], first: boolean): void;
  /** The full set is complete: what its pages did not name is gone. */
  listEnd(): void;
  upsert(obj: unknown): void;
  remove(obj: unknown): void;
}

/** Hands a whole set to a sink as a one-page list. */
export function replaceAll(sink: WatchSink, items: readonly unknown[]): void {
  sink.listPage(items, true);
  sink.listEnd();
}

export interface Informer {
  /** True once the first list was delivered. */
  readonly synced: boolean;
  /** True while the watch is established (false while re-listing after an error). */
  readonly connected: boolean;
  stop(): void;
}

/** A target object as the Receiver names it, with apiVersion settled. */
export interface TargetRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** What a CEL filter sees of a target (Flux marshals PartialObjectMetadata). */
export interface PartialObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Record<string, unknown> & { name: string; namespace?: string };
}

/** Expected failures of an API call are values; `reason` is safe to show to a sender. */
export type KubeResult<T> = { ok: true; value: T } | { ok: false; reason: string; status?: number };

/** A core/v1 Event about a Receiver, before it is written. */
export interface EventRecord {
  readonly namespace: string;
  readonly name: string;
  readonly involvedObject: { apiVersion: string; kind: string; namespace: string; name: string; uid: string };
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
  readonly count: number;
  readonly firstTimestamp: Date;
  readonly lastTimestamp: Date;
  readonly reportingInstance: string;
}

/** The spec of a coordination.k8s.io/v1 Lease, with the resourceVersion it was read at. */
export interface LeaseRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: Date | undefined;
  readonly renewTime: Date | undefined;
  readonly leaseTransitions: number;
  /** Undefined for a Lease not created yet. */
  readonly resourceVersion: string | undefined;
}

/** One page of a list of whole Secrets; `continue` is the next page's token, absent on the last. */
export interface SecretPage {
  readonly items: readonly unknown[];
  readonly continue: string | undefined;
}

export interface KubePort {
  /** GET /version: is the API server reachable (and who is it)? `timeoutMs` overrides the call timeout. */
  version(timeoutMs?: number): Promise<KubeResult<string>>;
  /** Discovery: does the API server serve `notification.toolkit.fluxcd.io/v1` Receivers (is the CRD installed)? */
  servesReceivers(): Promise<KubeResult<boolean>>;
  /** list+watch `notification.toolkit.fluxcd.io/v1` receivers (every namespace when undefined). */
  watchReceivers(namespace: string | undefined, sink: WatchSink): Informer;
  /**
   * list+watch core/v1 secrets' metadata only (every namespace when undefined): objects of kind
   * PartialObjectMetadata, so no Secret's data crosses the wire unless it is fetched with getSecret.
   */
  watchSecretMetadata(namespace: string | undefined, sink: WatchSink): Informer;
  /**
   * list core/v1 secrets of one namespace, whole, one page (LIST_PAGE_SIZE) per call: the first
   * without a token, the next with the previous page's. For reading many referenced Secrets at
   * once (secret-cache.ts); the caller keeps only the data of the ones it needs.
   */
  listSecrets(namespace: string, continueToken: string | undefined): Promise<KubeResult<SecretPage>>;
  /** get one core/v1 secret; `undefined` when it does not exist. A failure's reason is the API's message, unprefixed. */
  getSecret(key: ObjectKey): Promise<KubeResult<unknown>>;
  /**
   * patch receivers: change metadata.finalizers from `current` to `wanted` (a JSON patch that
   * tests `current` first, so a list another controller changed meanwhile is never overwritten:
   * that answers 422, and the watch event that follows decides again). Status writes in between
   * do not conflict with it. An absent list cannot be tested (RFC 6902), so then the patch tests
   * `resourceVersion`, the version the decision was made on: a stale one answers 422 too.
   */
  patchReceiverFinalizers(
    key: ObjectKey,
    current: readonly string[],
    wanted: readonly string[],
    resourceVersion: string,
  ): Promise<KubeResult<string>>;
  /** patch receivers/status; the value is the patched object's resourceVersion. */
  patchReceiverStatus(key: ObjectKey, status: ReceiverStatus): Promise<KubeResult<string>>;
  /** get one target. */
  getObject(ref: TargetRef): Promise<KubeResult<PartialObject>>;
  /**
   * list targets of one kind by labels (and, given `name`, by name: metadata.name's field
   * selector), in one namespace or, when undefined, in every namespace. Metadata only (lists of
   * PartialObjectMetadata, as Flux's controllers read targets), every page.
   */
  listObjects(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    matchLabels: Readonly<Record<string, string>>,
    name?: string,
  ): Promise<KubeResult<PartialObject[]>>;
  /**
   * list+watch the objects of one kind in every namespace, whole (the sink keeps what it needs:
   * the sources routing matches, targets/source-index.ts). A kind the API server does not serve
   * (its controller is not installed) is an empty set until discovery finds it.
   */
  watchObjects(apiVersion: string, kind: string, sink: WatchSink): Informer;
  /** create events (core/v1). */
  createEvent(event: EventRecord): Promise<KubeResult<void>>;
  /** patch events: a repeated Event's count, lastTimestamp and message. */
  updateEvent(event: EventRecord): Promise<KubeResult<void>>;
  /** get leases (coordination.k8s.io/v1); `undefined` when it does not exist. */
  getLease(namespace: string, name: string): Promise<KubeResult<LeaseRecord | undefined>>;
  /** create or update leases, with optimistic locking on the resourceVersion read. */
  writeLease(namespace: string, name: string, lease: LeaseRecord): Promise<KubeResult<void>>;
  /**
   * get one object for a status query, projected at once to what a status answer may show
   * (api/observed.ts); `undefined` when it does not exist.
   */
  observeObject(ref: TargetRef): Promise<KubeResult<ObservedObject | undefined>>;
  /**
   * list the objects of one kind in one namespace for a status query, page by page, each projected
   * as it arrives; stops after `maxObjects` (`truncated` then says more exist).
   */
  observeObjects(
    apiVersion: string,
    kind: string,
    namespace: string,
    maxObjects: number,
  ): Promise<KubeResult<{ items: ObservedObject[]; truncated: boolean }>>;
  /** patch a target's metadata.annotations (JSON merge patch). */
  annotateObject(ref: TargetRef, annotations: Readonly<Record<string, string>>): Promise<KubeResult<void>>;
}
