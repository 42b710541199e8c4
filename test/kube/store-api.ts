/**
 * @module store-api
 * Direct access to the store for test setup and assertions. It bypasses HTTP (no faults, no
 * request log, works while the server is stopped) but goes through the same write rules, so
 * watches see the same events a client write would cause. Objects in and out are copies.
 */
import { clone } from "./json";
import { applyJsonPatch, applyMergePatch } from "./patch";
import type { KindRegistry } from "./registry";
import { EVERYTHING, parseFieldSelector, parseLabelSelector } from "./selectors";
import type { ObjectStore, Subresource } from "./store";
import type { KubeObject } from "./types";

export interface StoreListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface StorePatchOptions {
  /** `merge` (default, RFC 7386) or `json` (RFC 6902 operations). */
  type?: "merge" | "json";
  subresource?: Subresource;
}

export interface StoreApi {
  /**
   * Create an object. Unlike a POST, `status` is kept even for kinds with a status subresource,
   * so tests can set up e.g. a Ready Receiver in one call. Namespace defaults to "default".
   */
  create<T extends KubeObject>(object: T): T;
  /** The object, or undefined. `namespace` is ignored for cluster-scoped kinds. */
  get<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): T | undefined;
  list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options?: StoreListOptions,
  ): T[];
  /** PUT semantics (throws KubeApiError 404/409); `subresource: "status"` writes only `.status`. */
  update<T extends KubeObject>(object: T, options?: { subresource?: Subresource }): T;
  /** PATCH semantics; throws KubeApiError 404 when absent. */
  patch<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options?: StorePatchOptions,
  ): T;
  /** DELETE semantics (finalizers respected); returns the last state, or undefined if absent. */
  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** The current global resourceVersion. */
  readonly resourceVersion: string;
  /** Number of stored objects. */
  readonly size: number;
}

export function createStoreApi(store: ObjectStore, registry: KindRegistry): StoreApi {
  return {
    create<T extends KubeObject>(object: T): T {
      const info = registry.require(object.apiVersion, object.kind);
      return clone(store.create(info, undefined, object, { keepStatus: true })) as T;
    },
    get<T extends KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string) {
      const found = store.read(registry.require(apiVersion, kind), namespace, name);
      return found === undefined ? undefined : (clone(found) as T);
    },
    list<T extends KubeObject>(apiVersion: string, kind: string, namespace?: string, options: StoreListOptions = {}) {
      const info = registry.require(apiVersion, kind);
      const labels = parseLabelSelector(options.labelSelector);
      const fields = parseFieldSelector(options.fieldSelector, info.fieldSelectors);
      const selector = labels.length || fields.length ? { labels, fields } : EVERYTHING;
      return clone(store.list(info, namespace, selector)) as T[];
    },
    update<T extends KubeObject>(object: T, options: { subresource?: Subresource } = {}): T {
      const info = registry.require(object.apiVersion, object.kind);
      const name = String(object.metadata?.name ?? "");
      return clone(
        store.replace(info, object.metadata?.namespace ?? "default", name, object, options.subresource),
      ) as T;
    },
    patch<T extends KubeObject>(
      apiVersion: string,
      kind: string,
      namespace: string | undefined,
      name: string,
      patch: unknown,
      options: StorePatchOptions = {},
    ): T {
      const info = registry.require(apiVersion, kind);
      const patcher = options.type === "json" ? applyJsonPatch : applyMergePatch;
      return clone(store.patch(info, namespace, name, (current) => patcher(current, patch), options.subresource)) as T;
    },
    delete(apiVersion: string, kind: string, namespace: string | undefined, name: string) {
      const info = registry.require(apiVersion, kind);
      if (!store.read(info, namespace, name)) return undefined;
      return clone(store.delete(info, namespace, name).object);
    },
    get resourceVersion() {
      return String(store.resourceVersion);
    },
    get size() {
      return store.size;
    },
  };
}
