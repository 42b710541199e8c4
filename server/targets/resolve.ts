/**
 * @module server/targets/resolve
 * Turns a Receiver's `resources[]` entry into a concrete reference, with Flux's defaults and
 * refusals (notification-controller receiver_handlers.go requestReconciliation), and fluxhook's
 * `namespace: "*"` (every namespace; refused under --no-cross-namespace-refs).
 */
import type { ResourceRef } from "../api/receiver";

/** apiVersion used when a resource omits it; other kinds must name theirs (as in Flux 1.9). */
export const DEFAULT_API_VERSIONS: Readonly<Record<string, string>> = {
  Bucket: "source.toolkit.fluxcd.io/v1",
  GitRepository: "source.toolkit.fluxcd.io/v1",
  HelmChart: "source.toolkit.fluxcd.io/v1",
  HelmRepository: "source.toolkit.fluxcd.io/v1",
  OCIRepository: "source.toolkit.fluxcd.io/v1",
  ImageRepository: "image.toolkit.fluxcd.io/v1",
  ArtifactGenerator: "source.extensions.fluxcd.io/v1beta1",
};

/** `resources[].namespace: "*"`: the entry's kind and name in every namespace (upstream PR #1315's proposal). */
export const EVERY_NAMESPACE = "*";

export type ResolvedRef =
  | {
      ok: true;
      apiVersion: string;
      kind: string;
      /** A namespace, or EVERY_NAMESPACE. */
      namespace: string;
      /** A name, or undefined for `*` (then matchLabels selects). */
      name: string | undefined;
      matchLabels: Readonly<Record<string, string>>;
    }
  | { ok: false; reason: string };

export function resolveRef(
  resource: ResourceRef,
  receiverNamespace: string,
  noCrossNamespaceRefs: boolean,
): ResolvedRef {
  const namespace = resource.namespace ?? receiverNamespace;
  // receivers/decide.ts makes such a Receiver not Ready; refused here too, whatever serves it.
  if (noCrossNamespaceRefs && namespace === EVERY_NAMESPACE) {
    return {
      ok: false,
      reason: `${resource.kind} */${resource.name}: namespace "*" names every namespace, and cross-namespace references are not allowed`,
    };
  }
  if (noCrossNamespaceRefs && namespace !== receiverNamespace) {
    return {
      ok: false,
      reason: `${resource.kind} ${namespace}/${resource.name}: cross-namespace references are not allowed`,
    };
  }
  const apiVersion = resource.apiVersion ?? DEFAULT_API_VERSIONS[resource.kind];
  if (!apiVersion)
    return { ok: false, reason: `apiVersion must be specified for kind ${JSON.stringify(resource.kind)}` };
  if (resource.name !== "*") {
    // matchLabels only means something with "*"; Flux ignores it on a named resource.
    return { ok: true, apiVersion, kind: resource.kind, namespace, name: resource.name, matchLabels: {} };
  }
  // Only an absent (or null) matchLabels is refused: `{}` selects every object of the kind in the
  // namespace, as in Flux (a non-nil empty map is an empty selector).
  if (!resource.matchLabels) {
    return {
      ok: false,
      reason: `${resource.kind} ${namespace}/*: matchLabels field not set when using wildcard '*' as name`,
    };
  }
  return { ok: true, apiVersion, kind: resource.kind, namespace, name: undefined, matchLabels: resource.matchLabels };
}
