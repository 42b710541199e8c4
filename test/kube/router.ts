/**
 * @module router
 * URL path → what it names. Mirrors the API server's layout:
 *   /api/v1/{plural}[/{name}[/status]]                      cluster-scoped, or all namespaces
 *   /api/v1/namespaces/{ns}/{plural}[/{name}[/status]]      namespaced
 *   /apis/{group}/{version}/…                               the same for named groups
 * plus the legacy `/watch/` segment and the discovery documents.
 */
import { badRequest, pathNotFound } from "./errors";
import type { KindInfo, KindRegistry } from "./registry";

export type Route =
  | { type: "root" | "version" | "health" | "apiVersions" | "apiGroupList" }
  | { type: "apiGroup"; group: string }
  | { type: "resourceList"; group: string; version: string }
  /** `namespace` undefined: a cluster-scoped collection, or all namespaces of a namespaced kind. */
  | { type: "collection"; info: KindInfo; namespace?: string; legacyWatch: boolean }
  | { type: "object"; info: KindInfo; namespace?: string; name: string; subresource?: "status"; legacyWatch: boolean };

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`malformed URL path segment "${segment}"`);
  }
}

/** Resolve a path; throws a 404 KubeApiError for anything the server does not serve. */
export function route(pathname: string, registry: KindRegistry): Route {
  const parts = pathname
    .split("/")
    .filter((p) => p !== "")
    .map(decode);
  const [head, ...rest] = parts;
  if (parts.length === 0) return { type: "root" };
  if (parts.length === 1 && head === "version") return { type: "version" };
  if (parts.length === 1 && (head === "healthz" || head === "readyz" || head === "livez")) return { type: "health" };
  if (head === "api") {
    if (rest.length === 0) return { type: "apiVersions" };
    if (rest[0] !== "v1") throw pathNotFound();
    if (rest.length === 1) return { type: "resourceList", group: "", version: "v1" };
    return resourceRoute(registry, "", "v1", rest.slice(1));
  }
  if (head === "apis") {
    if (rest.length === 0) return { type: "apiGroupList" };
    const [group, version] = rest as [string, string | undefined];
    if (version === undefined) return { type: "apiGroup", group };
    if (rest.length === 2) return { type: "resourceList", group, version };
    return resourceRoute(registry, group, version, rest.slice(2));
  }
  throw pathNotFound();
}

function resourceRoute(registry: KindRegistry, group: string, version: string, segments: string[]): Route {
  let parts = segments;
  const legacyWatch = parts[0] === "watch";
  if (legacyWatch) parts = parts.slice(1);
  let namespace: string | undefined;
  const namespaced =
    parts[0] === "namespaces" && parts.length >= 3 && registry.byResource(group, version, parts[2]!)?.namespaced;
  if (namespaced) {
    namespace = parts[1]!;
    parts = parts.slice(2);
  }
  const [plural, name, subresource, ...extra] = parts as [string, string?, string?, ...string[]];
  const info = registry.byResource(group, version, plural);
  if (!info || extra.length > 0) throw pathNotFound();
  if (info.namespaced && name !== undefined && namespace === undefined) throw pathNotFound();
  if (name === undefined) return { type: "collection", info, namespace, legacyWatch };
  if (subresource !== undefined && !(subresource === "status" && info.statusSubresource)) throw pathNotFound();
  if (subresource === "status") return { type: "object", info, namespace, name, subresource, legacyWatch };
  return { type: "object", info, namespace, name, legacyWatch };
}
