/**
 * deploy/: the two installs (base/, the recommended one beside Flux's notification-controller, and
 * standalone/) and the examples, rendered as `kubectl apply -k` would see them.
 *
 * - The base's objects fit together: selectors, ports, probes and the flags' addresses, the
 *   security context, the namespace.
 * - Beside Flux, fluxhook writes nothing to Receivers: its flags turn status updates off, and its
 *   RBAC could not write them anyway; standalone/ is the base plus exactly those writes and the CRD.
 * - Each install's RBAC grants every request the server makes with that install's flags. The list of requests is not written here: the
 *   real server runs with the Deployment's own flags against the API test server through a
 *   workload (Receivers becoming Ready, deliveries to every target kind by name and by labels, a
 *   rejected delivery, shutdown), and each request it sent is mapped to what RBAC authorizes.
 *   A call added to the server is covered as soon as a workload below makes it.
 * - The ClusterRoles grant nothing outside their allowlists.
 * - Every example renders and holds well-formed objects that point at the base's names.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseConfig, type ServerConfig } from "../../server/config";
import { KUBE_CALL_TIMEOUT_MS, SHUTDOWN_GRACE_MS } from "../../server/limits";
import { RECEIVER_API_VERSION, readReceiver } from "../../server/api/receiver";
import { ROUTED_KINDS } from "../../server/api/sources";
import { annotatedTargets, encodeStatusQuery, statusQueryKey, statusQueryPath, webhookPath } from "../../shared";
import { BUILTIN_KINDS } from "../kube";
import { githubExample } from "../support/payloads";
import { waitFor, type Stack } from "../support/stack";
import {
  DEPLOY,
  KUBECTL,
  kubectlKustomize,
  loadKustomization,
  only,
  parseYamlDocuments,
  render,
  type Manifest,
} from "./kustomize";
import {
  authorizes,
  describeAccess,
  grants,
  recordApiCalls,
  requestAccess,
  type Access,
  type PolicyRule,
} from "./rbac";
import { GIT } from "../support/kinds";
import { githubHeaders, signature } from "../support/signer";

const BASE = join(DEPLOY, "base");
const STANDALONE = join(DEPLOY, "standalone");
const EXAMPLES = join(DEPLOY, "examples");
const { objects: base, via } = render(BASE);
const standalone = render(STANDALONE).objects;
const deployment = only(base, "Deployment", "fluxhook");
const pod = deployment.spec.template;
const container = pod.spec.containers[0] as Record<string, any>;
const NAMESPACE = deployment.metadata.namespace as string;
const SERVICE_ACCOUNT = { namespace: NAMESPACE, name: pod.spec.serviceAccountName as string };
const argsOf = (objects: readonly Manifest[]) =>
  only(objects, "Deployment", "fluxhook").spec.template.spec.containers[0].args as string[];

/** The flags as an install's Deployment passes them (the base's by default), with the pod's environment. */
function deployedConfig(extraArgs: readonly string[] = [], objects: readonly Manifest[] = base): ServerConfig {
  const parsed = parseConfig([...argsOf(objects), ...extraArgs], { RUNTIME_NAMESPACE: NAMESPACE });
  if (parsed.ok !== true)
    throw new Error(`the Deployment's args do not parse: ${parsed.ok === false ? parsed.error : "help"}`);
  return parsed.config;
}

const portNamed = (name: string) =>
  (container.ports as { name: string; containerPort: number }[]).find((p) => p.name === name)?.containerPort;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Kinds a Receiver may target: the CRD's enum, as the API test server registers them. */
const TARGET_KINDS = BUILTIN_KINDS.filter((k) => k.group.endsWith(".fluxcd.io") && k.kind !== "Receiver").map((k) => ({
  apiVersion: `${k.group}/${k.version}`,
  group: k.group,
  kind: k.kind,
  plural: k.plural,
}));

describe(`deploy/base (${via})`, () => {
  test("every namespaced object is in flux-system", () => {
    expect(NAMESPACE).toBe("flux-system");
    const clusterScoped = new Set(["ClusterRole", "ClusterRoleBinding"]);
    expect(
      base
        .filter((o) => !clusterScoped.has(o.kind) && o.metadata.namespace !== NAMESPACE)
        .map((o) => `${o.kind}/${o.metadata.name}`),
    ).toEqual([]);
  });

  test("the Deployment's selector, the Service's and the NetworkPolicies' select its pods", () => {
    const labels = pod.metadata.labels as Record<string, string>;
    expect(matches(deployment.spec.selector.matchLabels, labels)).toBe(true);
    const service = only(base, "Service", "fluxhook-receiver");
    expect(matches(service.spec.selector, labels)).toBe(true);
    for (const policy of base.filter((o) => o.kind === "NetworkPolicy"))
      expect(matches(policy.spec.podSelector.matchLabels, labels)).toBe(true);
    for (const spread of pod.spec.topologySpreadConstraints ?? [])
      expect(matches(spread.labelSelector.matchLabels, labels)).toBe(true);
  });

  test("two replicas, Flux's arguments with status updates off, RUNTIME_NAMESPACE from the downward API", () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(container.args).toEqual(
      expect.arrayContaining(["--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json"]),
    );
    expect(container.env).toContainEqual({
      name: "RUNTIME_NAMESPACE",
      valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
    });
    const config = deployedConfig();
    expect({
      watchNamespace: config.watchNamespace,
      logLevel: config.logLevel,
      logEncoding: config.logEncoding,
      statusUpdates: config.statusUpdates,
    }).toEqual({
      watchNamespace: undefined,
      logLevel: "info",
      logEncoding: "json",
      statusUpdates: false,
    });
  });

  test("container ports, probes, the Service and the flags' addresses agree (9292, 9440, 8080)", () => {
    const config = deployedConfig();
    expect({
      receiver: portNamed("http-webhook"),
      health: portNamed("healthz"),
      metrics: portNamed("http-prom"),
    }).toEqual({
      receiver: config.receiverAddr.port,
      health: config.healthAddr?.port,
      metrics: config.metricsAddr?.port,
    });
    expect([config.receiverAddr.port, config.healthAddr?.port, config.metricsAddr?.port]).toEqual([9292, 9440, 8080]);
    // Listening on every interface, so the kubelet and the Service reach them.
    for (const addr of [config.receiverAddr, config.healthAddr, config.metricsAddr]) expect(addr?.host).toBe("0.0.0.0");

    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "healthz" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "healthz" });
    expect(pod.metadata.annotations["prometheus.io/port"]).toBe(String(config.metricsAddr?.port));

    const service = only(base, "Service", "fluxhook-receiver");
    expect(service.spec.ports).toEqual([{ name: "http", port: 80, protocol: "TCP", targetPort: "http-webhook" }]);
    // Flux's own Service is `webhook-receiver`; ours must not replace it.
    expect(base.filter((o) => o.kind === "Service").map((s) => s.metadata.name)).not.toContain("webhook-receiver");
  });

  test("the NetworkPolicies admit webhooks on the receiver port from anywhere, and metrics from pods", () => {
    const rules = base
      .filter((o) => o.kind === "NetworkPolicy")
      .flatMap((p) => p.spec.ingress as { from?: unknown[]; ports: { port: number }[] }[]);
    const webhook = rules.find((r) => r.ports.some((p) => p.port === portNamed("http-webhook")));
    expect(webhook?.from).toBeUndefined();
    const metrics = rules.find((r) => r.ports.some((p) => p.port === portNamed("http-prom")));
    expect(metrics?.from).toEqual([{ namespaceSelector: {} }]);
  });

  test("the pod runs non-root, read-only, with no capabilities and the runtime's seccomp profile", () => {
    expect(pod.spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(Object.keys(container.resources.requests).sort()).toEqual(["cpu", "memory"]);
    expect(Object.keys(container.resources.limits).sort()).toEqual(["cpu", "memory"]);
  });

  test("the grace period covers draining deliveries and releasing the Lease", () => {
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(SHUTDOWN_GRACE_MS + KUBE_CALL_TIMEOUT_MS);
  });

  test("the pod uses the base's ServiceAccount, which every binding names", () => {
    only(base, "ServiceAccount", SERVICE_ACCOUNT.name);
    const bindings = base.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding");
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) {
      expect(b.subjects).toEqual([{ kind: "ServiceAccount", ...SERVICE_ACCOUNT }]);
      only(base, b.roleRef.kind, b.roleRef.name);
    }
  });

  test.if(KUBECTL !== null)("the YAML fallback renders what kubectl kustomize renders", () => {
    const key = (o: Manifest) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const sorted = (list: Manifest[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    for (const dir of [BASE, STANDALONE, ...exampleDirs()])
      expect(sorted(loadKustomization(dir))).toEqual(sorted(kubectlKustomize(dir)));
  });
});

// ---- RBAC ----

/**
 * Everything each ClusterRole may grant, and why. `verb group/resource` as in rbac.ts `grants`.
 * A grant outside these lists fails the test: add it here with its reason, or drop it.
 */
const CLUSTER_ROLE_ALLOWLIST: Readonly<Record<string, string>> = {
  "get notification.toolkit.fluxcd.io/receivers": "read Receivers (kubectl auth can-i, future single reads)",
  "list notification.toolkit.fluxcd.io/receivers": "the Receiver informer's list",
  "watch notification.toolkit.fluxcd.io/receivers": "the Receiver informer's watch",
  "get core/secrets": "read the token Secrets",
  "list core/secrets": "the Secret informer's list",
  "watch core/secrets": "the Secret informer's watch",
  "create core/events": "Events on Receivers",
  "patch core/events": "aggregated Events (count, lastTimestamp)",
  ...Object.fromEntries(
    TARGET_KINDS.flatMap((k) => [
      [`get ${k.group}/${k.plural}`, `a ${k.kind} named by a Receiver (filters, status queries)`],
      [
        `list ${k.group}/${k.plural}`,
        `${k.kind}s selected by matchLabels (name "*"); Kustomizations and HelmReleases: the consumers of a source a status query asks about`,
      ],
      [`patch ${k.group}/${k.plural}`, `the requestedAt annotation on a ${k.kind}`],
    ]),
  ),
  ...Object.fromEntries(
    ROUTED_KINDS.map((k) => {
      const kind = TARGET_KINDS.find((t) => t.kind === k.kind)!;
      return [
        `watch ${kind.group}/${kind.plural}`,
        `the sources a fluxhook.io/route-by Receiver can match, watched in every namespace`,
      ];
    }),
  ),
};

/** The standalone install's writes to Receivers (components/receiver-status), Flux's own beside Flux. */
const RECEIVER_STATUS_ALLOWLIST: Readonly<Record<string, string>> = {
  "patch notification.toolkit.fluxcd.io/receivers": "add and remove Flux's finalizer (--status-updates)",
  "patch notification.toolkit.fluxcd.io/receivers/status": "Ready condition and webhookPath (--status-updates)",
};

/** Each install's ClusterRoles and what each may grant. */
const CLUSTER_ROLES: Readonly<
  Record<"base" | "standalone", Readonly<Record<string, Readonly<Record<string, string>>>>>
> = {
  base: { fluxhook: CLUSTER_ROLE_ALLOWLIST },
  standalone: { fluxhook: CLUSTER_ROLE_ALLOWLIST, "fluxhook-receiver-status": RECEIVER_STATUS_ALLOWLIST },
};

/** Everything the namespaced Role (leader election) may grant. */
const ROLE_ALLOWLIST = new Set([
  "get coordination.k8s.io/leases",
  "create coordination.k8s.io/leases",
  "update coordination.k8s.io/leases",
]);

const TOKEN = "rbac-token";

/**
 * What a cluster asks of fluxhook: a Receiver naming one target of every kind plus a label
 * selection, becoming Ready (status), two accepted deliveries (annotations, Events) and a rejected
 * one (a Warning Event). Shutdown (Lease release) follows in recordApiCalls.
 */
async function clusterWorkload(stack: Stack, namespace: string, statusUpdates: boolean): Promise<void> {
  const named = TARGET_KINDS.map((k) => ({ apiVersion: k.apiVersion, kind: k.kind, name: `named-${k.plural}` }));
  const labelled = ["labelled-a", "labelled-b"].map((name) => ({
    apiVersion: GIT,
    kind: "GitRepository",
    name,
    labels: { team: "web" },
  }));
  stack.makeReceiver(namespace, "every-kind", {
    type: "github",
    events: ["push"],
    token: TOKEN,
    secretName: "webhook-token",
    targets: [...named, ...labelled],
    spec: {
      // A filter makes the server read each named target (get) to evaluate it.
      resourceFilter: 'res.metadata.name != "excluded"',
      resources: [...named, { apiVersion: GIT, kind: "GitRepository", name: "*", matchLabels: { team: "web" } }],
    },
  });
  const path = webhookPath(TOKEN, "every-kind", namespace);
  // With status updates the Receiver's status says so; without (beside Flux) it is served as soon
  // as its Secret is indexed.
  if (statusUpdates) expect(await stack.readyPath(namespace, "every-kind")).toBe(path);
  const body = githubExample("push");
  const headers = (key: string) => githubHeaders(key, body, { delivery: crypto.randomUUID() });
  const deliver = () => stack.post(path, { headers: headers(TOKEN), body });
  const annotated = `${TARGET_KINDS.length + 2} of ${TARGET_KINDS.length + 2}`;
  const first = await waitFor("the Receiver to be served", async () => {
    const res = await deliver();
    return res.status === 404 || res.status === 503 ? undefined : res;
  });
  for (const res of [first, await deliver()])
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: expect.stringContaining(annotated),
    });
  for (const k of TARGET_KINDS)
    expect(stack.requestedAt(k.apiVersion, k.kind, namespace, `named-${k.plural}`)).toBeString();
  expect(stack.requestedAt(GIT, "GitRepository", namespace, "labelled-b")).toBeString();
  expect((await stack.post(path, { headers: headers("wrong"), body })).status).toBe(400);
  // A status query about a source: the source read, and the Kustomizations and HelmReleases of its
  // namespace listed to find those that use it.
  // A Receiver that routes by repository: the source index lists and watches every routed kind in
  // every namespace, and the push annotates the one GitRepository that follows the pushed repository.
  stack.target(GIT, "GitRepository", "elsewhere", "hello-world");
  stack.api.store.patch(GIT, "GitRepository", "elsewhere", "hello-world", {
    spec: { url: "https://github.com/Codertocat/Hello-World", ref: { branch: "master" } },
  });
  stack.api.store.create({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name: "organisation", namespace, annotations: { "fluxhook.io/route-by": "repository" } },
    spec: {
      type: "github",
      events: ["push"],
      secretRef: { name: "webhook-token" },
      resources: [{ kind: "GitRepository", name: "*", namespace: "*", matchLabels: {} }],
    },
  });
  const routed = await waitFor("the routing Receiver to be served", async () => {
    const res = await stack.post(webhookPath(TOKEN, "organisation", namespace), {
      headers: githubHeaders(TOKEN, githubExample("push", 4), { delivery: crypto.randomUUID() }),
      body: githubExample("push", 4),
    });
    return res.status === 404 || res.status === 503 ? undefined : res;
  });
  expect({ status: routed.status, reason: routed.body.reason }).toEqual({
    status: 200,
    reason: expect.stringMatching(/^1 of \d+ targets? follows Codertocat\/Hello-World@refs\/heads\/master$/),
  });
  const sources = annotatedTargets(first.body)!.filter((t) => t.kind === "GitRepository");
  const query = encodeStatusQuery({ targets: sources });
  const status = await stack.post(statusQueryPath(path)!, {
    headers: {
      "Content-Type": "application/json",
      "X-Hub-Signature-256": signature(statusQueryKey(TOKEN), query),
    },
    body: query,
  });
  expect({ status: status.status, handled: status.body.targets?.length }).toEqual({
    status: 200,
    handled: sources.length,
  });
  if (!statusUpdates) {
    // Beside Flux the Receiver stays as notification-controller leaves it: no finalizer or status
    // from fluxhook, and no reconcile Event (Flux's Succeeded/Failed); delivery Events are fluxhook's.
    const receiver = stack.api.store.get(RECEIVER_API_VERSION, "Receiver", namespace, "every-kind") as Manifest;
    expect({ finalizers: receiver.metadata.finalizers ?? [], status: receiver.status }).toEqual({
      finalizers: [],
      status: undefined,
    });
    const reasons = (stack.api.store.list("v1", "Event", namespace) as Manifest[]).map((e) => e.reason as string);
    expect(reasons.filter((r) => !DELIVERY_EVENT_REASONS.has(r))).toEqual([]);
  }
}

/** The Events fluxhook records for the deliveries it served (README, "Operating it"). */
const DELIVERY_EVENT_REASONS = new Set([
  "ReconcileRequested",
  "NothingAnnotated",
  "DuplicateDelivery",
  "DeliveryRejected",
  "ReceiverNotReady",
  "ReconcileFailed",
]);

/** Loopback port 0 for every listener: the tests run many servers at once. */
const LOOPBACK = {
  receiverAddr: { host: "127.0.0.1", port: 0 },
  healthAddr: { host: "127.0.0.1", port: 0 },
  metricsAddr: { host: "127.0.0.1", port: 0 },
};

/**
 * The scenarios whose requests the RBAC must grant. Each runs its install's Deployment flags (plus
 * `args`) against that install's RBAC; short leader-election timings make a Lease renewal likely
 * within the run.
 */
const SCENARIOS: { name: string; install: "base" | "standalone"; args: string[]; namespace: string }[] = [
  { name: "beside Flux (base), Receivers in another namespace", install: "base", args: [], namespace: "apps" },
  {
    name: "beside Flux (base), --watch-all-namespaces=false",
    install: "base",
    args: ["--watch-all-namespaces=false"],
    namespace: "flux-system",
  },
  { name: "standalone (status and finalizer)", install: "standalone", args: [], namespace: "apps" },
];
const INSTALLS = { base, standalone };
const FAST_LEADER_ELECTION = [
  "--leader-election-lease-duration=2s",
  "--leader-election-renew-deadline=1500ms",
  "--leader-election-retry-period=100ms",
];

describe("RBAC", () => {
  describe("requestAccess maps requests as the API server does", () => {
    test.each<[string, string, Record<string, string>, Access]>([
      ["GET", "/api/v1/secrets", {}, { type: "resource", verb: "list", group: "", resource: "secrets" }],
      [
        "GET",
        "/api/v1/secrets",
        { watch: "true" },
        { type: "resource", verb: "watch", group: "", resource: "secrets" },
      ],
      [
        "GET",
        "/api/v1/watch/namespaces/a/secrets",
        {},
        { type: "resource", verb: "watch", group: "", resource: "secrets", namespace: "a" },
      ],
      [
        "GET",
        "/api/v1/namespaces/a/secrets/t",
        {},
        { type: "resource", verb: "get", group: "", resource: "secrets", namespace: "a", name: "t" },
      ],
      [
        "PATCH",
        "/apis/notification.toolkit.fluxcd.io/v1/namespaces/a/receivers/r/status",
        {},
        {
          type: "resource",
          verb: "patch",
          group: "notification.toolkit.fluxcd.io",
          resource: "receivers",
          subresource: "status",
          namespace: "a",
          name: "r",
        },
      ],
      [
        "POST",
        "/api/v1/namespaces/a/events",
        {},
        { type: "resource", verb: "create", group: "", resource: "events", namespace: "a" },
      ],
      [
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
        {},
        {
          type: "resource",
          verb: "update",
          group: "coordination.k8s.io",
          resource: "leases",
          namespace: "a",
          name: "l",
        },
      ],
      [
        "DELETE",
        "/api/v1/namespaces/a/secrets",
        {},
        { type: "resource", verb: "deletecollection", group: "", resource: "secrets", namespace: "a" },
      ],
      [
        "GET",
        "/api/v1/namespaces/a",
        {},
        { type: "resource", verb: "get", group: "", resource: "namespaces", namespace: "a", name: "a" },
      ],
      [
        "GET",
        "/apis/source.toolkit.fluxcd.io/v1",
        {},
        { type: "nonResource", verb: "get", path: "/apis/source.toolkit.fluxcd.io/v1" },
      ],
      ["GET", "/version", {}, { type: "nonResource", verb: "get", path: "/version" }],
    ])("%s %s %o", (method, path, query, expected) => {
      expect(requestAccess(method, path, query)).toEqual(expected);
    });
  });

  describe.each(SCENARIOS)("grants every request fluxhook makes: $name", ({ install, args, namespace }) => {
    test("every request is authorized for the Deployment's ServiceAccount", async () => {
      const objects = INSTALLS[install];
      const config = { ...deployedConfig([...args, ...FAST_LEADER_ELECTION], objects), ...LOOPBACK };
      const { accesses } = await recordApiCalls(config, (stack) =>
        clusterWorkload(stack, namespace, config.statusUpdates),
      );
      const resourceCalls = [...new Set(accesses.filter((a) => a.type === "resource").map(describeAccess))];
      // The workload must have reached the calls the RBAC exists for.
      expect(resourceCalls).toEqual(
        expect.arrayContaining([
          `list notification.toolkit.fluxcd.io/receivers${args.includes("--watch-all-namespaces=false") ? ` (ns ${namespace})` : " (cluster-wide)"}`,
        ]),
      );
      expect(resourceCalls).toEqual(
        expect.arrayContaining([
          `get source.toolkit.fluxcd.io/gitrepositories (ns ${namespace})`,
          `list source.toolkit.fluxcd.io/gitrepositories (ns ${namespace})`,
          `patch source.toolkit.fluxcd.io/gitrepositories (ns ${namespace})`,
          `list kustomize.toolkit.fluxcd.io/kustomizations (ns ${namespace})`,
          `list helm.toolkit.fluxcd.io/helmreleases (ns ${namespace})`,
          // The routing index: every routed kind listed and watched in every namespace.
          ...ROUTED_KINDS.flatMap((k) => {
            const kind = TARGET_KINDS.find((t) => t.kind === k.kind)!;
            return [
              `list ${kind.group}/${kind.plural} (cluster-wide)`,
              `watch ${kind.group}/${kind.plural} (cluster-wide)`,
            ];
          }),
        ]),
      );
      const denied = accesses.filter((a) => !authorizes(objects, SERVICE_ACCOUNT, a)).map(describeAccess);
      expect(denied).toEqual([]);
      const receiverWrites = resourceCalls.filter(
        (c) => c.includes("notification.toolkit.fluxcd.io/receivers") && !/^(get|list|watch) /.test(c),
      );
      if (config.statusUpdates)
        expect(receiverWrites).toEqual(expect.arrayContaining([expect.stringContaining("receivers/status")]));
      else expect(receiverWrites).toEqual([]);
    });
  });

  test.each(["base", "standalone"] as const)(
    "%s: each ClusterRole grants exactly its allowlist, and no wildcard",
    (install) => {
      const clusterRoles = INSTALLS[install].filter((o) => o.kind === "ClusterRole");
      const allowlists = CLUSTER_ROLES[install];
      expect(clusterRoles.map((r) => r.metadata.name).sort()).toEqual(Object.keys(allowlists).sort());
      for (const role of clusterRoles) {
        const allowed = allowlists[role.metadata.name]!;
        const rules = role.rules as PolicyRule[];
        const granted = grants(rules);
        expect(granted.filter((g) => g.includes("*"))).toEqual([]);
        expect(rules.filter((r) => r.nonResourceURLs || r.resourceNames)).toEqual([]);
        // Every allowed grant is there, and nothing else: the allowlist is the ClusterRole's specification.
        expect({ role: role.metadata.name, granted: [...granted].sort() }).toEqual({
          role: role.metadata.name,
          granted: Object.keys(allowed).sort(),
        });
      }
    },
  );

  test("beside Flux (base), no rule lets fluxhook write a Receiver, its status or its finalizer", () => {
    const writes = base
      .filter((o) => o.kind === "ClusterRole" || o.kind === "Role")
      .flatMap((r) => grants(r.rules as PolicyRule[]))
      .filter((g) => g.includes("notification.toolkit.fluxcd.io/") && !/^(get|list|watch) /.test(g));
    expect(writes).toEqual([]);
  });

  test("the Lease rights are a Role in the Deployment's namespace, not cluster-wide", () => {
    const roles = base.filter((o) => o.kind === "Role");
    expect(roles.map((r) => r.metadata.namespace)).toEqual([NAMESPACE]);
    const granted = roles.flatMap((r) => grants(r.rules as PolicyRule[]));
    expect(granted.filter((g) => !ROLE_ALLOWLIST.has(g))).toEqual([]);
    expect(
      grants(only(base, "ClusterRole", "fluxhook").rules as PolicyRule[]).filter((g) => g.endsWith("/leases")),
    ).toEqual([]);
  });
});

// ---- examples ----

function exampleDirs(): string[] {
  return readdirSync(EXAMPLES)
    .map((d) => join(EXAMPLES, d))
    .filter((d) => statSync(d).isDirectory());
}

const exampleObjects = (dir: string) => render(dir).objects;

/** Every YAML file of an example, parsed on its own (kustomization.yaml aside). */
function exampleFiles(dir: string): [string, unknown[]][] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f))
    .map((f) => [f, parseYamlDocuments(readFileSync(join(dir, f), "utf8"), join(dir, f))]);
}

describe("deploy/examples", () => {
  test("there are the flux-install, exposure, github-receiver and private-registry examples", () => {
    expect(
      exampleDirs()
        .map((d) => d.slice(EXAMPLES.length + 1))
        .sort(),
    ).toEqual([
      "flux-install",
      "gateway-api",
      "github-receiver",
      "ingress",
      "internal-loadbalancer",
      "loadbalancer",
      "private-registry",
    ]);
  });

  test("private-registry is the base with the image's name changed, its tag kept", () => {
    const objects = exampleObjects(join(EXAMPLES, "private-registry"));
    const image = (list: readonly Manifest[]) =>
      only(list, "Deployment", "fluxhook").spec.template.spec.containers[0].image as string;
    const [, tag] = /^ghcr\.io\/fluxhook\/fluxhook:(.+)$/.exec(image(base))!;
    expect(image(objects)).toBe(`registry.corp.internal/fluxhook/fluxhook:${tag}`);
    const withoutImage = (list: readonly Manifest[]) =>
      list.map((o) => (o.kind === "Deployment" ? { ...o, spec: { ...o.spec, template: "…" } } : o));
    expect(withoutImage(objects)).toEqual(withoutImage(base));
  });

  describe.each(exampleDirs().map((d) => [d.slice(EXAMPLES.length + 1), d] as const))("%s", (_name, dir) => {
    test("each YAML file parses into objects with apiVersion, kind and metadata.name", () => {
      const files = exampleFiles(dir);
      for (const [file, docs] of files) {
        for (const o of docs as Manifest[])
          expect({ file, apiVersion: typeof o.apiVersion, kind: typeof o.kind, name: typeof o.metadata?.name }).toEqual(
            { file, apiVersion: "string", kind: "string", name: "string" },
          );
      }
    });

    test(`renders (${via})`, () => {
      const objects = exampleObjects(dir);
      expect(objects.length).toBeGreaterThan(0);
      for (const o of objects)
        expect([typeof o.apiVersion, typeof o.kind, typeof o.metadata.name]).toEqual(["string", "string", "string"]);
    });
  });

  test.each(["loadbalancer", "internal-loadbalancer"])(
    "the %s Service selects fluxhook's pods and targets the receiver port",
    (example) => {
      const service = only(exampleObjects(join(EXAMPLES, example)), "Service");
      expect(service.spec.type).toBe("LoadBalancer");
      expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);
      expect(service.spec.ports.map((p: { targetPort: string }) => portNamed(p.targetPort))).toEqual([9292]);
    },
  );

  test("the internal load balancer asks each cloud for a private address", () => {
    const annotations = only(exampleObjects(join(EXAMPLES, "internal-loadbalancer")), "Service").metadata.annotations;
    expect(annotations).toEqual({
      "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
      "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
      "networking.gke.io/load-balancer-type": "Internal",
      "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    });
  });

  test("the Ingress example states fluxhook's delivery limits as the flags' defaults are", () => {
    const text = readFileSync(join(EXAMPLES, "ingress", "ingress.yaml"), "utf8");
    const defaults = deployedConfig().limits;
    const stated = Object.fromEntries(
      [...text.matchAll(/--(receiver-[a-z-]+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]),
    );
    expect(stated).toEqual({
      "receiver-failure-rate-limit": defaults.failedRate,
      "receiver-failure-burst": defaults.failedBurst,
    });
    // Valid deliveries: no limit unless asked for.
    expect(defaults.validRate).toBe(0);
    expect(text).toContain("Valid deliveries are\n# not limited unless you set --receiver-rate-limit");
    expect(text).not.toMatch(/\d+\/s/);
  });

  test("the Ingress and the HTTPRoute route /hook/ to the base's Service", () => {
    const service = only(base, "Service", "fluxhook-receiver");
    const ingress = only(exampleObjects(join(EXAMPLES, "ingress")), "Ingress");
    const paths = ingress.spec.rules.flatMap((r: any) => r.http.paths);
    expect(paths.map((p: any) => [p.path, p.backend.service.name, p.backend.service.port.name])).toEqual([
      ["/hook/", service.metadata.name, service.spec.ports[0].name],
    ]);
    const route = only(exampleObjects(join(EXAMPLES, "gateway-api")), "HTTPRoute");
    expect(route.spec.rules.flatMap((r: any) => r.backendRefs.map((b: any) => [b.name, b.port]))).toEqual([
      [service.metadata.name, service.spec.ports[0].port],
    ]);
    expect(route.spec.rules.flatMap((r: any) => r.matches.map((m: any) => m.path.value))).toEqual(["/hook/"]);
  });

  test("the GitHub Receiver is valid for fluxhook and points at its Secret and GitRepository", () => {
    const objects = exampleObjects(join(EXAMPLES, "github-receiver"));
    const receiver = readReceiver({
      ...only(objects, "Receiver"),
      metadata: { ...only(objects, "Receiver").metadata, namespace: NAMESPACE, uid: "u", generation: 1 },
    });
    expect(receiver?.invalid).toBeUndefined();
    expect(receiver?.spec).toMatchObject({ type: "github", events: ["ping", "push"] });
    expect(only(objects, "Secret", receiver!.spec!.secretName!).stringData.token).toBeString();
    const git = only(objects, "GitRepository");
    expect(receiver!.spec!.resources.map((r) => [r.apiVersion, r.kind, r.name])).toEqual([
      [git.apiVersion, "GitRepository", git.metadata.name],
    ]);
  });
});

describe(`deploy/standalone (${via})`, () => {
  test("is the base with status updates on, the writes to Receivers they need, and the Receiver CRD", () => {
    expect(argsOf(standalone)).toEqual([...argsOf(base).slice(0, -1), "--status-updates=true"]);
    expect(deployedConfig([], standalone).statusUpdates).toBe(true);
    const key = (o: Manifest) => `${o.kind}/${o.metadata.name}`;
    const added = standalone.filter((o) => !base.some((b) => key(b) === key(o))).map(key);
    expect(added.sort()).toEqual([
      "ClusterRole/fluxhook-receiver-status",
      "ClusterRoleBinding/fluxhook-receiver-status",
      "CustomResourceDefinition/alerts.notification.toolkit.fluxcd.io",
      "CustomResourceDefinition/providers.notification.toolkit.fluxcd.io",
      "CustomResourceDefinition/receivers.notification.toolkit.fluxcd.io",
    ]);
    const unchanged = (o: Manifest) => o.kind !== "Deployment";
    expect(standalone.filter((o) => base.some((b) => key(b) === key(o)) && unchanged(o))).toEqual(
      base.filter(unchanged),
    );
  });

  test("the receiver-status component refuses to render when the base's flag is not where it expects it", () => {
    const overlay = mkdtempSync(join(tmpdir(), "fluxhook-moved-flag-"));
    try {
      // A base whose arguments moved: the component's test op fails instead of replacing another flag.
      const moved = join(overlay, "base");
      writeFileSync(
        join(overlay, "kustomization.yaml"),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [base]\ncomponents: [${relative(overlay, join(DEPLOY, "components/receiver-status"))}]\n`,
      );
      mkdirSync(moved);
      writeFileSync(
        join(moved, "kustomization.yaml"),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\n`,
      );
      const deploymentYaml = readFileSync(join(BASE, "deployment.yaml"), "utf8").replace(
        "            - --status-updates=false\n",
        "",
      );
      writeFileSync(
        join(moved, "deployment.yaml"),
        deploymentYaml.replace("- --log-level=info", "- --log-level=info\n            - --status-updates=false"),
      );
      expect(() => loadKustomization(overlay)).toThrow("test /spec/template/spec/containers/0/args/4 failed");
      if (KUBECTL) expect(() => kubectlKustomize(overlay)).toThrow();
    } finally {
      rmSync(overlay, { recursive: true, force: true });
    }
  });
});
