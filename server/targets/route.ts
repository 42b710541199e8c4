/**
 * @module server/targets/route
 * A delivery's targets, routed or not. Without the annotation `fluxhook.io/route-by` every object
 * the Receiver's resources resolve to is annotated (annotate.ts). With `fluxhook.io/route-by:
 * repository`, of those objects only the sources that follow the repository the event is about
 * are: the event's repository is read from the validated delivery (providers/repository.ts), the
 * sources are read from the watch-fed index (source-index.ts), and the answer says what happened
 * (`2 of 40 targets follow example/app@refs/heads/main`), listing the ones that follow it.
 *
 * A source follows the event when its repository key is one of the event's and, for a Git push,
 * when its ref is the pushed one (api/repository.ts followsRef); an event with no ref (a ping)
 * matches on the repository alone. A delivery whose event names no repository, or whose
 * repository no target follows, annotates nothing and is answered 200, as Flux answers a filter
 * that matched nothing.
 */
import { followsRef, type RepositoryEvent } from "../api/repository";
import type { ObjectKey, ReceiverSpec } from "../api/receiver";
import { routedKind, type SourceRecord } from "../api/sources";
import type { TargetRef } from "../kube/port";
import { PROVIDERS } from "../providers";
import type { RepositoryInput } from "../providers/repository";
import { TARGET_CONCURRENCY } from "../limits";
import { mapPool } from "../../shared";
import { annotate, annotateTargets, failedTarget, filtered, type AnnotateDeps, type TargetOutcome } from "./annotate";
import { NO_FILTERS, type DeliveryFilters } from "./filters";
import { EVERY_NAMESPACE, resolveRef } from "./resolve";
import type { SourceIndex } from "./source-index";

/** The targets of one delivery, and, when it was routed, what it was routed by. */
export interface HandledTargets {
  readonly targets: readonly TargetOutcome[];
  readonly routed?:
    | {
        /** Targets the resources resolve to (each object once). */
        readonly total: number;
        /** Of those, the ones that follow the event's repository (listed in `targets`). */
        readonly following: number;
        /** The repository as the answer names it, or why the event names none. */
        readonly repository: { readonly display: string } | { readonly none: string };
      }
    /** The sources could not be read: why (every resource is a failed target). */
    | { readonly unindexed: string };
}

type Entry = { readonly key: ObjectKey; readonly spec: Pick<ReceiverSpec, "resources" | "type" | "routeBy"> };

/** The delivery's targets: routed when the Receiver asks for it, else every one annotate.ts resolves. */
export async function handleTargets(
  entry: Entry,
  deps: AnnotateDeps,
  filters: DeliveryFilters = NO_FILTERS,
  delivered?: RepositoryInput,
): Promise<HandledTargets> {
  if (entry.spec.routeBy === undefined || delivered === undefined)
    return { targets: await annotateTargets(entry, deps, filters) };
  return routeTargets(entry, deps, filters, delivered);
}

const plural = (n: number) => `${n} target${n === 1 ? "" : "s"}`;

/** The answer's summary of the targets (delivery.ts puts the failures before it). */
export function summarise(handled: HandledTargets, dryRun: boolean | undefined): string {
  const annotated = handled.targets.filter((t) => t.outcome === "annotated").length;
  const routed = handled.routed;
  let summary: string;
  if (!routed) summary = `${annotated} of ${plural(handled.targets.length)} annotated`;
  else if ("unindexed" in routed) summary = routed.unindexed;
  else if ("none" in routed.repository) summary = `${routed.repository.none}: 0 of ${plural(routed.total)} annotated`;
  else {
    const follow = `${routed.following} of ${plural(routed.total)} follow${routed.following === 1 ? "s" : ""}`;
    summary = `${follow} ${routed.repository.display}${annotated === routed.following ? "" : `, ${annotated} annotated`}`;
  }
  return `${summary}${dryRun ? " (dry run: nothing was written)" : ""}`;
}

/** Whether a source follows what the event changed. */
function follows(record: SourceRecord, event: RepositoryEvent): boolean {
  if (event.kind === "image") return true;
  if (!record.follow) return false;
  return event.refs === undefined || event.refs.some((ref) => followsRef(record.follow!, ref));
}

async function routeTargets(
  entry: Entry,
  deps: AnnotateDeps,
  filters: DeliveryFilters,
  delivered: RepositoryInput,
): Promise<HandledTargets> {
  const resources = entry.spec.resources;
  const extract = PROVIDERS[entry.spec.type].repository;
  const extracted = extract
    ? extract(delivered)
    : { ok: false as const, reason: `a ${entry.spec.type} delivery names no repository` };
  const sources = deps.sources;
  const unindexed = !sources
    ? "routing by repository needs a cluster to index sources in"
    : (await sources.whenSynced())
      ? undefined
      : `the sources are not indexed yet (${sources.unlisted().join(", ")} not listed yet; the log says why when it lasts); retry`;
  if (unindexed)
    return {
      targets: resources.map((resource) => failedTarget(resource, entry.key.namespace, unindexed)),
      routed: { unindexed },
    };

  const index = sources!;
  const { refused, selecting } = selectingResources(entry, index, deps.noCrossNamespaceRefs);
  // Counted without a record per object: a delivery to a Receiver selecting 10,000 sources walks
  // them once and allocates nothing for those that do not follow the event.
  const total = countSelected(index, selecting);
  if (!extracted.ok)
    return { targets: refused, routed: { total, following: 0, repository: { none: extracted.reason } } };

  const event = extracted.event;
  const chosen = followingSources(index, selecting, event);
  const handled = await mapPool(chosen, TARGET_CONCURRENCY, ({ target, resources: selectedBy }) =>
    annotateSelected(target, selectedBy, filters, deps),
  );
  return {
    targets: [...refused, ...handled],
    routed: { total, following: chosen.length, repository: { display: event.display } },
  };
}

/** The resources that select sources, with their index in the spec; the others as failed targets. */
function selectingResources(
  entry: Entry,
  index: SourceIndex,
  noCrossNamespaceRefs: boolean,
): { refused: TargetOutcome[]; selecting: { ref: Resolved; i: number }[] } {
  const failed = (i: number, reason: string) => failedTarget(entry.spec.resources[i]!, entry.key.namespace, reason);
  const refused: TargetOutcome[] = [];
  const selecting: { ref: Resolved; i: number }[] = [];
  for (const [i, resource] of entry.spec.resources.entries()) {
    const ref = resolveRef(resource, entry.key.namespace, noCrossNamespaceRefs);
    if (!ref.ok) refused.push(failed(i, ref.reason));
    else if (!routedKind(ref.kind)) refused.push(failed(i, `${ref.kind} follows no repository`));
    // A named source must exist, as Flux requires of a named target.
    else if (
      ref.name !== undefined &&
      ref.namespace !== EVERY_NAMESPACE &&
      !index.get(ref.kind, ref.namespace, ref.name)
    )
      refused.push(failed(i, `${ref.kind} ${ref.namespace}/${ref.name}: not found`));
    else selecting.push({ ref, i });
  }
  return { refused, selecting };
}

/** The indexed sources that follow the event and that a resource selects, with the resources that select each. */
function followingSources(
  index: SourceIndex,
  selecting: readonly { ref: Resolved; i: number }[],
  event: RepositoryEvent,
): { target: TargetRef; resources: readonly number[] }[] {
  const chosen: { target: TargetRef; resources: readonly number[] }[] = [];
  for (const record of new Set(index.following(event))) {
    if (!follows(record, event)) continue;
    const by = selecting.filter(({ ref }) => selects(ref, record));
    if (by.length === 0) continue;
    chosen.push({
      target: { apiVersion: by[0]!.ref.apiVersion, kind: record.kind, namespace: record.namespace, name: record.name },
      resources: by.map(({ i }) => i),
    });
  }
  return chosen;
}

/**
 * A source annotated once if one of the resources that select it accepts it: one without a
 * filter, or one whose filter returns true; else the first filter's error, else skipped.
 */
async function annotateSelected(
  target: TargetRef,
  selectedBy: readonly number[],
  filters: DeliveryFilters,
  deps: AnnotateDeps,
): Promise<TargetOutcome> {
  const own = selectedBy.map((i) => filters.forResource(i));
  if (own.some((filter) => filter === undefined)) return annotate(target, deps);
  // Filters see the object's metadata, as for a named target (annotate.ts).
  const got = await deps.kube.getObject(target);
  const { kind, namespace, name } = target;
  if (!got.ok) return { kind, namespace, name, outcome: "failed" as const, reason: got.reason };
  let refused: TargetOutcome | undefined;
  for (const filter of own) {
    const verdict = filtered(target, got.value, filter!);
    if (!("outcome" in verdict)) return annotate(verdict, deps);
    if (refused?.outcome !== "failed") refused = verdict;
  }
  return refused!;
}

type Resolved = Extract<ReturnType<typeof resolveRef>, { ok: true }>;

const labelsMatch = (labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>>) => {
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
};

/** Whether a resolved resource selects the record: its kind, its namespace (or every one), its name or labels. */
function selects(ref: Resolved, record: SourceRecord): boolean {
  if (record.kind !== ref.kind) return false;
  if (ref.namespace !== EVERY_NAMESPACE && record.namespace !== ref.namespace) return false;
  return ref.name !== undefined ? record.name === ref.name : labelsMatch(record.labels, ref.matchLabels);
}

/** The objects the resources select, each counted once, walking each kind's records once. */
function countSelected(index: SourceIndex, selecting: readonly { ref: Resolved }[]): number {
  let total = 0;
  for (const kind of new Set(selecting.map(({ ref }) => ref.kind))) {
    const refs = selecting.filter(({ ref }) => ref.kind === kind).map(({ ref }) => ref);
    const namespaces = new Set(refs.map((r) => r.namespace));
    // One namespace's records, or (a resource names every namespace, or several) the kind's.
    const only = namespaces.size === 1 && !namespaces.has(EVERY_NAMESPACE) ? [...namespaces][0] : undefined;
    if (refs.length === 1 && refs[0]!.name !== undefined && only !== undefined) {
      total += index.get(kind, only, refs[0]!.name) ? 1 : 0;
      continue;
    }
    // A resource that selects every object of its kind there (`name: "*"`, `matchLabels: {}`): a count.
    const everything = refs.find((r) => r.name === undefined && Object.keys(r.matchLabels).length === 0);
    if (everything && (everything.namespace === EVERY_NAMESPACE || only !== undefined)) {
      total += index.count(kind, everything.namespace === EVERY_NAMESPACE ? undefined : everything.namespace);
      continue;
    }
    index.forEach(kind, only, (record) => {
      for (const ref of refs) {
        if (selects(ref, record)) {
          total++;
          return;
        }
      }
    });
  }
  return total;
}
