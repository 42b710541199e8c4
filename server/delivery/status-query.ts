/**
 * @module server/delivery/status-query
 * Answers a status query (wire format: shared/status-query.ts): did Flux handle what a delivery
 * requested, and did the objects that use its sources apply it. The admission every hook request
 * shares comes first (delivery/admission.ts: method 405, unknown path 404, body over the cap 413,
 * receiver not Ready or no cluster to read 503, no slot 429, authentication failed 401, 429 once
 * the receiver's failure budget is spent), then: valid budget spent 429 · malformed query 400 ·
 * a target that is not one of the Receiver's resources 403 · else 200, per target.
 *
 * Nothing is read from the cluster before the query is authenticated, parsed and every named
 * target checked against the Receiver's resources by kind, namespace and name; a target named
 * only through a `*` selector is read, and refused unless its labels match. Stateless: every
 * answer comes from the objects as the API server has them now, so any replica answers. The
 * answer holds only status fields (api/observed.ts), never a spec or a Secret.
 */
import { CONSUMER_KINDS, SOURCE_KINDS, type ObservedCondition, type ObservedObject } from "../api/observed";
import type { KubePort } from "../kube/port";
import type { ServingEntry } from "../receivers/index";
import { resolveRef } from "../targets/resolve";
import { mapPool } from "../targets/annotate";
import {
  MAX_CONDITION_MESSAGE_CHARS,
  MAX_CONSUMERS_SCANNED,
  MAX_STATUS_ANSWER_CONSUMERS,
  MAX_STATUS_QUERY_BYTES,
  TARGET_CONCURRENCY,
} from "../limits";
import {
  STATUS_QUERY_NO_CLUSTER,
  STATUS_QUERY_SUFFIX,
  type ConditionState,
  type QueriedTarget,
  type TargetState,
} from "../../shared";
import { isOutcome, outcome, tooMany, type Outcome, type OutcomeDetails } from "../outcome/outcomes";
import type { QueryAuthentication } from "../providers";
import { admit, authenticate, type AdmissionDeps, type HookRequest } from "./admission";
import { queriedTargets } from "./status-query-body";

export interface StatusQueryDeps extends AdmissionDeps {
  /** The cluster the targets live in; undefined without one (file mode with no cluster). */
  readonly cluster: Pick<KubePort, "observeObject" | "observeObjects"> | undefined;
  readonly noCrossNamespaceRefs: boolean;
}

/** How a status query ended: its answer lists each target's state. */
export type StatusQueryOutcome = Outcome<TargetState>;

/** A status query on the admission path: the type's query authentication (providers/query-auth.ts). */
const statusQueryRequest = (deps: StatusQueryDeps): HookRequest<QueryAuthentication> => ({
  takesPost: "status queries take POST",
  maxBodyBytes: MAX_STATUS_QUERY_BYTES,
  cannotServe: () => (deps.cluster ? undefined : STATUS_QUERY_NO_CLUSTER),
  authenticate: (provider, request, context) => provider.authenticateQuery(request, context),
  refusedAs: "unauthenticated",
});

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
  try {
    const authenticated = await authenticate(request, admitted, deps, kind);
    if (isOutcome(authenticated)) return authenticated;
    const { known, receiverKey, entry } = admitted;
    // A query reads the cluster as a delivery does, so it costs what a valid delivery costs.
    const budget = deps.guards.validDelivery(receiverKey);
    if (!budget.ok) return tooMany("too many deliveries for this receiver; retry later", budget, known);
    const query = parseQuery(authenticated.body);
    if (!query.ok) return outcome("rejected", query.reason, known);
    return await answer(entry, query.targets, deps.cluster!, deps.noCrossNamespaceRefs, known);
  } finally {
    admitted.release();
  }
}

/** A query body: JSON, then the schema (status-query-body.ts). */
function parseQuery(bytes: Uint8Array): { ok: true; targets: QueriedTarget[] } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return { ok: false, reason: "the query is not JSON" };
  }
  return queriedTargets(value);
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

const labelsMatch = (labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

function condition(c: ObservedCondition | undefined): ConditionState | undefined {
  if (!c) return undefined;
  const message =
    c.message.length > MAX_CONDITION_MESSAGE_CHARS ? `${c.message.slice(0, MAX_CONDITION_MESSAGE_CHARS)}…` : c.message;
  return { status: c.status, reason: c.reason, message };
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

async function answer(
  entry: ServingEntry,
  targets: readonly QueriedTarget[],
  cluster: Pick<KubePort, "observeObject" | "observeObjects">,
  noCrossNamespaceRefs: boolean,
  known: OutcomeDetails<TargetState>,
): Promise<StatusQueryOutcome> {
  // Every target is checked against the spec before anything is read.
  const members: Membership[] = [];
  for (const t of targets) {
    const m = membership(entry, t, noCrossNamespaceRefs);
    if (!m)
      return outcome("forbidden", `${t.kind} ${t.namespace}/${t.name} is not one of this Receiver's resources`, known);
    members.push(m);
  }
  const read = await mapPool(targets, TARGET_CONCURRENCY, (t, i) =>
    cluster.observeObject({ apiVersion: members[i]!.apiVersion, kind: t.kind, namespace: t.namespace, name: t.name }),
  );
  // A target named only through selectors belongs to the Receiver only if its labels match; one that
  // is gone cannot show it does, and is refused like any other object.
  for (const [i, t] of targets.entries()) {
    const m = members[i]!;
    const r = read[i]!;
    if (m.named || !r.ok) continue;
    if (!r.value || !m.selectors.some((s) => labelsMatch(r.value!.labels, s)))
      return outcome("forbidden", `${t.kind} ${t.namespace}/${t.name} is not one of this Receiver's resources`, known);
  }

  // Consumers of the sources, one list per namespace and kind for the whole query.
  const lists = new Map<string, ReturnType<typeof cluster.observeObjects>>();
  const consumersIn = (namespace: string, c: (typeof CONSUMER_KINDS)[number]) => {
    const key = `${c.kind}\n${namespace}`;
    if (!lists.has(key)) lists.set(key, cluster.observeObjects(c.apiVersion, c.kind, namespace, MAX_CONSUMERS_SCANNED));
    return lists.get(key)!;
  };
  let listed = 0;
  const states = await mapPool(targets, TARGET_CONCURRENCY, async (t, i): Promise<TargetState> => {
    const base = { kind: t.kind, namespace: t.namespace, name: t.name, requestedAt: t.requestedAt };
    const r = read[i]!;
    if (!r.ok) return { ...base, found: false, handled: false, error: r.reason };
    const o = r.value;
    if (!o) return { ...base, found: false, handled: false };
    const state: TargetState = {
      ...base,
      found: true,
      handled: handled(t, o),
      ...(o.lastHandledReconcileAt !== undefined ? { lastHandledReconcileAt: o.lastHandledReconcileAt } : {}),
      ...(o.ready ? { ready: condition(o.ready) } : {}),
      ...(revisionOf(o) !== undefined ? { revision: revisionOf(o) } : {}),
    };
    if (!SOURCE_KINDS.has(o.kind)) return { ...state, complete: true };
    const consumers: NonNullable<TargetState["consumers"]>[number][] = [];
    let truncated = false;
    const errors: string[] = [];
    for (const kind of CONSUMER_KINDS) {
      const list = await consumersIn(t.namespace, kind);
      if (!list.ok) {
        errors.push(list.reason);
        continue;
      }
      truncated ||= list.value.truncated;
      for (const c of list.value.items) {
        const uses = c.sourceRefs.some(
          (s) => s.kind === t.kind && s.name === t.name && (s.namespace ?? c.namespace) === t.namespace,
        );
        if (!uses) continue;
        if (listed >= MAX_STATUS_ANSWER_CONSUMERS) {
          truncated = true;
          continue;
        }
        listed++;
        consumers.push({
          kind: c.kind,
          namespace: c.namespace,
          name: c.name,
          ...(c.lastAppliedRevision !== undefined ? { appliedRevision: c.lastAppliedRevision } : {}),
          ...(c.lastAttemptedRevision !== undefined ? { attemptedRevision: c.lastAttemptedRevision } : {}),
          ...(c.ready ? { ready: condition(c.ready) } : {}),
        });
      }
    }
    return {
      ...state,
      consumers,
      ...(truncated ? { consumersTruncated: true as const } : {}),
      ...(errors.length > 0 ? { consumersError: errors.join("; ") } : {}),
      // The wire contract's mark (shared/status-query.ts): every consumer of the source is listed.
      ...(!truncated && errors.length === 0 ? { complete: true as const } : {}),
    };
  });
  const done = states.filter((s) => s.handled).length;
  const reason = `${done} of ${states.length} target${states.length === 1 ? "" : "s"} handled the request`;
  return outcome("answered", reason, { ...known, targets: states });
}
