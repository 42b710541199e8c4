/**
 * @module server/targets/annotate
 * Asks every target of a delivery to reconcile. Resources are resolved in spec order and handled
 * concurrently (a bounded pool, so hundreds of targets answer within GitHub's 10 s timeout);
 * every one is attempted even when another failed, and each gets its own outcome, which the
 * response reports.
 *
 * With a CEL filter (server/targets/filters.ts), a named target is read first (GET) so the filter
 * can see it, then annotated only if the filter returns true; listed targets are filtered as
 * listed. A false filter skips the target; an evaluation error is that target's failure. Without
 * a filter a named target is patched directly (a 404 from the patch is "not found").
 *
 * Concurrent deliveries to one object share their PATCHes (server/targets/coalesce.ts): a burst
 * costs about one PATCH per round of concurrent deliveries, and each 200 still means a PATCH
 * started after that delivery arrived.
 */
import { mapPool } from "../../shared";
import type { KubePort, PartialObject, TargetRef } from "../kube/port";
import type { ObjectKey, ReceiverSpec, ResourceRef } from "../api/receiver";
import { TARGET_CONCURRENCY } from "../limits";
import { REQUESTED_AT_ANNOTATION } from "../api/annotations";
import type { RequestedAtClock } from "./requested-at";
import { NO_FILTERS, type DeliveryFilters, type TargetFilter } from "./filters";
import { EVERY_NAMESPACE, resolveRef } from "./resolve";
import { targetKey, type Coalesce } from "./coalesce";
import type { SourceIndex } from "./source-index";

export interface TargetOutcome {
  readonly kind: string;
  readonly namespace: string;
  /** The object's name; `*` for a selector that matched nothing or could not be listed. */
  readonly name: string;
  readonly outcome: "annotated" | "failed" | "skipped";
  readonly reason?: string;
  /** An annotated target: the `requestedAt` value written, which a status query asks about. */
  readonly requestedAt?: string;
}

/** `Kind/namespace/name:outcome`, as logs and the deliveries page show a target. */
export const targetLabel = (t: TargetOutcome) => `${t.kind}/${t.namespace}/${t.name}:${t.outcome}`;

export interface AnnotateDeps {
  readonly kube: Pick<KubePort, "annotateObject" | "listObjects" | "getObject">;
  readonly clock: RequestedAtClock;
  /** Shares concurrent PATCHes of one object (one coalescer per target cluster, made by the server). */
  readonly coalesce: Coalesce;
  readonly noCrossNamespaceRefs: boolean;
  /** The sources routing Receivers match (route.ts); absent without a cluster to index them in. */
  readonly sources?: SourceIndex;
}

export async function annotate(ref: TargetRef, deps: AnnotateDeps): Promise<TargetOutcome> {
  const base = { kind: ref.kind, namespace: ref.namespace, name: ref.name };
  // The value is computed when the shared PATCH starts, so it is fresh for every round (coalesce.ts),
  // and every delivery that shares the PATCH is told the value it wrote.
  const { result, requestedAt } = await deps.coalesce(targetKey(ref), async () => {
    const requestedAt = deps.clock();
    return { result: await deps.kube.annotateObject(ref, { [REQUESTED_AT_ANNOTATION]: requestedAt }), requestedAt };
  });
  return result.ok
    ? { ...base, outcome: "annotated", requestedAt }
    : { ...base, outcome: "failed", reason: result.reason };
}

/** A listed or fetched object through the filter: a target to annotate, or its outcome. */
export function filtered(ref: TargetRef, obj: PartialObject, filter: TargetFilter): TargetRef | TargetOutcome {
  const verdict = filter(obj);
  const base = { kind: ref.kind, namespace: ref.namespace, name: ref.name };
  if (!verdict.ok) return { ...base, outcome: "failed", reason: verdict.error };
  if (!verdict.accept) return { ...base, outcome: "skipped", reason: "the CEL filter returned false" };
  return ref;
}

/** A resource of a Receiver's spec as a failed target (its namespace defaults to the Receiver's). */
export function failedTarget(resource: ResourceRef, receiverNamespace: string, reason: string): TargetOutcome {
  return {
    kind: resource.kind,
    namespace: resource.namespace ?? receiverNamespace,
    name: resource.name,
    outcome: "failed",
    reason,
  };
}

export async function annotateTargets(
  entry: { readonly key: ObjectKey; readonly spec: Pick<ReceiverSpec, "resources"> },
  deps: AnnotateDeps,
  filters: DeliveryFilters = NO_FILTERS,
): Promise<TargetOutcome[]> {
  const resources = entry.spec.resources;
  const failed = (resource: ResourceRef, reason: string) => failedTarget(resource, entry.key.namespace, reason);
  const refs = resources.map((resource) => resolveRef(resource, entry.key.namespace, deps.noCrossNamespaceRefs));
  // What needs no API read: a refused reference, and a named target without a filter (the usual
  // Receiver), expanded without a promise each; the reads run in the pool for the others.
  const withoutRead = refs.map((ref, i): (TargetRef | TargetOutcome)[] | undefined => {
    if (!ref.ok) return [failed(resources[i]!, ref.reason)];
    if (ref.name === undefined || ref.namespace === EVERY_NAMESPACE || filters.forResource(i)) return undefined;
    return [{ apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name }];
  });
  const read = async (i: number): Promise<(TargetRef | TargetOutcome)[]> => {
    const ref = refs[i]!;
    if (!ref.ok) return [failed(resources[i]!, ref.reason)];
    const expanded = await readReference(ref, filters.forResource(i), deps);
    return expanded.ok ? expanded.targets : [failed(resources[i]!, expanded.reason)];
  };
  const expanded = withoutRead.every((targets) => targets !== undefined)
    ? (withoutRead as (TargetRef | TargetOutcome)[][])
    : await mapPool(resources, TARGET_CONCURRENCY, async (_, i) => withoutRead[i] ?? read(i));
  const flat = expanded.flat();
  const handle = (target: TargetRef | TargetOutcome) => ("outcome" in target ? target : annotate(target, deps));
  if (flat.length === 1) return [await handle(flat[0]!)];
  return mapPool(flat, TARGET_CONCURRENCY, async (target) => handle(target));
}

/**
 * A reference that needs a read: the named object fetched for its filter, or the ones its labels
 * select (or its name in every namespace), each through the filter; or why the read failed.
 */
async function readReference(
  ref: Extract<ReturnType<typeof resolveRef>, { ok: true }>,
  filter: TargetFilter | undefined,
  deps: AnnotateDeps,
): Promise<{ ok: true; targets: (TargetRef | TargetOutcome)[] } | { ok: false; reason: string }> {
  const everywhere = ref.namespace === EVERY_NAMESPACE;
  if (ref.name !== undefined && !everywhere) {
    const target = { apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name };
    const got = await deps.kube.getObject(target);
    if (!got.ok) return got;
    return { ok: true, targets: [filtered(target, got.value, filter!)] };
  }
  // A selector, or a name in every namespace: one metadata list (shared between concurrent
  // deliveries, shared-lists.ts), matchLabels ignored with a name as Flux ignores it.
  const listed = await deps.kube.listObjects(
    ref.apiVersion,
    ref.kind,
    everywhere ? undefined : ref.namespace,
    ref.name === undefined ? ref.matchLabels : {},
    ref.name,
  );
  if (!listed.ok) return listed;
  if (listed.value.length === 0) {
    // Flux logs this as an error but answers 200: nothing to do is not a failure.
    const reason = ref.name === undefined ? "no object matches the labels" : "no object of this name in any namespace";
    return {
      ok: true,
      targets: [{ kind: ref.kind, namespace: ref.namespace, name: ref.name ?? "*", outcome: "skipped", reason }],
    };
  }
  const targets = listed.value.map((object) => {
    const target = {
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      namespace: object.metadata.namespace ?? ref.namespace,
      name: object.metadata.name,
    };
    return filter ? filtered(target, object, filter) : target;
  });
  return { ok: true, targets };
}
