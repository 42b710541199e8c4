/**
 * @module server/receivers/decide
 * What one Receiver is, decided from what the caches hold, in Flux's order of checks
 * (notification-controller's Receiver reconciler): being deleted, suspended, the spec (CEL, OIDC
 * providers), then the token. The answer is the index entry it serves from (if any), the
 * readiness its status reports, and the path it was refused (a collision). The reconciler calls
 * this once per reconcile and writes what it decided.
 */
import { RECEIVER_TYPES, webhookPath } from "../../shared";
import { ROUTE_BY_ANNOTATION, ROUTE_BY_REPOSITORY } from "../api/annotations";
import type { ObjectKey, ReceiverObject, ReceiverSpec, ReceiverStatus } from "../api/receiver";
import { ROUTED_KINDS, routedKind } from "../api/sources";
import type { SecretData } from "../api/secret";
import { Reason, type Readiness } from "../api/status";
import { MAX_TOKEN_BYTES } from "../limits";
import { PROVIDERS } from "../providers";
import type { ReceiverEntry } from "./index";
import { keepsPath, PATH_COLLISION } from "./paths";
import type { Prepared } from "./prepare";
import type { SecretLookup } from "./secret-cache";

export interface DecisionInputs {
  /** The Secret ("namespace/name") as the Secret cache answers for it. */
  readonly secret: (secret: string) => SecretLookup;
  /** The spec's preparation (compiled CEL, checked OIDC providers); asked only when Flux would check the spec. */
  readonly prepare: (spec: ReceiverSpec) => Prepared;
  /** The Receiver's status as it stands (our own last write until the watch shows it). */
  readonly status: ReceiverStatus | undefined;
  /** The other Receiver serving this path, if one does. */
  readonly otherAt: (path: string, self: ObjectKey) => ReceiverObject | undefined;
  /**
   * Receivers from files have no status: one that cannot serve (suspended, Stalled) answers 503
   * at the path its token gives, not 404 for want of a status.webhookPath.
   */
  readonly withoutStatus: boolean;
  /** --no-cross-namespace-refs: a resource in every namespace (`namespace: "*"`) is refused. */
  readonly noCrossNamespaceRefs?: boolean;
  /** No cluster (a receivers file alone): no sources to index, so one that routes by repository cannot serve. */
  readonly withoutSources?: boolean;
}

export interface Decision {
  /** Where deliveries find it; undefined: nowhere (404). */
  readonly entry?: ReceiverEntry;
  /** What its status says; undefined: nothing to write (being deleted, or suspended without a token). */
  readonly readiness?: Readiness;
  /** Its Secret is being read: what was decided before stands until it is. */
  readonly pending?: true;
  /** The path an older Receiver keeps. */
  readonly refused?: string;
}

/** Why a suspended Receiver's deliveries get 503. */
const SUSPENDED = "receiver is suspended";

/** The Secret data of a Receiver that needs none, one object for all: index entries compare it by identity. */
const NO_SECRET: SecretData = Object.freeze({});

export function decide(receiver: ReceiverObject, inputs: DecisionInputs): Decision {
  // Being deleted: no longer served, in every mode, and its status is not written again (Flux
  // only removes its finalizer).
  if (receiver.deleting) return {};
  const spec = receiver.spec;
  // Suspended: Flux neither validates nor reads the token; the status keeps its conditions.
  if (spec?.suspend && !inputs.withoutStatus)
    return { entry: unavailableAt(receiver, inputs, spec, NO_SECRET, SUSPENDED), readiness: { kind: "suspended" } };
  const prepared = checkSpec(receiver, inputs);
  let token: Buffer | undefined;
  let secret: SecretData = NO_SECRET;
  if (receiver.secretName) {
    const state = inputs.secret(`${receiver.key.namespace}/${receiver.secretName}`);
    if (state.kind === "pending") return { pending: true };
    const data = state.kind === "ready" ? state.data : {};
    const problem = tokenProblem(receiver, state, data);
    if (problem !== undefined) {
      if (spec?.suspend) return {};
      // As Flux, an invalid spec is reported before the token is read.
      if (!prepared.ok) return notReady(receiver, inputs, spec, {}, prepared);
      return { readiness: { kind: "token-not-found", message: problem } };
    }
    token = data.token;
    secret = data;
  } else if (spec?.type !== "generic-oidc") {
    // No Secret means no path (the token is part of it), so nothing to index.
    return {
      readiness: {
        kind: "terminal",
        reason: Reason.validationFailed,
        message: receiver.invalid ?? "secretRef is required when type is not generic-oidc",
      },
    };
  }
  const base = {
    key: receiver.key,
    generation: receiver.generation,
    path: webhookPath(token ?? "", receiver.key.name, receiver.key.namespace),
    secret,
  };
  const other = inputs.otherAt(base.path, receiver.key);
  if (other && keepsPath(other, receiver)) {
    return {
      refused: base.path,
      readiness: { kind: "terminal", reason: Reason.validationFailed, message: PATH_COLLISION },
    };
  }
  if (spec?.suspend) return { entry: unavailableAt(receiver, inputs, spec, secret, SUSPENDED, base.path) };
  if (!prepared.ok) return notReady(receiver, inputs, spec, secret, prepared, base.path);
  return {
    entry: { ...base, spec: spec!, compiled: prepared.compiled, unavailable: undefined },
    readiness: { kind: "ready", path: base.path },
  };
}

/**
 * The spec as Flux checks it before it reads the token (CEL, OIDC providers), with fluxhook's own
 * opt-ins (namespace "*", route-by): prepared, or why not.
 */
function checkSpec(receiver: ReceiverObject, inputs: DecisionInputs): Prepared {
  const spec = receiver.spec;
  if (!spec) return { ok: false, reason: Reason.validationFailed, message: receiver.invalid ?? "invalid spec" };
  const compiled = inputs.prepare(spec);
  const refused = compiled.ok ? optInProblem(spec, inputs) : undefined;
  return refused ? { ok: false, reason: Reason.validationFailed, message: refused } : compiled;
}

/**
 * Why the Secret gives no token to serve, in Flux's words; undefined when it gives one. Past Flux:
 * an empty token and one over MAX_TOKEN_BYTES are refused too.
 */
function tokenProblem(
  receiver: ReceiverObject,
  state: Exclude<SecretLookup, { kind: "pending" }>,
  data: SecretData,
): string | undefined {
  const length = data.token?.length ?? 0;
  if (length > 0 && length <= MAX_TOKEN_BYTES) return undefined;
  const ref = `'${receiver.key.namespace}/${receiver.secretName}'`;
  if (state.kind === "unreadable") return `unable to read token from secret ${ref} error: ${state.reason}`;
  if (state.kind === "absent")
    return `unable to read token from secret ${ref} error: secrets "${receiver.secretName}" not found`;
  // Each signature check hashes the token: a huge one makes every forged delivery dear.
  if (length > MAX_TOKEN_BYTES)
    return `invalid ${ref} secret data: field 'token' is longer than ${MAX_TOKEN_BYTES} bytes`;
  // Flux serves an empty token; but then the path is sha256(name + namespace) and an HMAC keyed
  // with "" is anyone's: the Receiver would be open to whoever guesses its name.
  return data.token
    ? `invalid ${ref} secret data: field 'token' is empty`
    : `invalid ${ref} secret data: required fields 'token'`;
}

/** A spec that cannot be served: Stalled, and answering 503 where it is found (unavailableAt). */
function notReady(
  receiver: ReceiverObject,
  inputs: DecisionInputs,
  spec: ReceiverSpec | undefined,
  secret: SecretData,
  prepared: Extract<Prepared, { ok: false }>,
  computed?: string,
): Decision {
  return {
    entry: unavailableAt(receiver, inputs, spec, secret, `receiver is not ready: ${prepared.message}`, computed),
    readiness: { kind: "terminal", reason: prepared.reason, message: prepared.message },
  };
}

const q = (text: string) => JSON.stringify(text);
const list = (names: readonly string[]) => `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;

/** The types whose deliveries name a repository (providers/repository.ts). */
const ROUTED_TYPES = RECEIVER_TYPES.filter((type) => PROVIDERS[type].repository !== undefined);

/**
 * Why a spec's fluxhook opt-ins cannot be served, in the words its status gives: `namespace: "*"`
 * under --no-cross-namespace-refs, and the annotation `fluxhook.io/route-by` with another value
 * than `repository`, on a type whose deliveries name no repository, over a kind that follows none,
 * or without a cluster whose sources it could index (a receivers file and no cluster).
 */
export function optInProblem(
  spec: ReceiverSpec,
  mode: Pick<DecisionInputs, "noCrossNamespaceRefs" | "withoutSources">,
): string | undefined {
  for (const [i, resource] of spec.resources.entries()) {
    if (mode.noCrossNamespaceRefs && resource.namespace === "*")
      return `resources[${i}] (kind=${q(resource.kind)}, name=${q(resource.name)}): namespace "*" names every namespace, and cross-namespace references are not allowed (--no-cross-namespace-refs)`;
  }
  if (spec.routeBy === undefined) return undefined;
  const annotation = `annotation ${ROUTE_BY_ANNOTATION}: ${q(spec.routeBy)}`;
  if (spec.routeBy !== ROUTE_BY_REPOSITORY)
    return `${annotation} is not supported; its one value is ${q(ROUTE_BY_REPOSITORY)}`;
  if (!PROVIDERS[spec.type].repository)
    return `${annotation}: the deliveries of a ${spec.type} Receiver name no repository; routing reads those of ${list(ROUTED_TYPES)}`;
  for (const [i, resource] of spec.resources.entries()) {
    if (!routedKind(resource.kind))
      return `${annotation}: resources[${i}] (kind=${q(resource.kind)}) follows no repository; routing selects ${list(ROUTED_KINDS.map((routed) => routed.kind))}`;
  }
  if (mode.withoutSources)
    return `${annotation}: routing by repository reads a cluster's sources, and no cluster is configured (--kubeconfig)`;
  return undefined;
}

/**
 * Where a Receiver that cannot serve (suspended, or Stalled) answers 503: the path its status
 * has, as Flux looks Receivers up by status.webhookPath. One that was never Ready has none and
 * answers 404, as in Flux; so does a path another Receiver serves now. Without status (files),
 * the path the token gives, when it is known.
 */
function unavailableAt(
  receiver: ReceiverObject,
  inputs: DecisionInputs,
  spec: ReceiverSpec | undefined,
  secret: SecretData,
  unavailable: string,
  computed?: string,
): ReceiverEntry | undefined {
  const path = inputs.withoutStatus ? computed : inputs.status?.webhookPath;
  if (!path || inputs.otherAt(path, receiver.key)) return undefined;
  return { key: receiver.key, generation: receiver.generation, path, secret, spec, unavailable };
}

/** Whether two index entries are the same decision, part for part (parts are shared, not copied). */
export function sameEntry(a: ReceiverEntry, b: ReceiverEntry): boolean {
  return (
    a.key === b.key &&
    a.generation === b.generation &&
    a.path === b.path &&
    a.secret === b.secret &&
    a.spec === b.spec &&
    a.unavailable === b.unavailable &&
    (a.unavailable === undefined ? a.compiled : undefined) === (b.unavailable === undefined ? b.compiled : undefined)
  );
}
