/**
 * @module discovery
 * The discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`), built from
 * the registry. client-node's `KubernetesObjectApi` reads `/apis/{g}/{v}` (or `/api/v1`) to map a
 * kind to its plural and scope, and takes the first entry whose `kind` matches, so the main
 * resource must come before its `/status` entry, as in the real server.
 */
import type { KindInfo, KindRegistry } from "./registry";

const MAIN_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const STATUS_VERBS = ["get", "patch", "update"];

function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** `GET /api`. */
export function apiVersions(serverAddress: string) {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(registry: KindRegistry, group: string) {
  const versions = registry.versionsOf(group).map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

/** `GET /apis`. */
export function apiGroupList(registry: KindRegistry) {
  return { kind: "APIGroupList", apiVersion: "v1", groups: registry.groups().map((g) => apiGroup(registry, g)) };
}

/** `GET /apis/{group}`, or undefined for an unknown group. */
export function apiGroupDocument(registry: KindRegistry, group: string) {
  if (registry.versionsOf(group).length === 0) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(registry, group) };
}

function resourceEntries(info: KindInfo) {
  const main = {
    name: info.plural,
    singularName: info.singular,
    namespaced: info.namespaced,
    kind: info.kind,
    verbs: MAIN_VERBS,
    ...(info.shortNames.length > 0 ? { shortNames: [...info.shortNames] } : {}),
  };
  if (!info.statusSubresource) return [main];
  const status = {
    name: `${info.plural}/status`,
    singularName: "",
    namespaced: info.namespaced,
    kind: info.kind,
    verbs: STATUS_VERBS,
  };
  return [main, status];
}

/** `GET /api/v1` or `/apis/{group}/{version}`, or undefined when nothing is served there. */
export function apiResourceList(registry: KindRegistry, group: string, version: string) {
  const kinds = registry.kindsIn(group, version);
  if (kinds.length === 0 && !(group === "" && version === "v1")) return undefined;
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: groupVersion(group, version),
    resources: kinds.flatMap(resourceEntries),
  };
}

/** `GET /version`: enough for client-node's `VersionApi` and for kubectl. */
export function versionInfo() {
  return {
    major: "1",
    minor: "33",
    gitVersion: "v1.33.0-fluxhook-test",
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2025-01-01T00:00:00Z",
    goVersion: "go1.24.0",
    compiler: "gc",
    platform: "linux/amd64",
  };
}
