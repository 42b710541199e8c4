/**
 * @module store
 * The object store: kind → namespace → name → object, a single global resourceVersion counter,
 * and the API server's write rules (create defaults, optimistic concurrency, status subresource
 * isolation, generation, finalizers). Stored objects are immutable snapshots: every write builds
 * a new object, so watch history and list responses can share them without copying.
 */
import { randomUUID } from "node:crypto";
import { alreadyExists, badRequest, conflict, invalid, notFound, type StatusCause } from "./errors";
import { clone, deepEqual, isObject } from "./json";
import type { KindInfo } from "./registry";
import { EVERYTHING, matches, type Selector } from "./selectors";
import type { KubeObject, ObjectMeta } from "./types";
import type { WatchHub } from "./watch";

export type Subresource = "status";

export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
}

export interface DeleteResult {
  object: KubeObject;
  /** False when finalizers keep the object (it now has a deletionTimestamp). */
  deleted: boolean;
}

type Bucket = Map<string, Map<string, KubeObject>>;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
/** Fields the server owns; a client's values for them are ignored on update. */
const SERVER_OWNED: readonly (keyof ObjectMeta)[] = [
  "name",
  "namespace",
  "uid",
  "creationTimestamp",
  "generation",
  "resourceVersion",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
];

/** RFC 3339 with seconds, as Kubernetes writes timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function withoutMetadataAndStatus(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

/** Put apiVersion, kind and metadata first, as the real server's JSON does. */
function assemble(info: KindInfo, metadata: ObjectMeta, body: Record<string, unknown>): KubeObject {
  const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = body;
  return { apiVersion: info.apiVersion, kind: info.kind, metadata, ...rest };
}

function checkStringMap(field: string, value: unknown, causes: StatusCause[]): void {
  if (value === undefined) return;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    causes.push({ reason: "FieldValueInvalid", field, message: "Invalid value: must be a map of strings" });
  }
}

function fieldInvalid(info: KindInfo, name: string, field: string, message: string, reason = "FieldValueInvalid") {
  return invalid(info.kind, name, [{ reason, field, message }], info.group);
}

export class ObjectStore {
  #rv = 0;
  readonly #kinds = new Map<string, Bucket>();

  constructor(readonly hub: WatchHub) {}

  /** The newest resourceVersion (0 before the first write). */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** How many objects are stored, over all kinds. */
  get size(): number {
    let n = 0;
    for (const bucket of this.#kinds.values()) for (const names of bucket.values()) n += names.size;
    return n;
  }

  #bucket(info: KindInfo): Bucket {
    let bucket = this.#kinds.get(info.key);
    if (!bucket) this.#kinds.set(info.key, (bucket = new Map()));
    return bucket;
  }

  #put(info: KindInfo, namespace: string, object: KubeObject): void {
    const bucket = this.#bucket(info);
    let names = bucket.get(namespace);
    if (!names) bucket.set(namespace, (names = new Map()));
    names.set(object.metadata.name!, object);
  }

  #scope(info: KindInfo, namespace: string | undefined): string {
    return info.namespaced ? (namespace ?? "") : "";
  }

  read(info: KindInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#kinds.get(info.key)?.get(this.#scope(info, namespace))?.get(name);
  }

  #require(info: KindInfo, namespace: string | undefined, name: string): KubeObject {
    const current = this.read(info, namespace, name);
    if (!current) throw notFound(info, name);
    return current;
  }

  /** Objects of a kind, sorted by namespace then name, like etcd's key order. */
  list(info: KindInfo, namespace?: string, selector: Selector = EVERYTHING): KubeObject[] {
    const bucket = this.#kinds.get(info.key);
    if (!bucket) return [];
    const scopes = info.namespaced && namespace !== undefined ? [namespace] : [...bucket.keys()].sort();
    const items: KubeObject[] = [];
    for (const scope of scopes) {
      const names = bucket.get(scope);
      if (!names) continue;
      for (const name of [...names.keys()].sort()) {
        const object = names.get(name)!;
        if (selector === EVERYTHING || matches(selector, object)) items.push(object);
      }
    }
    return items;
  }

  /** Check a request body against the kind and copy it, so later writes cannot reach the caller's object. */
  #decode(info: KindInfo, body: unknown, name = ""): KubeObject {
    if (!isObject(body)) throw badRequest(`the body of the request must be a ${info.kind} object`);
    if (body.apiVersion !== undefined && body.apiVersion !== info.apiVersion) {
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${info.apiVersion})`,
      );
    }
    if (body.kind !== undefined && body.kind !== info.kind) {
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${info.kind})`);
    }
    if (body.metadata !== undefined && !isObject(body.metadata)) throw badRequest("metadata must be an object");
    const copy = clone(body) as Record<string, unknown>;
    const metadata = (copy.metadata ?? {}) as ObjectMeta;
    const causes: StatusCause[] = [];
    checkStringMap("metadata.labels", metadata.labels, causes);
    checkStringMap("metadata.annotations", metadata.annotations, causes);
    const finalizers = metadata.finalizers as unknown;
    if (finalizers !== undefined && (!Array.isArray(finalizers) || finalizers.some((f) => typeof f !== "string"))) {
      causes.push({
        reason: "FieldValueInvalid",
        field: "metadata.finalizers",
        message: "Invalid value: must be a list of strings",
      });
    }
    if (causes.length > 0) throw invalid(info.kind, String(metadata.name ?? name), causes, info.group);
    return assemble(info, metadata, copy);
  }

  #generateName(info: KindInfo, namespace: string, prefix: string): string {
    for (let attempt = 0; attempt < 10; attempt++) {
      let suffix = "";
      for (let i = 0; i < 5; i++) suffix += GENERATE_ALPHABET[Math.floor(Math.random() * GENERATE_ALPHABET.length)];
      const name = `${prefix}${suffix}`;
      if (!this.read(info, namespace, name)) return name;
    }
    throw alreadyExists(info, `${prefix}*`);
  }

  /** The namespace a new object goes to: the URL's, else the body's, else "default" ("" if cluster-scoped). */
  #createScope(info: KindInfo, namespace: string | undefined, meta: ObjectMeta): string {
    if (!info.namespaced) return "";
    if (namespace !== undefined && meta.namespace && meta.namespace !== namespace) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    const scope = namespace ?? meta.namespace ?? "default";
    if (!DNS_LABEL.test(scope))
      throw fieldInvalid(info, String(meta.name ?? ""), "metadata.namespace", `Invalid value: "${scope}"`);
    return scope;
  }

  /** The new object's name: given, or generated from generateName; validated either way. */
  #createName(info: KindInfo, scope: string, meta: ObjectMeta): string {
    let name = meta.name;
    if (!name && typeof meta.generateName === "string" && meta.generateName) {
      name = this.#generateName(info, scope, meta.generateName);
    }
    if (typeof name !== "string" || name === "") {
      throw fieldInvalid(
        info,
        "",
        "metadata.name",
        "Required value: name or generateName is required",
        "FieldValueRequired",
      );
    }
    if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
      const why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'";
      throw fieldInvalid(info, name, "metadata.name", `Invalid value: "${name}": ${why}`);
    }
    return name;
  }

  /**
   * POST semantics. `namespace` comes from the URL (undefined: take the body's, else "default").
   * Status is dropped for kinds with a status subresource unless `keepStatus` (store API setup).
   */
  create(
    info: KindInfo,
    namespace: string | undefined,
    body: unknown,
    options: { keepStatus?: boolean } = {},
  ): KubeObject {
    const object = this.#decode(info, body);
    const meta = object.metadata;
    const scope = this.#createScope(info, namespace, meta);
    const name = this.#createName(info, scope, meta);
    if (this.read(info, scope, name)) throw alreadyExists(info, name);
    checkEvent(info, scope, name, object);
    if (info.statusSubresource && !options.keepStatus) delete object.status;
    const rv = ++this.#rv;
    const { deletionTimestamp: _d, deletionGracePeriodSeconds: _g, ...rest } = meta;
    const metadata: ObjectMeta = {
      ...rest,
      name,
      uid: randomUUID(),
      resourceVersion: String(rv),
      generation: 1,
      creationTimestamp: timestamp(),
    };
    if (info.namespaced) metadata.namespace = scope;
    else delete metadata.namespace;
    const stored = assemble(info, metadata, object);
    this.#put(info, scope, stored);
    this.hub.publish({ rv, type: "ADDED", info, namespace: scope, object: stored });
    return stored;
  }

  /** Merge a client's version into the current one under the subresource rules. */
  #next(info: KindInfo, current: KubeObject, incoming: KubeObject, subresource?: Subresource): KubeObject {
    if (subresource === "status") {
      const causes = info.validateStatus?.(incoming.status) ?? [];
      if (causes.length > 0) throw invalid(info.kind, current.metadata.name!, causes, info.group);
      const next: Record<string, unknown> = { ...current };
      if (Object.hasOwn(incoming, "status")) next.status = incoming.status;
      else delete next.status;
      return assemble(info, { ...current.metadata }, next);
    }
    const next: Record<string, unknown> = { ...incoming };
    if (info.statusSubresource) {
      if (Object.hasOwn(current, "status")) next.status = current.status;
      else delete next.status;
    }
    const metadata: ObjectMeta = { ...incoming.metadata };
    for (const field of SERVER_OWNED) {
      if (current.metadata[field] === undefined) delete metadata[field];
      else metadata[field] = current.metadata[field];
    }
    return assemble(info, metadata, next);
  }

  /**
   * kube-apiserver's ValidateObjectMetaUpdate: once an object is being deleted, finalizers can only
   * go (or be reordered); otherwise a controller could keep it forever.
   */
  #checkNoNewFinalizers(info: KindInfo, current: KubeObject, next: KubeObject): void {
    if (!current.metadata.deletionTimestamp) return;
    const before = new Set(current.metadata.finalizers ?? []);
    const added = [...new Set(next.metadata.finalizers ?? [])].filter((f) => !before.has(f)).sort();
    if (added.length === 0) return;
    const found = `[]string{${added.map((f) => JSON.stringify(f)).join(", ")}}`;
    throw invalid(
      info.kind,
      current.metadata.name!,
      [
        {
          reason: "FieldValueForbidden",
          field: "metadata.finalizers",
          message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${found}`,
        },
      ],
      info.group,
    );
  }

  /** Store `next` (which still carries current's resourceVersion), or do nothing if it equals current. */
  #commit(info: KindInfo, current: KubeObject, next: KubeObject): KubeObject {
    if (deepEqual(next, current)) return current;
    this.#checkNoNewFinalizers(info, current, next);
    if (!deepEqual(withoutMetadataAndStatus(next), withoutMetadataAndStatus(current))) {
      next.metadata.generation = (current.metadata.generation ?? 0) + 1;
    }
    const scope = this.#scope(info, current.metadata.namespace);
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) return this.#remove(info, scope, next);
    const rv = ++this.#rv;
    next.metadata.resourceVersion = String(rv);
    this.#put(info, scope, next);
    this.hub.publish({ rv, type: "MODIFIED", info, namespace: scope, object: next, previous: current });
    return next;
  }

  #remove(info: KindInfo, scope: string, last: KubeObject): KubeObject {
    const rv = ++this.#rv;
    const object: KubeObject = { ...last, metadata: { ...last.metadata, resourceVersion: String(rv) } };
    this.#kinds.get(info.key)?.get(scope)?.delete(object.metadata.name!);
    this.hub.publish({ rv, type: "DELETED", info, namespace: scope, object });
    return object;
  }

  #checkVersion(info: KindInfo, current: KubeObject, requested: unknown): void {
    if (typeof requested === "string" && requested !== "" && requested !== current.metadata.resourceVersion) {
      throw conflict(info, current.metadata.name!);
    }
  }

  #checkIdentity(info: KindInfo, current: KubeObject, incoming: KubeObject): void {
    const { name, namespace } = incoming.metadata;
    if (name !== undefined && name !== current.metadata.name) {
      throw badRequest(
        `the name of the object (${String(name)}) does not match the name on the URL (${current.metadata.name})`,
      );
    }
    if (info.namespaced && namespace && namespace !== current.metadata.namespace) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
  }

  /** PUT semantics: 404 if absent, 409 if the body's resourceVersion is stale. */
  replace(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    body: unknown,
    subresource?: Subresource,
  ): KubeObject {
    const incoming = this.#decode(info, body, name);
    const current = this.#require(info, namespace, name);
    this.#checkIdentity(info, current, incoming);
    this.#checkVersion(info, current, incoming.metadata.resourceVersion);
    return this.#commit(info, current, this.#next(info, current, incoming, subresource));
  }

  /**
   * PATCH semantics: `patcher` turns the current object into the patched one (it must not mutate
   * its argument). A resourceVersion the patch sets must match the current one.
   */
  patch(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    patcher: (current: KubeObject) => unknown,
    subresource?: Subresource,
  ): KubeObject {
    const current = this.#require(info, namespace, name);
    const patched = this.#decode(info, patcher(current), name);
    this.#checkVersion(info, current, patched.metadata.resourceVersion);
    return this.#commit(info, current, this.#next(info, current, patched, subresource));
  }

  /** DELETE semantics: finalizers turn a delete into setting deletionTimestamp. */
  delete(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    preconditions: DeletePreconditions = {},
  ): DeleteResult {
    const current = this.#require(info, namespace, name);
    for (const field of ["uid", "resourceVersion"] as const) {
      const [wanted, actual] = [preconditions[field], current.metadata[field]];
      if (wanted && wanted !== actual) {
        const label = field === "uid" ? "UID" : "ResourceVersion";
        throw conflict(
          info,
          name,
          `Precondition failed: ${label} in precondition: ${wanted}, ${label} in object meta: ${actual}`,
        );
      }
    }
    if (current.metadata.finalizers?.length) {
      // Already being deleted: nothing changes (no write, no event), as kube-apiserver's no-op update.
      if (current.metadata.deletionTimestamp) return { object: current, deleted: false };
      // kube-apiserver's markAsDeleting: deletionTimestamp now, grace period 0, and generation + 1
      // (the one metadata change that bumps it), all in one MODIFIED event.
      const metadata: ObjectMeta = {
        ...current.metadata,
        deletionTimestamp: timestamp(),
        deletionGracePeriodSeconds: 0,
      };
      metadata.generation = (current.metadata.generation ?? 0) + 1;
      return { object: this.#commit(info, current, { ...current, metadata }), deleted: false };
    }
    return { object: this.#remove(info, this.#scope(info, namespace), current), deleted: true };
  }

  /** DELETE on a collection: delete every matching object, returning what each delete returned. */
  deleteCollection(info: KindInfo, namespace: string | undefined, selector: Selector): KubeObject[] {
    return this.list(info, namespace, selector).map(
      (object) => this.delete(info, object.metadata.namespace, object.metadata.name!).object,
    );
  }
}

/** kube-apiserver's validation of a core/v1 Event that fluxhook's Events could fail: its involved object's namespace. */
function checkEvent(info: KindInfo, scope: string, name: string, object: KubeObject): void {
  if (info.key !== "v1/Event") return;
  const involved = (object as { involvedObject?: { namespace?: unknown } }).involvedObject;
  if (involved?.namespace !== undefined && involved.namespace !== "" && involved.namespace !== scope)
    throw invalid(
      info.kind,
      name,
      [
        {
          reason: "FieldValueInvalid",
          field: "involvedObject.namespace",
          message: `Invalid value: ${JSON.stringify(involved.namespace)}: does not match event.namespace`,
        },
      ],
      info.group,
    );
}
