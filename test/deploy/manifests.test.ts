/**
 * deploy/: the kustomize base and the examples, rendered as `kubectl apply -k` would see them.
 *
 * - The base's objects fit together: selectors, ports, probes and the flags' addresses, the
 *   security context, the namespace.
 * - Its RBAC grants every request the server makes. The list of requests is not written here: the
 *   real server runs with the Deployment's own flags against the API test server through a
 *   workload (Receivers becoming Ready, deliveries to every target kind by name and by labels, a
 *   rejected delivery, shutdown), and each request it sent is mapped to what RBAC authorizes.
 *   A call added to the server is covered as soon as a workload below makes it.
 * - The ClusterRole grants nothing outside CLUSTER_ROLE_ALLOWLIST.
 * - Every example renders and holds well-formed objects that point at the base's names.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseConfig, type ServerConfig } from "../../server/config";
import { KUBE_CALL_TIMEOUT_MS, SHUTDOWN_GRACE_MS } from "../../server/limits";
import { readReceiver } from "../../server/api/receiver";
import {
  annotatedTargets,
  encodeStatusQuery,
  signPayload,
  statusQueryKey,
  statusQueryPath,
  webhookPath,
} from "../../shared";
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

const BASE = join(DEPLOY, "base");
const EXAMPLES = join(DEPLOY, "examples");
const { objects: base, via } = render(BASE);
const deployment = only(base, "Deployment", "fluxhook");
const pod = deployment.spec.template;
const container = pod.spec.containers[0] as Record<string, any>;
const NAMESPACE = deployment.metadata.namespace as string;
const SERVICE_ACCOUNT = { namespace: NAMESPACE, name: pod.spec.serviceAccountName as string };

/** The flags as the Deployment passes them, with the environment the pod gets. */
function deployedConfig(extraArgs: readonly string[] = []): ServerConfig {
  const parsed = parseConfig([...(container.args as string[]), ...extraArgs], { RUNTIME_NAMESPACE: NAMESPACE });
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

  test("two replicas, Flux's arguments, RUNTIME_NAMESPACE from the downward API", () => {
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
      statusUpdates: true,
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
    for (const dir of [BASE, ...exampleDirs()])
      expect(sorted(loadKustomization(dir))).toEqual(sorted(kubectlKustomize(dir)));
  });
});

// ---- RBAC ----

/**
 * Everything the ClusterRole may grant, and why. `verb group/resource` as in rbac.ts `grants`.
 * A grant outside this list fails the test: add it here with its reason, or drop it.
 */
const CLUSTER_ROLE_ALLOWLIST: Readonly<Record<string, string>> = {
  "get notification.toolkit.fluxcd.io/receivers": "read Receivers (kubectl auth can-i, future single reads)",
  "list notification.toolkit.fluxcd.io/receivers": "the Receiver informer's list",
  "watch notification.toolkit.fluxcd.io/receivers": "the Receiver informer's watch",
  "patch notification.toolkit.fluxcd.io/receivers": "add and remove Flux's finalizer (--status-updates)",
  "patch notification.toolkit.fluxcd.io/receivers/status": "Ready condition and webhookPath (--status-updates)",
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
};

/** Everything the namespaced Role (leader election) may grant. */
const ROLE_ALLOWLIST = new Set([
  "get coordination.k8s.io/leases",
  "create coordination.k8s.io/leases",
  "update coordination.k8s.io/leases",
]);

const TOKEN = "rbac-token";
const GIT = "source.toolkit.fluxcd.io/v1";

/**
 * What a cluster asks of fluxhook: a Receiver naming one target of every kind plus a label
 * selection, becoming Ready (status), two accepted deliveries (annotations, Events) and a rejected
 * one (a Warning Event). Shutdown (Lease release) follows in recordApiCalls.
 */
async function clusterWorkload(stack: Stack, namespace: string, statusUpdates: boolean): Promise<void> {
  stack.secret(namespace, "webhook-token", { token: TOKEN });
  for (const k of TARGET_KINDS) stack.target(k.apiVersion, k.kind, namespace, `named-${k.plural}`);
  stack.target(GIT, "GitRepository", namespace, "labelled-a", { team: "web" });
  stack.target(GIT, "GitRepository", namespace, "labelled-b", { team: "web" });
  stack.receiver(namespace, "every-kind", {
    type: "github",
    events: ["push"],
    secretRef: { name: "webhook-token" },
    // A filter makes the server read each named target (get) to evaluate it.
    resourceFilter: 'res.metadata.name != "excluded"',
    resources: [
      ...TARGET_KINDS.map((k) => ({ apiVersion: k.apiVersion, kind: k.kind, name: `named-${k.plural}` })),
      { apiVersion: GIT, kind: "GitRepository", name: "*", matchLabels: { team: "web" } },
    ],
  });
  const path = webhookPath(TOKEN, "every-kind", namespace);
  // With status updates the Receiver's status says so; without (beside Flux) it is served as soon
  // as its Secret is indexed.
  if (statusUpdates) expect(await stack.readyPath(namespace, "every-kind")).toBe(path);
  const body = githubExample("push");
  const headers = (signature: string) => ({
    "Content-Type": "application/json",
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": crypto.randomUUID(),
    "X-Hub-Signature-256": signature,
  });
  const deliver = () => stack.post(path, { headers: headers(signPayload("sha256", TOKEN, body)), body });
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
  expect((await stack.post(path, { headers: headers(signPayload("sha256", "wrong", body)), body })).status).toBe(400);
  // A status query about a source: the source read, and the Kustomizations and HelmReleases of its
  // namespace listed to find those that use it.
  const sources = annotatedTargets(first.body)!.filter((t) => t.kind === "GitRepository");
  const query = encodeStatusQuery({ targets: sources });
  const status = await stack.post(statusQueryPath(path)!, {
    headers: {
      "Content-Type": "application/json",
      "X-Hub-Signature-256": signPayload("sha256", statusQueryKey(TOKEN), query),
    },
    body: query,
  });
  expect({ status: status.status, handled: status.body.targets?.length }).toEqual({
    status: 200,
    handled: sources.length,
  });
}

/** Loopback port 0 for every listener: the tests run many servers at once. */
const LOOPBACK = {
  receiverAddr: { host: "127.0.0.1", port: 0 },
  healthAddr: { host: "127.0.0.1", port: 0 },
  metricsAddr: { host: "127.0.0.1", port: 0 },
};

/**
 * The scenarios whose requests the RBAC must grant. Each runs the Deployment's own flags (plus
 * `args`); short leader-election timings make a Lease renewal likely within the run.
 */
const SCENARIOS: { name: string; args: string[]; namespace: string }[] = [
  { name: "the base Deployment, Receivers in another namespace", args: [], namespace: "apps" },
  { name: "--watch-all-namespaces=false", args: ["--watch-all-namespaces=false"], namespace: "flux-system" },
  { name: "beside Flux (--status-updates=false)", args: ["--status-updates=false"], namespace: "apps" },
];
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

  describe.each(SCENARIOS)("grants every request fluxhook makes: $name", ({ args, namespace }) => {
    test("every request is authorized for the Deployment's ServiceAccount", async () => {
      const config = { ...deployedConfig([...args, ...FAST_LEADER_ELECTION]), ...LOOPBACK };
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
        ]),
      );
      const denied = accesses.filter((a) => !authorizes(base, SERVICE_ACCOUNT, a)).map(describeAccess);
      expect(denied).toEqual([]);
    });
  });

  test("the ClusterRole grants nothing outside its allowlist, and no wildcard", () => {
    const clusterRoles = base.filter((o) => o.kind === "ClusterRole");
    expect(clusterRoles.map((r) => r.metadata.name)).toEqual(["fluxhook"]);
    const rules = clusterRoles[0]!.rules as PolicyRule[];
    const granted = grants(rules);
    expect(granted.filter((g) => g.includes("*"))).toEqual([]);
    expect(rules.filter((r) => r.nonResourceURLs || r.resourceNames)).toEqual([]);
    expect(granted.filter((g) => !(g in CLUSTER_ROLE_ALLOWLIST))).toEqual([]);
    // And every allowed grant is there: the allowlist is the ClusterRole's specification.
    expect([...granted].sort()).toEqual(Object.keys(CLUSTER_ROLE_ALLOWLIST).sort());
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
  test("there are the loadbalancer, ingress, gateway-api, github-receiver, beside-flux and flux-install examples", () => {
    expect(
      exampleDirs()
        .map((d) => d.slice(EXAMPLES.length + 1))
        .sort(),
    ).toEqual(["beside-flux", "flux-install", "gateway-api", "github-receiver", "ingress", "loadbalancer"]);
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

  test("the LoadBalancer Service selects fluxhook's pods and targets the receiver port", () => {
    const service = only(exampleObjects(join(EXAMPLES, "loadbalancer")), "Service");
    expect(service.spec.type).toBe("LoadBalancer");
    expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);
    expect(service.spec.ports.map((p: { targetPort: string }) => portNamed(p.targetPort))).toEqual([9292]);
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

  test("beside Flux, the Deployment runs with --status-updates=false and is otherwise the base", () => {
    const overlay = exampleObjects(join(EXAMPLES, "beside-flux"));
    const patched = only(overlay, "Deployment", "fluxhook");
    expect(patched.spec.template.spec.containers[0].args).toEqual([...container.args, "--status-updates=false"]);
    const parsed = parseConfig(patched.spec.template.spec.containers[0].args, { RUNTIME_NAMESPACE: NAMESPACE });
    expect(parsed.ok === true && parsed.config.statusUpdates).toBe(false);
    expect(overlay.filter((o) => o.kind !== "Deployment")).toEqual(base.filter((o) => o.kind !== "Deployment"));
  });
});

describe("deploy/components/crd", () => {
  /** The notification-controller release whose behaviour fluxhook matches (its compatibility spec's). */
  const RELEASE = "v1.9.3";
  const CRDS_URL = `https://github.com/fluxcd/notification-controller/releases/download/${RELEASE}/notification-controller.crds.yaml`;
  const COMPONENT = join(DEPLOY, "components", "crd");
  const component = parseYamlDocuments(
    readFileSync(join(COMPONENT, "kustomization.yaml"), "utf8"),
    "kustomization.yaml",
  )[0] as Record<string, unknown>;

  test("is a kustomize Component with one resource: Flux's released CRDs, by URL, at a pinned version", () => {
    expect(component).toEqual({
      apiVersion: "kustomize.config.k8s.io/v1alpha1",
      kind: "Component",
      resources: [CRDS_URL],
    });
    // No copy of Flux's CRDs in the repository: the component holds nothing but its kustomization.
    expect(readdirSync(COMPONENT)).toEqual(["kustomization.yaml"]);
    expect(readFileSync(join(DEPLOY, "README.md"), "utf8")).toContain(CRDS_URL);
  });

  test("composes with the base: the CRD is added, cluster-scoped, and the base is unchanged", () => {
    // Rendered offline: the fallback renderer answers the URL with a stand-in CRD and records it.
    const overlay = mkdtempSync(join(tmpdir(), "fluxhook-crd-overlay-"));
    const fetched: string[] = [];
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "receivers.notification.toolkit.fluxcd.io" },
      spec: { group: "notification.toolkit.fluxcd.io", scope: "Namespaced" },
    };
    try {
      writeFileSync(
        join(overlay, "kustomization.yaml"),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${relative(overlay, BASE)}]\ncomponents: [${relative(overlay, COMPONENT)}]\n`,
      );
      const objects = loadKustomization(overlay, (url) => {
        fetched.push(url);
        return JSON.stringify(crd);
      });
      expect(fetched).toEqual([CRDS_URL]);
      expect(objects.filter((o) => o.kind !== "CustomResourceDefinition")).toEqual(loadKustomization(BASE));
      expect(only(objects, "CustomResourceDefinition")).toEqual(crd);
    } finally {
      rmSync(overlay, { recursive: true, force: true });
    }
  });
});
