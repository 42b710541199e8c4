/**
 * @module test/deploy/rbac
 * The RBAC side of the deployment test: turn the requests the server sent to the API server into
 * the attributes Kubernetes authorizes (verb, API group, resource, subresource, namespace, name),
 * and evaluate RBAC objects against them the way the API server does.
 *
 * `recordApiCalls` runs the real server (startFluxhook through test/support/stack.ts) against the
 * API test server and returns every distinct access it needed, so the RBAC in deploy/ is checked
 * against what the code does, not against a list kept by hand.
 */
import type { RequestRecord } from "../kube";
import type { ServerConfig } from "../../server/config";
import { startStack, waitFor, type Stack } from "../support/stack";
import type { Manifest } from "./kustomize";

/** What RBAC authorizes (k8s.io/apiserver RequestInfo). */
export type Access =
  | {
      readonly type: "resource";
      readonly verb: string;
      readonly group: string;
      readonly resource: string;
      readonly subresource?: string;
      /** Undefined for cluster-wide requests (all namespaces, or cluster-scoped kinds). */
      readonly namespace?: string;
      readonly name?: string;
    }
  | { readonly type: "nonResource"; readonly verb: string; readonly path: string };

const VERB_BY_METHOD: Record<string, string> = {
  POST: "create",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
  GET: "get",
  HEAD: "get",
};

/**
 * Maps one request to its authorization attributes, as the API server's RequestInfoFactory does:
 * `/api/v1/...` and `/apis/<group>/<version>/...` are resource requests; the discovery documents
 * above them (`/api`, `/apis/<group>/<version>`, `/version`, ...) are non-resource requests.
 * GET on a collection is `list`, or `watch` with `?watch=true` (or the legacy `/watch/` segment);
 * DELETE on a collection is `deletecollection`.
 */
export function requestAccess(method: string, path: string, query: Readonly<Record<string, string>> = {}): Access {
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map(decodeURIComponent);
  const verb = VERB_BY_METHOD[method.toUpperCase()] ?? method.toLowerCase();
  let rest: string[];
  let group: string;
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1]!;
    rest = parts.slice(3);
  } else {
    return { type: "nonResource", verb, path };
  }

  let watch = query.watch === "true" || query.watch === "1";
  if (rest[0] === "watch") {
    watch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length > 1) {
    namespace = rest[1];
    // `/namespaces/<ns>` (and its status/finalize) is the Namespace object itself.
    if (rest.length > 2 && rest[2] !== "status" && rest[2] !== "finalize") rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest as [string, string | undefined, string | undefined];

  let resolvedVerb = verb;
  if (name === undefined) {
    if (verb === "get") resolvedVerb = watch ? "watch" : "list";
    if (verb === "delete") resolvedVerb = "deletecollection";
  } else if (verb === "get" && watch) {
    resolvedVerb = "watch";
  }
  return {
    type: "resource",
    verb: resolvedVerb,
    group,
    resource,
    ...(subresource !== undefined ? { subresource } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
  };
}

/** A short, stable description, e.g. `patch notification.toolkit.fluxcd.io/receivers/status (ns apps)`. */
export function describeAccess(a: Access): string {
  if (a.type === "nonResource") return `${a.verb} ${a.path}`;
  const resource = `${a.group || "core"}/${a.resource}${a.subresource ? `/${a.subresource}` : ""}`;
  return `${a.verb} ${resource}${a.namespace ? ` (ns ${a.namespace})` : " (cluster-wide)"}`;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/**
 * Granted to every authenticated user by the API server's default ClusterRoles
 * (`system:discovery`, `system:basic-user`, `system:public-info-viewer`): the discovery documents
 * that client-node reads to map a kind to its resource.
 */
export const DEFAULT_AUTHENTICATED_RULES: readonly PolicyRule[] = [
  {
    verbs: ["get"],
    nonResourceURLs: [
      "/api",
      "/api/*",
      "/apis",
      "/apis/*",
      "/healthz",
      "/livez",
      "/readyz",
      "/openapi",
      "/openapi/*",
      "/version",
      "/version/",
    ],
  },
];

const has = (list: readonly string[] | undefined, value: string) =>
  !!list && (list.includes(value) || list.includes("*"));

/** Whether one rule grants the access (rbac/v1 RuleAllows). */
export function ruleAllows(rule: PolicyRule, a: Access): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (a.type === "nonResource") {
    return (rule.nonResourceURLs ?? []).some(
      (u) => u === "*" || u === a.path || (u.endsWith("*") && a.path.startsWith(u.slice(0, -1))),
    );
  }
  if (!has(rule.apiGroups, a.group)) return false;
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resources = rule.resources ?? [];
  const resourceMatch =
    resources.includes("*") ||
    resources.includes(combined) ||
    (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  if (!resourceMatch) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0)
    return a.name !== undefined && rule.resourceNames.includes(a.name);
  return true;
}

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

const boundTo = (binding: Manifest, sa: ServiceAccountRef, bindingNamespace: string | undefined) =>
  ((binding.subjects as { kind: string; name: string; namespace?: string }[] | undefined) ?? []).some(
    (s) => s.kind === "ServiceAccount" && s.name === sa.name && (s.namespace ?? bindingNamespace) === sa.namespace,
  );

/**
 * The rules that apply to the service account for a request in `namespace` (undefined: a
 * cluster-wide request): ClusterRoleBindings everywhere, RoleBindings only in their namespace.
 */
export function rulesFor(
  objects: readonly Manifest[],
  sa: ServiceAccountRef,
  namespace: string | undefined,
): PolicyRule[] {
  const rules: PolicyRule[] = [...DEFAULT_AUTHENTICATED_RULES];
  const role = (kind: string, name: string, ns: string | undefined) =>
    objects.find(
      (o) => o.kind === kind && o.metadata.name === name && (kind === "ClusterRole" || o.metadata.namespace === ns),
    );
  for (const b of objects) {
    let scope: string | undefined;
    if (b.kind === "ClusterRoleBinding") scope = undefined;
    else if (b.kind === "RoleBinding" && namespace !== undefined && b.metadata.namespace === namespace)
      scope = namespace;
    else continue;
    if (!boundTo(b, sa, b.metadata.namespace)) continue;
    const ref = b.roleRef as { kind: string; name: string };
    const target = role(ref.kind, ref.name, scope);
    if (target) rules.push(...((target.rules as PolicyRule[] | undefined) ?? []));
  }
  return rules;
}

/** Whether the RBAC objects let the service account make this request. */
export function authorizes(objects: readonly Manifest[], sa: ServiceAccountRef, a: Access): boolean {
  const namespace = a.type === "resource" ? a.namespace : undefined;
  return rulesFor(objects, sa, namespace).some((r) => ruleAllows(r, a));
}

/** Every (group, resource[/subresource], verb) a rule list grants, with `*` kept as written. */
export function grants(rules: readonly PolicyRule[]): string[] {
  const out: string[] = [];
  for (const r of rules) {
    for (const g of r.apiGroups ?? [])
      for (const res of r.resources ?? []) for (const v of r.verbs) out.push(`${v} ${g || "core"}/${res}`);
    for (const u of r.nonResourceURLs ?? []) for (const v of r.verbs) out.push(`${v} ${u}`);
  }
  return out;
}

/** Drops exact duplicates and sorts, for stable assertions and messages. */
export function distinctAccesses(accesses: readonly Access[]): Access[] {
  const seen = new Map<string, Access>();
  for (const a of accesses) seen.set(JSON.stringify(a, Object.keys(a).sort()), a);
  return [...seen.values()].sort((x, y) => describeAccess(x).localeCompare(describeAccess(y)));
}

/**
 * Runs fluxhook (in process, the real Kubernetes client) against the API test server with
 * `config`, lets `workload` drive it, stops it (so shutdown calls, such as releasing a Lease, are
 * recorded too), and returns every distinct access it needed.
 */
export async function recordApiCalls(
  config: Partial<ServerConfig>,
  workload: (stack: Stack) => Promise<void>,
): Promise<{ accesses: Access[]; requests: RequestRecord[] }> {
  await using stack = await startStack(config);
  await workload(stack);
  await stack.fluxhook.stop();
  // Requests still in flight when the server stopped are answered before they are read.
  await waitFor("requests in flight to finish", () => stack.api.requests.every((r) => r.status !== 0 || r.watch));
  const requests = [...stack.api.requests];
  return { accesses: distinctAccesses(requests.map((r) => requestAccess(r.method, r.path, r.query))), requests };
}
