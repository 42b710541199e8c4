/**
 * @module server/api/receiver
 * The `notification.toolkit.fluxcd.io/v1` Receiver as fluxhook reads it, and the checks Flux's
 * CRD and controller make on its spec. Reading is done once per object generation, here, so the
 * rest of the server works with typed, validated values.
 */
import { RECEIVER_TYPES, type ReceiverType } from "../../shared";
import { REQUESTED_AT_ANNOTATION, ROUTE_BY_ANNOTATION } from "./annotations";

export const RECEIVER_GROUP = "notification.toolkit.fluxcd.io";
export const RECEIVER_VERSION = "v1";
export const RECEIVER_API_VERSION = `${RECEIVER_GROUP}/${RECEIVER_VERSION}`;
export const RECEIVER_PLURAL = "receivers";

export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** `namespace/name`: the one string form of a key, for maps, logs and metric labels. */
export const keyString = (key: ObjectKey) => `${key.namespace}/${key.name}`;

/**
 * The fields of every log line about a Receiver: fluxhook's `receiver` and, as Flux's
 * controller-runtime lines carry them (and log pipelines extract them), `name` and `namespace`.
 */
export const receiverLogFields = (key: ObjectKey) => ({
  receiver: keyString(key),
  name: key.name,
  namespace: key.namespace,
});

/** The finalizer Flux's controller keeps on every Receiver (`apiv1.NotificationFinalizer`). */
export const RECEIVER_FINALIZER = "finalizers.fluxcd.io";

export interface ResourceRef {
  readonly apiVersion: string | undefined;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  readonly filter: string | undefined;
}

export interface OidcProvider {
  readonly issuerURL: string;
  readonly audience: string;
  readonly variables: readonly { readonly name: string; readonly expression: string }[];
  readonly validations: readonly { readonly expression: string; readonly message: string }[];
}

export interface ReceiverSpec {
  readonly type: ReceiverType;
  readonly events: readonly string[];
  readonly resources: readonly ResourceRef[];
  readonly resourceFilter: string | undefined;
  readonly secretName: string | undefined;
  readonly oidcProviders: readonly OidcProvider[];
  readonly suspend: boolean;
  /**
   * The Receiver's `fluxhook.io/route-by` annotation, as written (receivers/decide.ts checks it):
   * read with the spec, as it changes what a delivery annotates.
   */
  readonly routeBy?: string;
}

/** The parts of a Receiver object fluxhook uses. */
export interface ReceiverObject {
  readonly key: ObjectKey;
  readonly uid: string;
  /** metadata.creationTimestamp (RFC 3339, seconds); "" when absent. The older of two Receivers with one path keeps it. */
  readonly createdAt: string;
  readonly generation: number;
  /** The object's version as last seen, to tell a watch event older than our own status write. */
  readonly resourceVersion: string;
  /** metadata.deletionTimestamp is set: the object is being deleted and waits for its finalizers. */
  readonly deleting: boolean;
  /** metadata.finalizers. */
  readonly finalizers: readonly string[];
  /** Undefined when the spec is invalid; `invalid` then says why. */
  readonly spec: ReceiverSpec | undefined;
  readonly invalid: string | undefined;
  /** `spec.secretRef.name`, read even when the rest of the spec is invalid (to answer 503, not 404). */
  readonly secretName: string | undefined;
  readonly status: ReceiverStatus | undefined;
  /**
   * The object's own `reconcile.fluxcd.io/requestedAt` (set by `flux reconcile receiver`), which
   * the status answers in `lastHandledReconcileAt`, as Flux's controllers do.
   */
  readonly requestedAt: string | undefined;
}

export interface Condition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime?: string;
}

export interface ReceiverStatus {
  readonly observedGeneration?: number;
  /** The last `reconcile.fluxcd.io/requestedAt` handled; `flux reconcile receiver` waits for it. */
  readonly lastHandledReconcileAt?: string;
  readonly webhookPath?: string;
  readonly conditions?: readonly Condition[];
}

/** Default OIDC audience, as Flux (`receiver_types.go`). */
export const DEFAULT_OIDC_AUDIENCE = "notification-controller";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

class SpecError extends Error {}

function stringMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new SpecError(`${field} must be a map of strings`);
  for (const [k, val] of Object.entries(v))
    if (typeof val !== "string") throw new SpecError(`${field}.${k} must be a string`);
  return v as Record<string, string>;
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(`${field} must be a list`);
  return v;
}

function parseResource(v: unknown, i: number): ResourceRef {
  const field = `resources[${i}]`;
  if (!isObject(v)) throw new SpecError(`${field} must be an object`);
  const kind = str(v.kind);
  const name = str(v.name);
  if (!kind) throw new SpecError(`${field}.kind is required`);
  if (!name) throw new SpecError(`${field}.name is required`);
  return {
    apiVersion: str(v.apiVersion) || undefined,
    kind,
    name,
    namespace: str(v.namespace) || undefined,
    matchLabels: stringMap(v.matchLabels, `${field}.matchLabels`),
    filter: str(v.filter) || undefined,
  };
}

function parseOidcProvider(v: unknown, i: number): OidcProvider {
  const field = `oidcProviders[${i}]`;
  if (!isObject(v)) throw new SpecError(`${field} must be an object`);
  const issuerURL = str(v.issuerURL);
  if (!issuerURL || !/^https?:\/\//.test(issuerURL)) throw new SpecError(`${field}.issuerURL must be an http(s) URL`);
  return {
    issuerURL,
    audience: str(v.audience) || DEFAULT_OIDC_AUDIENCE,
    variables: list(v.variables, `${field}.variables`).map((x, j) => {
      if (!isObject(x) || !str(x.name) || !str(x.expression))
        throw new SpecError(`${field}.variables[${j}] needs name and expression`);
      return { name: x.name as string, expression: x.expression as string };
    }),
    validations: list(v.validations, `${field}.validations`).map((x, j) => {
      if (!isObject(x) || !str(x.expression)) throw new SpecError(`${field}.validations[${j}] needs an expression`);
      return { expression: x.expression as string, message: str(x.message) ?? "" };
    }),
  };
}

/**
 * Reads a Receiver's spec, applying the CRD's validation rules that an API server would have
 * enforced and the ones Flux's controller repeats (secretRef required except for generic-oidc,
 * which needs oidcProviders instead). Throws SpecError with Flux's wording on invalid input.
 */
function parseSpec(spec: unknown, routeBy: string | undefined): ReceiverSpec {
  if (!isObject(spec)) throw new SpecError("spec is missing");
  const type = str(spec.type);
  if (!type) throw new SpecError("spec.type is required");
  if (!(RECEIVER_TYPES as readonly string[]).includes(type))
    throw new SpecError(`receiver type ${JSON.stringify(type)} is not supported`);
  const secretRef = spec.secretRef;
  const secretName = isObject(secretRef) ? str(secretRef.name) || undefined : undefined;
  const oidcProviders = list(spec.oidcProviders, "oidcProviders").map(parseOidcProvider);
  // Flux's validateOIDCSpec, in its order and words.
  const oidc = type === "generic-oidc";
  if (oidc && oidcProviders.length === 0)
    throw new SpecError("generic-oidc receiver requires at least one oidcProvider");
  if (!oidc && oidcProviders.length > 0) throw new SpecError("oidcProviders can only be set when type is generic-oidc");
  if (oidc && isObject(secretRef)) throw new SpecError("secretRef cannot be set when type is generic-oidc");
  if (!oidc && !secretName) throw new SpecError("secretRef is required when type is not generic-oidc");
  const events = list(spec.events, "events").map((e, i) => {
    if (typeof e !== "string") throw new SpecError(`events[${i}] must be a string`);
    return e;
  });
  return {
    type: type as ReceiverType,
    events,
    resources: list(spec.resources, "resources").map(parseResource),
    resourceFilter: str(spec.resourceFilter) || undefined,
    secretName,
    oidcProviders,
    suspend: spec.suspend === true,
    routeBy,
  };
}

/** Reads a Receiver object as delivered by the API server. */
export function readReceiver(obj: unknown): ReceiverObject | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const meta = obj.metadata;
  const name = str(meta.name);
  const namespace = str(meta.namespace);
  if (!name || !namespace) return undefined;
  let spec: ReceiverSpec | undefined;
  let invalid: string | undefined;
  const annotations = isObject(meta.annotations) ? meta.annotations : {};
  try {
    spec = parseSpec(obj.spec, str(annotations[ROUTE_BY_ANNOTATION]));
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    invalid = err.message;
  }
  const rawSecretRef = isObject(obj.spec) && isObject(obj.spec.secretRef) ? obj.spec.secretRef : {};
  return {
    key: { namespace, name },
    uid: str(meta.uid) ?? "",
    createdAt: str(meta.creationTimestamp) ?? "",
    generation: typeof meta.generation === "number" ? meta.generation : 0,
    resourceVersion: str(meta.resourceVersion) ?? "",
    deleting: str(meta.deletionTimestamp) !== undefined,
    finalizers: Array.isArray(meta.finalizers) ? meta.finalizers.filter((f): f is string => typeof f === "string") : [],
    spec,
    invalid,
    secretName: spec ? spec.secretName : str(rawSecretRef.name) || undefined,
    status: isObject(obj.status) ? (obj.status as ReceiverStatus) : undefined,
    requestedAt: str(annotations[REQUESTED_AT_ANNOTATION]),
  };
}

/** Deep equality of JSON-shaped data (what the API server sends and readReceiver keeps). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/**
 * `after` with every part that equals `before`'s taken from `before`. Most watch events of a
 * Receiver change its resourceVersion and little else (our own status or finalizer writes), and a
 * Receiver's parts live long enough to be promoted: replacing them on every event made old-space
 * garbage that only a full collection frees (10,000 Receivers: ~45 MB of heap growth through
 * start-up; bench/README.md, scenario 6). The event's own copies stay young and die young.
 */
export function sharedWith(before: ReceiverObject, after: ReceiverObject): ReceiverObject {
  const same = <T>(a: T, b: T): T => (sameJson(a, b) ? a : b);
  return {
    key: sameJson(before.key, after.key) ? before.key : after.key,
    uid: same(before.uid, after.uid),
    createdAt: same(before.createdAt, after.createdAt),
    generation: after.generation,
    resourceVersion: after.resourceVersion,
    deleting: after.deleting,
    finalizers: same(before.finalizers, after.finalizers),
    spec: same(before.spec, after.spec),
    invalid: same(before.invalid, after.invalid),
    secretName: same(before.secretName, after.secretName),
    status: same(before.status, after.status),
    requestedAt: same(before.requestedAt, after.requestedAt),
  };
}
