/**
 * @module server/api/sources
 * The Flux sources a routing Receiver can match, and what routing keeps of each: its name, its
 * labels (for `matchLabels`), the key of the repository it follows (api/repository.ts) and, for a
 * GitRepository, the ref it follows. Nothing else of an object is kept (server/targets/source-index.ts).
 */
import {
  DEFAULT_GIT_BRANCH,
  gitRepositoryKey,
  imageRepositoryKey,
  type GitFollow,
  type RepositoryEvent,
} from "./repository";

export interface RoutedKind {
  readonly kind: string;
  /** The version watched: Flux 2.7's (source-controller v1, image-reflector-controller v1). */
  readonly apiVersion: string;
  /** The events it can follow: Git pushes, or image and OCI artifact pushes. */
  readonly family: RepositoryEvent["kind"];
}

/** The kinds routing selects, in the order the README lists them. */
export const ROUTED_KINDS: readonly RoutedKind[] = [
  { kind: "GitRepository", apiVersion: "source.toolkit.fluxcd.io/v1", family: "git" },
  { kind: "OCIRepository", apiVersion: "source.toolkit.fluxcd.io/v1", family: "image" },
  { kind: "ImageRepository", apiVersion: "image.toolkit.fluxcd.io/v1", family: "image" },
  { kind: "HelmRepository", apiVersion: "source.toolkit.fluxcd.io/v1", family: "image" },
];

export const routedKind = (kind: string): RoutedKind | undefined => ROUTED_KINDS.find((k) => k.kind === kind);

/** What routing keeps of one source. */
export interface SourceRecord {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The key of the repository it follows; undefined when none an event names (an https HelmRepository, a URL that does not parse). */
  readonly repository: string | undefined;
  /** A GitRepository's ref. */
  readonly follow?: GitFollow;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function labelsOf(meta: Json): Record<string, string> {
  if (!isObject(meta.labels)) return {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta.labels)) if (typeof v === "string") labels[k] = v;
  return labels;
}

/** `spec.ref` of a GitRepository, in source-controller's precedence. */
export function gitFollow(ref: unknown): GitFollow {
  const r = isObject(ref) ? ref : {};
  if (text(r.commit)) return { kind: "commit" };
  const name = text(r.name);
  if (name) return { kind: "name", name };
  const tag = text(r.tag);
  if (tag) return { kind: "tag", tag };
  if (text(r.semver)) return { kind: "semver" };
  return { kind: "branch", branch: text(r.branch) ?? DEFAULT_GIT_BRANCH };
}

/** What routing keeps of a source object as the API server sends it; undefined for what is not one. */
export function readSource(kind: string, obj: unknown): SourceRecord | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const namespace = text(obj.metadata.namespace);
  const name = text(obj.metadata.name);
  if (!namespace || !name) return undefined;
  const spec = isObject(obj.spec) ? obj.spec : {};
  const base = { kind, namespace, name, labels: labelsOf(obj.metadata) };
  switch (kind) {
    case "GitRepository": {
      const url = text(spec.url);
      return { ...base, repository: url && gitRepositoryKey(url), follow: gitFollow(spec.ref) };
    }
    case "OCIRepository": {
      const url = text(spec.url);
      return { ...base, repository: url && imageRepositoryKey(url) };
    }
    case "ImageRepository": {
      const image = text(spec.image);
      return { ...base, repository: image && imageRepositoryKey(image) };
    }
    case "HelmRepository": {
      // Only an OCI HelmRepository names a registry repository; an https one serves an index.yaml.
      const url = text(spec.url);
      return { ...base, repository: spec.type === "oci" && url ? imageRepositoryKey(url) : undefined };
    }
    default:
      return undefined;
  }
}
