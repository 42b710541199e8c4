/**
 * @module server/delivery/status-query
 * Answers a status query (wire format: shared/status-query.ts): did Flux handle what a delivery
 * requested, and did the objects that use its sources apply it. The admission every hook request
 * shares comes first (delivery/admission.ts: method 405, unknown path 404, body over the cap 413,
 * receiver not Ready or no cluster to read 503, no slot 429, authentication failed 401, 429 once
 * the receiver's failure budget is spent), then:
 *
 *   JSON past its bounds, or no query 400 · a target outside the Receiver's namespace, or not one of
 *   its resources 403 · the receiver's query budget spent 429 · the reads past their deadline 504 ·
 *   else 200, per target.
 *
 * Every refusal spends the failure budget, so refusals cost the logs what failed deliveries do.
 * Nothing is read from the cluster before the query is authenticated, parsed and every named
 * target checked against the Receiver's own namespace and resources; a target named only through
 * a `*` selector is read, and refused unless its labels match. A query never reveals an object
 * outside the Receiver's namespace: its targets must be there, and a source's consumers are
 * listed in the source's namespace. What it reads is shared with the queries beside it
 * (status-reads.ts), and what it answers is cut to the wire contract's bounds; API error text is
 * cut, and toward a sender with no credential beyond the URL only its status is named. A query
 * whose client goes away, or whose reads pass their deadline, ends at once and frees its slot.
 */
import { CONSUMER_KINDS, SOURCE_KINDS, type ObservedCondition, type ObservedObject } from "../api/observed";
import type { KubeResult } from "../kube/port";
import type { ServingEntry } from "../receivers/index";
import { resolveRef } from "../targets/resolve";
import { mapPool } from "../../shared";
import {
  MAX_CONDITION_MESSAGE_CHARS,
  MAX_STATUS_ANSWER_CONSUMERS,
  MAX_STATUS_QUERY_BYTES,
  MAX_STATUS_TEXT_CHARS,
  STATUS_QUERY_DEADLINE_MS,
  STATUS_QUERY_JSON_DEPTH,
  STATUS_QUERY_JSON_VALUES,
  TARGET_CONCURRENCY,
} from "../limits";
import {
  STATUS_QUERY_NO_CLUSTER,
  STATUS_QUERY_SUFFIX,
  type ConditionState,
  type ConsumerState,
  type QueriedTarget,
  type TargetState,
} from "../../shared";
import { isOutcome, outcome, tooMany, type Outcome } from "../outcome/outcomes";
import { exceedsJsonBounds } from "../providers/json-bounds";
import type { QueryAuthentication } from "../providers";
import {
  admit,
  authenticate,
  failed,
  URL_ONLY_TYPES,
  type AdmissionDeps,
  type Admitted,
  type HookRequest,
} from "./admission";
import { queriedTargets } from "./status-query-body";
import type { StatusReads } from "./status-reads";

export interface StatusQueryDeps extends AdmissionDeps {
  /** What queries read of the cluster, shared between them; undefined without a cluster. */
  readonly reads: StatusReads | undefined;
  readonly noCrossNamespaceRefs: boolean;
  /** The reads' deadline (STATUS_QUERY_DEADLINE_MS; tests shorten it). */
  readonly deadlineMs?: number;
}

/** How a status query ended: its answer lists each target's state. */
export type StatusQueryOutcome = Outcome<TargetState>;

/** A status query on the admission path: the type's query authentication (providers/query-auth.ts). */
const statusQueryRequest = (deps: StatusQueryDeps): HookRequest<QueryAuthentication> => ({
  takesPost: "status queries take POST",
  maxBodyBytes: MAX_STATUS_QUERY_BYTES,
  cannotServe: () => (deps.reads ? undefined : STATUS_QUERY_NO_CLUSTER),
  authenticate: (provider, request, context) => provider.authenticateQuery(request, context),
  refusedAs: "unauthenticated",
});

const QUERY_JSON_BOUNDS = {
  maxDepth: STATUS_QUERY_JSON_DEPTH,
  maxValues: STATUS_QUERY_JSON_VALUES,
  holds: "more than a status query holds",
};

export async function handleStatusQuery(
  request: Request,
  deps: StatusQueryDeps,
  /** The request-target as requested (`/hook/<digest>/status`; a query string names no Receiver). */
  target: string,
): Promise<StatusQueryOutcome> {
  const hookPath = target.endsWith(STATUS_QUERY_SUFFIX) ? target.slice(0, -STATUS_QUERY_SUFFIX.length) : undefined;
  const kind = statusQueryRequest(deps);
  const admitted = admit(request, deps, hookPath, kind);
  if (isOutcome(admitted)) return admitted;
  // The client going away ends the query at once; reads it started finish on their own deadlines,
  // shared with the queries beside it, and hold no slot.
  const gone = whenAborted(request.signal, () =>
    outcome<TargetState>("client-gone", "the client closed the connection", admitted.known),
  );
  try {
    return await Promise.race([query(request, admitted, deps, kind), gone.ended]);
  } finally {
    gone.dispose();
    admitted.release();
  }
}

async function query(
  request: Request,
  admitted: Admitted,
  deps: StatusQueryDeps,
  kind: HookRequest<QueryAuthentication>,
): Promise<StatusQueryOutcome> {
  const authenticated = await authenticate(request, admitted, deps, kind);
  if (isOutcome(authenticated)) return authenticated;
  const { entry, known, receiverKey } = admitted;
  const parsed = parseQuery(authenticated.body);
  if (!parsed.ok) return failed(deps, admitted, "rejected", parsed.reason, known);
  const targets = distinct(parsed.targets);
  const members = checkTargets(entry, targets, deps.noCrossNamespaceRefs);
  if (!members.ok) return failed(deps, admitted, "forbidden", members.reason, known);
  // What the reads cost, queries with any credential alike: always bounded, apart from deliveries.
  const budget = deps.guards.statusQuery(receiverKey);
  if (!budget.ok) return tooMany("too many status queries for this receiver; retry later", budget, known);

  const deadlineMs = deps.deadlineMs ?? STATUS_QUERY_DEADLINE_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<StatusQueryOutcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(outcome("timed-out", `the cluster did not answer within ${deadlineMs / 1000} s; retry later`, known)),
      deadlineMs,
    );
  });
  try {
    const reading = read(targets, members.value, deps.reads!, !URL_ONLY_TYPES.has(entry.spec.type));
    const result = await Promise.race([reading, late]);
    if (isOutcome(result)) return result;
    if (!result.ok) return failed(deps, admitted, "forbidden", result.reason, known);
    const done = result.states.filter((s) => s.handled).length;
    const reason = `${done} of ${result.states.length} target${result.states.length === 1 ? "" : "s"} handled the request`;
    return outcome("answered", reason, { ...known, targets: result.states });
  } finally {
    clearTimeout(timer);
  }
}

/** A query body: its JSON within a query's bounds (before any parse), then the schema (status-query-body.ts). */
function parseQuery(bytes: Uint8Array): { ok: true; targets: QueriedTarget[] } | { ok: false; reason: string } {
  const beyond = exceedsJsonBounds(bytes, false, QUERY_JSON_BOUNDS);
  if (beyond) return { ok: false, reason: `the query's ${beyond}` };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return { ok: false, reason: "the query is not JSON" };
  }
  return queriedTargets(value);
}

/** The targets, each once: a target named again (with its requestedAt) is read and answered once. */
function distinct(targets: readonly QueriedTarget[]): QueriedTarget[] {
  const seen = new Map<string, QueriedTarget>();
  for (const t of targets) seen.set(`${t.kind}\n${t.namespace}\n${t.name}\n${t.requestedAt}`, t);
  return [...seen.values()];
}

/** How a queried target belongs to the Receiver: by name, or through selectors to check once read. */
type Membership = { apiVersion: string; named: boolean; selectors: Readonly<Record<string, string>>[] };

function membership(entry: ServingEntry, t: QueriedTarget, noCrossNamespaceRefs: boolean): Membership | undefined {
  let found: Membership | undefined;
  for (const resource of entry.spec.resources) {
    const ref = resolveRef(resource, entry.key.namespace, noCrossNamespaceRefs);
    if (!ref.ok || ref.kind !== t.kind || ref.namespace !== t.namespace) continue;
    if (ref.name !== undefined && ref.name !== t.name) continue;
    found ??= { apiVersion: ref.apiVersion, named: false, selectors: [] };
    if (ref.name === undefined) found.selectors.push(ref.matchLabels);
    else found.named = true;
  }
  return found;
}

const notOurs = (t: QueriedTarget) => `${t.kind} ${t.namespace}/${t.name} is not one of this Receiver's resources`;

/**
 * Every target is in the Receiver's own namespace and one of its resources, checked before
 * anything is read. A delivery may reach another namespace (as in Flux); a query would turn the
 * same URL into read access there, through fluxhook's cluster-wide permissions.
 */
function checkTargets(
  entry: ServingEntry,
  targets: readonly QueriedTarget[],
  noCrossNamespaceRefs: boolean,
): { ok: true; value: Membership[] } | { ok: false; reason: string } {
  const members: Membership[] = [];
  for (const t of targets) {
    if (t.namespace !== entry.key.namespace)
      return {
        ok: false,
        reason: `${t.kind} ${t.namespace}/${t.name} is outside this Receiver's namespace: a status query reads only its own`,
      };
    const m = membership(entry, t, noCrossNamespaceRefs);
    if (!m) return { ok: false, reason: notOurs(t) };
    members.push(m);
  }
  return { ok: true, value: members };
}

const labelsMatch = (labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** `text` cut to `max` characters, the last an ellipsis when cut (a text of the answer: MAX_STATUS_TEXT_CHARS). */
const cut = (text: string, max = MAX_STATUS_TEXT_CHARS) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function condition(c: ObservedCondition | undefined): ConditionState | undefined {
  if (!c) return undefined;
  const message =
    c.message.length > MAX_CONDITION_MESSAGE_CHARS ? `${c.message.slice(0, MAX_CONDITION_MESSAGE_CHARS)}…` : c.message;
  return { status: c.status, reason: cut(c.reason), message };
}

/**
 * Why an object or a list could not be read, for the answer: the API's text cut to the contract's
 * bound for a sender that proved who it is; for one that holds only the URL, the status alone (the
 * API's text can name fluxhook's service account and the cluster's addresses).
 */
function readError(result: { reason: string; status?: number }, what: string, trusted: boolean): string {
  if (trusted) return cut(result.reason);
  return result.status === undefined
    ? `${what} could not be read: the Kubernetes API did not answer`
    : `${what} could not be read: the Kubernetes API answered ${result.status}`;
}

/**
 * Handled when the controller answered this request, or a later one that replaced it on the
 * object: a second delivery (or `flux reconcile`) may overwrite requestedAt before the controller
 * reads it, and the reconcile it then runs comes after ours too.
 */
function handled(t: QueriedTarget, o: ObservedObject): boolean {
  const last = o.lastHandledReconcileAt;
  if (last === undefined) return false;
  if (last === t.requestedAt) return true;
  const current = o.requestedAt;
  if (current === undefined || current === t.requestedAt || last !== current) return false;
  const [ours, theirs] = [rfc3339Nanos(t.requestedAt), rfc3339Nanos(current)];
  return ours !== undefined && theirs !== undefined && theirs > ours;
}

/**
 * An RFC 3339 time in nanoseconds since the epoch, or undefined. fluxhook writes nine fraction
 * digits; `flux reconcile` writes Go's RFC3339Nano, which drops trailing zeros and may carry an
 * offset, so neither text nor Date.parse (milliseconds) compares them.
 */
export function rfc3339Nanos(value: string): bigint | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(value);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

const revisionOf = (o: ObservedObject) =>
  SOURCE_KINDS.has(o.kind) ? o.artifactRevision : (o.lastAppliedRevision ?? o.lastAttemptedRevision);

/** The texts a sender judges by: cut, they no longer say what the object says. */
const judged = (...texts: (string | undefined)[]) =>
  texts.every((t) => t === undefined || t.length <= MAX_STATUS_TEXT_CHARS);

/** The targets' objects and, for sources, their consumers: each target's state, or a refusal. */
async function read(
  targets: readonly QueriedTarget[],
  members: readonly Membership[],
  reads: StatusReads,
  trusted: boolean,
): Promise<{ ok: true; states: TargetState[] } | { ok: false; reason: string }> {
  const results = await readObjects(targets, members, reads);
  // A target named only through selectors belongs to the Receiver only if its labels match; one that
  // is gone cannot show it does, and is refused like any other object.
  for (const [i, target] of targets.entries()) {
    const result = results[i]!;
    if (members[i]!.named || !result.ok) continue;
    if (!result.value || !members[i]!.selectors.some((selector) => labelsMatch(result.value!.labels, selector)))
      return { ok: false, reason: notOurs(target) };
  }
  // One bound over the whole answer: the consumers listed so far, over all sources.
  const listed = { consumers: 0 };
  const states: TargetState[] = [];
  for (const [i, target] of targets.entries()) {
    const result = results[i]!;
    const base = { kind: target.kind, namespace: target.namespace, name: target.name, requestedAt: target.requestedAt };
    if (!result.ok) {
      const what = `${target.kind} ${target.namespace}/${target.name}`;
      states.push({ ...base, found: false, handled: false, error: readError(result, what, trusted) });
    } else if (!result.value) {
      states.push({ ...base, found: false, handled: false });
    } else {
      states.push(await foundState(target, result.value, reads, trusted, listed));
    }
  }
  return { ok: true, states };
}

/** Each target's object, read once however many requestedAt values the query pairs it with. */
function readObjects(
  targets: readonly QueriedTarget[],
  members: readonly Membership[],
  reads: StatusReads,
): Promise<KubeResult<ObservedObject | undefined>[]> {
  const objects = new Map<string, Promise<KubeResult<ObservedObject | undefined>>>();
  const objectOf = (target: QueriedTarget, member: Membership) => {
    const key = `${target.kind}\n${target.name}`;
    if (!objects.has(key))
      objects.set(
        key,
        reads.object({
          apiVersion: member.apiVersion,
          kind: target.kind,
          namespace: target.namespace,
          name: target.name,
        }),
      );
    return objects.get(key)!;
  };
  return mapPool(targets, TARGET_CONCURRENCY, (target, i) => objectOf(target, members[i]!));
}

/** The state of a target whose object was found; a source's lists its consumers too. */
async function foundState(
  target: QueriedTarget,
  object: ObservedObject,
  reads: StatusReads,
  trusted: boolean,
  listed: { consumers: number },
): Promise<TargetState> {
  const revision = revisionOf(object);
  const state: TargetState = {
    kind: target.kind,
    namespace: target.namespace,
    name: target.name,
    requestedAt: target.requestedAt,
    found: true,
    handled: handled(target, object),
    ...(object.lastHandledReconcileAt !== undefined
      ? { lastHandledReconcileAt: cut(object.lastHandledReconcileAt) }
      : {}),
    ...(object.ready ? { ready: condition(object.ready) } : {}),
    ...(revision !== undefined ? { revision: cut(revision) } : {}),
  };
  const whole = judged(object.lastHandledReconcileAt, revision);
  if (!SOURCE_KINDS.has(object.kind)) return whole ? { ...state, complete: true } : state;
  const found = await consumersOf(target, reads, trusted, listed);
  return {
    ...state,
    consumers: found.consumers,
    ...(found.truncated ? { consumersTruncated: true as const } : {}),
    ...(found.errors.length > 0 ? { consumersError: cut(found.errors.join("; ")) } : {}),
    // The wire contract's mark (shared/status-query.ts): every consumer of the source is listed,
    // and nothing the sender judges by was cut.
    ...(!found.truncated && found.errors.length === 0 && whole && found.whole ? { complete: true as const } : {}),
  };
}

/** The objects in the source's namespace that use it, up to MAX_STATUS_ANSWER_CONSUMERS over the answer. */
async function consumersOf(
  source: QueriedTarget,
  reads: StatusReads,
  trusted: boolean,
  listed: { consumers: number },
): Promise<{ consumers: ConsumerState[]; truncated: boolean; whole: boolean; errors: string[] }> {
  const consumers: ConsumerState[] = [];
  let truncated = false;
  let whole = true;
  const errors: string[] = [];
  for (const kind of CONSUMER_KINDS) {
    const list = await reads.consumers(kind, source.namespace);
    if (!list.ok) {
      errors.push(readError(list, `${kind.kind}s in ${source.namespace}`, trusted));
      continue;
    }
    truncated ||= list.value.truncated;
    for (const consumer of list.value.items) {
      const uses = consumer.sourceRefs.some(
        (ref) =>
          ref.kind === source.kind &&
          ref.name === source.name &&
          (ref.namespace ?? consumer.namespace) === source.namespace,
      );
      if (!uses) continue;
      if (listed.consumers >= MAX_STATUS_ANSWER_CONSUMERS) {
        truncated = true;
        continue;
      }
      listed.consumers++;
      whole &&= judged(consumer.lastAppliedRevision, consumer.lastAttemptedRevision);
      // Kinds and names come from the API server, which bounds them (MAX_STATUS_NAME_CHARS).
      consumers.push({
        kind: consumer.kind,
        namespace: consumer.namespace,
        name: consumer.name,
        ...(consumer.lastAppliedRevision !== undefined ? { appliedRevision: cut(consumer.lastAppliedRevision) } : {}),
        ...(consumer.lastAttemptedRevision !== undefined
          ? { attemptedRevision: cut(consumer.lastAttemptedRevision) }
          : {}),
        ...(consumer.ready ? { ready: condition(consumer.ready) } : {}),
      });
    }
  }
  return { consumers, truncated, whole, errors };
}

/** Settles with `ended()` once `signal` aborts (a client that went away); dispose of it when done. */
function whenAborted<T>(signal: AbortSignal, ended: () => T): { ended: Promise<T>; dispose: () => void } {
  let onAbort: (() => void) | undefined;
  const promise = new Promise<T>((resolve) => {
    if (signal.aborted) return resolve(ended());
    onAbort = () => resolve(ended());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return { ended: promise, dispose: () => onAbort && signal.removeEventListener("abort", onAbort) };
}
