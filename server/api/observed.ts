/**
 * @module server/api/observed
 * What a status query may see of a Flux object, and how it is read from the object: a few status
 * fields, the labels (to check a selector) and the requestedAt annotation, and, for a consumer, the
 * source it names. The projection is made as soon as the object is read (kube/client.ts), so a
 * spec, an inline patch or values never travel further than that function.
 *
 * Field names are Flux's: source-controller's `status.artifact.revision`, every controller's
 * `status.lastHandledReconcileAt` and Ready condition, kustomize-controller's
 * `status.lastAppliedRevision` and `lastAttemptedRevision`, helm-controller's `lastAttemptedRevision`
 * and the chart version of the latest release in `status.history`.
 */
import { REQUESTED_AT_ANNOTATION } from "./annotations";

/** A Flux condition, reduced to what a status answer shows. */
export interface ObservedCondition {
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
}

/** The object a consumer's spec names as its source (Kustomization `sourceRef`, HelmRelease `chart.spec.sourceRef` or `chartRef`). */
export interface SourceRef {
  readonly kind: string;
  readonly name: string;
  /** Undefined: the consumer's own namespace. */
  readonly namespace?: string;
}

export interface ObservedObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The object's current `reconcile.fluxcd.io/requestedAt`. */
  readonly requestedAt?: string;
  readonly lastHandledReconcileAt?: string;
  readonly ready?: ObservedCondition;
  readonly artifactRevision?: string;
  readonly lastAppliedRevision?: string;
  readonly lastAttemptedRevision?: string;
  /** Consumers only. */
  readonly sourceRefs: readonly SourceRef[];
}

/** The kinds that consume a source, with the apiVersion read (Flux 2.x's GA versions). */
export const CONSUMER_KINDS = [
  { apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization" },
  { apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease" },
] as const;

/** Kinds that produce an artifact other objects consume (source-controller and source-watcher). */
export const SOURCE_KINDS: ReadonlySet<string> = new Set([
  "GitRepository",
  "OCIRepository",
  "Bucket",
  "HelmChart",
  "HelmRepository",
  "ExternalArtifact",
  "ArtifactGenerator",
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function readyCondition(status: Record<string, unknown>): ObservedCondition | undefined {
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const ready = conditions.find((c) => isRecord(c) && c.type === "Ready") as Record<string, unknown> | undefined;
  if (!ready) return undefined;
  return {
    status: ready.status === "True" || ready.status === "False" ? ready.status : "Unknown",
    reason: str(ready.reason) ?? "",
    message: str(ready.message) ?? "",
  };
}

function sourceRef(v: unknown): SourceRef[] {
  if (!isRecord(v)) return [];
  const kind = str(v.kind);
  const name = str(v.name);
  if (!kind || !name) return [];
  const namespace = str(v.namespace);
  return [{ kind, name, ...(namespace ? { namespace } : {}) }];
}

function sourceRefsOf(kind: string, spec: unknown): SourceRef[] {
  if (!isRecord(spec)) return [];
  if (kind === "Kustomization") return sourceRef(spec.sourceRef);
  if (kind === "HelmRelease") {
    const chart = isRecord(spec.chart) && isRecord(spec.chart.spec) ? spec.chart.spec.sourceRef : undefined;
    return [...sourceRef(chart), ...sourceRef(spec.chartRef)];
  }
  return [];
}

/** Projects an object read from the API server; `fallback` names it when the body does not. */
export function observe(obj: unknown, fallback: { kind: string; namespace: string; name: string }): ObservedObject {
  const o = isRecord(obj) ? obj : {};
  const metadata = isRecord(o.metadata) ? o.metadata : {};
  const status = isRecord(o.status) ? o.status : {};
  const labels = isRecord(metadata.labels)
    ? Object.fromEntries(Object.entries(metadata.labels).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const kind = str(o.kind) ?? fallback.kind;
  const artifact = isRecord(status.artifact) ? status.artifact : {};
  // helm-controller keeps no lastAppliedRevision: the latest release in its history is what was applied.
  const latest = Array.isArray(status.history) && isRecord(status.history[0]) ? status.history[0] : {};
  const fields = {
    requestedAt: str(annotations[REQUESTED_AT_ANNOTATION]),
    lastHandledReconcileAt: str(status.lastHandledReconcileAt),
    ready: readyCondition(status),
    artifactRevision: str(artifact.revision),
    lastAppliedRevision: kind === "HelmRelease" ? str(latest.chartVersion) : str(status.lastAppliedRevision),
    lastAttemptedRevision: str(status.lastAttemptedRevision),
  };
  return {
    kind,
    namespace: str(metadata.namespace) ?? fallback.namespace,
    name: str(metadata.name) ?? fallback.name,
    labels,
    ...(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<typeof fields>),
    sourceRefs: sourceRefsOf(kind, o.spec),
  };
}
