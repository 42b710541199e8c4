/**
 * @module server/kube/port
 * The narrow interface through which fluxhook talks to Kubernetes. Everything the server does to
 * a cluster is one of these methods, so the RBAC it needs can be read off this file, and tests can
 * run the whole server against the test API server through the real client (kube/client.ts).
 */
import type { ObjectKey, ReceiverStatus } from "../receivers/api";

/** A watched collection: an initial list, then events, re-listed after errors. */
export interface WatchSink {
  /** The full current set, after the first list and after every re-list. */
  replace(items: readonly unknown[]): void;
  upsert(obj: unknown): void;
  remove(obj: unknown): void;
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

export interface KubePort {
  /** GET /version: is the API server reachable (and who is it)? */
  version(): Promise<KubeResult<string>>;
  /** list+watch `notification.toolkit.fluxcd.io/v1` receivers (every namespace when undefined). */
  watchReceivers(namespace: string | undefined, sink: WatchSink): Informer;
  /** list+watch core/v1 secrets (every namespace when undefined). */
  watchSecrets(namespace: string | undefined, sink: WatchSink): Informer;
  /** patch receivers/status. */
  patchReceiverStatus(key: ObjectKey, status: ReceiverStatus): Promise<KubeResult<void>>;
  /** get one target. */
  getObject(ref: TargetRef): Promise<KubeResult<PartialObject>>;
  /** list targets of one kind in one namespace by labels. */
  listObjects(apiVersion: string, kind: string, namespace: string, matchLabels: Readonly<Record<string, string>>): Promise<KubeResult<PartialObject[]>>;
  /** patch a target's metadata.annotations (JSON merge patch). */
  annotateObject(ref: TargetRef, annotations: Readonly<Record<string, string>>): Promise<KubeResult<void>>;
}
