/**
 * Flux's side of the cluster tier: Flux's released CRDs installed in the real API server, the RBAC
 * that `kubectl kustomize deploy/standalone` renders (no notification-controller watches the
 * Receivers fluxhook serves here, so fluxhook writes their status: the base plus those writes;
 * Flux's own controllers are in controllers.ts), the compiled fluxhook run
 * under exactly that identity, and the objects a test makes (each valid against Flux's real CRD
 * schemas).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { signPayload, webhookPath } from "../../shared";
import { ROOT, spawnServer, type ServerProcess } from "../support/process";
import { recordPath, recordToken } from "../support/emitted";
import { waitFor } from "../support/wait";
import { tierEnv, type ControlPlane, type Identity } from "./plane";

/** The install's namespace and ServiceAccount: the identity its bindings name. */
export const FLUX_NAMESPACE = "flux-system";
export const SERVICE_ACCOUNT = "fluxhook";

export type KubeObject = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
};

/**
 * The installs the tier runs, each under a ServiceAccount of its own so that neither's rights can
 * stand in for the other's: `standalone` (fluxhook the only Receiver controller: it writes status)
 * and `base` (deploy/base, the install beside Flux's notification-controller: status off).
 */
export const INSTALLS = {
  standalone: { path: "deploy/standalone", serviceAccount: SERVICE_ACCOUNT },
  base: { path: "deploy/base", serviceAccount: `${SERVICE_ACCOUNT}-beside-flux` },
} as const;
export type Install = keyof typeof INSTALLS;

/** `kubectl kustomize <install>`, parsed. */
export function render(install: Install = "standalone"): KubeObject[] {
  const path = INSTALLS[install].path;
  const r = Bun.spawnSync(["kubectl", "kustomize", join(ROOT, path)]);
  if (r.exitCode !== 0) throw new Error(`kubectl kustomize ${path}: ${r.stderr.toString()}`);
  return parseAllDocuments(r.stdout.toString()).map((d) => d.toJSON() as KubeObject);
}

const RBAC_KINDS = new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);

/** The container args of the install's Deployment: what fluxhook runs with in a cluster. */
export function deploymentArgs(install: Install = "standalone"): string[] {
  const deployment = render(install).find((o) => o.kind === "Deployment");
  const container = deployment?.spec?.template?.spec?.containers?.[0];
  if (!container) throw new Error(`${INSTALLS[install].path} renders no Deployment with a container`);
  return [...(container.args ?? [])];
}

/**
 * An install's RBAC objects, bound to its own ServiceAccount: the bindings (and the account) are
 * renamed after it; the roles are the install's own (both installs render the same `fluxhook`
 * roles, standalone adds one).
 */
function rbacOf(install: Install): KubeObject[] {
  const account = INSTALLS[install].serviceAccount;
  const suffix = account === SERVICE_ACCOUNT ? "" : account.slice(SERVICE_ACCOUNT.length);
  return render(install)
    .filter((o) => RBAC_KINDS.has(o.kind))
    .map((o) => {
      if (o.kind === "ServiceAccount") return { ...o, metadata: { ...o.metadata, name: account } };
      if (!o.kind.endsWith("Binding")) return o;
      const subjects = (o.subjects as { kind: string; name: string }[]).map((s) =>
        s.kind === "ServiceAccount" && s.name === SERVICE_ACCOUNT ? { ...s, name: account } : s,
      );
      return { ...o, metadata: { ...o.metadata, name: `${o.metadata.name}${suffix}` }, subjects };
    });
}

const installed = new WeakSet<ControlPlane>();

/**
 * Flux's CRDs (the versions versions.env pins), flux-system, and both installs' RBAC objects, once
 * per plane. Only RBAC is taken from an install (not its CRDs, nor its Deployment, which the test
 * runs as a process).
 */
export function installFlux(plane: ControlPlane): void {
  if (installed.has(plane)) return;
  const crds = tierEnv().FLUX_CRDS!;
  for (const file of readdirSync(crds).filter((f) => f.endsWith(".yaml")))
    plane.kubectl(["apply", "--server-side", "--field-manager=tier", "-f", join(crds, file)]);
  plane.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  plane.tryKubectl(["create", "namespace", FLUX_NAMESPACE]);
  const rbac = [...rbacOf("standalone"), ...rbacOf("base")];
  plane.kubectl(
    ["apply", "--server-side", "--field-manager=tier", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: rbac }),
  );
  installed.add(plane);
}

/** An install's ServiceAccount, as a client certificate: RBAC gives it what the install binds to it, no more. */
export function fluxhookIdentity(plane: ControlPlane, install: Install = "standalone"): Identity {
  return plane.identity(`system:serviceaccount:${FLUX_NAMESPACE}:${INSTALLS[install].serviceAccount}`, [
    "system:serviceaccounts",
    `system:serviceaccounts:${FLUX_NAMESPACE}`,
  ]);
}

export interface FluxhookProcess extends ServerProcess {
  readonly urls: { receiverAddr: string; healthAddr: string; metricsAddr: string };
  /** Log lines at error level so far (a test that expects none prints them). */
  errors(): Record<string, any>[];
  /**
   * fluxhook's API requests the API server refused, by its own metrics
   * (`rest_client_requests_total` by code): 401 and 403 are what a missing RBAC verb looks like.
   */
  refusedApiRequests(): Promise<Record<string, number>>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The compiled fluxhook, as an install runs it (deploy/standalone unless `install` says: its
 * container args, RUNTIME_NAMESPACE, and its ServiceAccount's rights), on loopback port 0. `args`
 * are added after the Deployment's.
 */
export async function startFluxhookProcess(
  plane: ControlPlane,
  options: {
    install?: Install;
    args?: readonly string[];
    env?: Record<string, string>;
    identity?: Identity;
    deploymentArgs?: boolean;
  } = {},
): Promise<FluxhookProcess> {
  const install = options.install ?? "standalone";
  const identity = options.identity ?? fluxhookIdentity(plane, install);
  const base = options.deploymentArgs === false ? [] : deploymentArgs(install);
  const server = spawnServer(
    [
      ...base,
      "--receiverAddr=127.0.0.1:0",
      "--health-addr=127.0.0.1:0",
      "--metrics-addr=127.0.0.1:0",
      "--log-level=debug",
      ...(options.args ?? []),
    ],
    {
      command: [tierEnv().FLUXHOOK_BIN!],
      env: {
        KUBECONFIG: identity.kubeconfig,
        RUNTIME_NAMESPACE: FLUX_NAMESPACE,
        POD_NAME: `fluxhook-${crypto.randomUUID().slice(0, 8)}`,
        ...options.env,
      },
    },
  );
  const urls = await server.started();
  const stop = async () => {
    server.proc.kill("SIGTERM");
    await server.proc.exited;
    await server.stderrDone;
  };
  return {
    ...server,
    urls,
    errors: () => server.lines.filter((l) => l.level === "error"),
    async refusedApiRequests() {
      const text = await (await fetch(`${urls.metricsAddr}/metrics`)).text();
      const refused: Record<string, number> = {};
      for (const m of text.matchAll(/^rest_client_requests_total\{([^}]*)\} (\d+)/gm)) {
        const code = /code="(\d+)"/.exec(m[1]!)?.[1];
        if (code === "401" || code === "403") refused[code] = (refused[code] ?? 0) + Number(m[2]);
      }
      return refused;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

// ---- objects, as a user would write them (valid against Flux's CRDs)

export function namespace(name: string): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

export function tokenSecret(ns: string, name: string, token: string): KubeObject {
  recordToken(token);
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: ns }, stringData: { token } };
}

export function receiver(ns: string, name: string, spec: Record<string, unknown>, token?: string): KubeObject {
  if (token) recordPath(webhookPath(token, name, ns));
  return { apiVersion: "notification.toolkit.fluxcd.io/v1", kind: "Receiver", metadata: { name, namespace: ns }, spec };
}

export function gitRepository(
  ns: string,
  name: string,
  extra: { labels?: Record<string, string>; url?: string } = {},
): KubeObject {
  return {
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name, namespace: ns, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { url: extra.url ?? `https://github.com/example/${name}`, interval: "10m", ref: { branch: "main" } },
  };
}

export function ociRepository(ns: string, name: string): KubeObject {
  return {
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "OCIRepository",
    metadata: { name, namespace: ns },
    spec: { url: `oci://ghcr.io/example/${name}`, interval: "10m", ref: { tag: "latest" } },
  };
}

export function imageRepository(ns: string, name: string): KubeObject {
  return {
    apiVersion: "image.toolkit.fluxcd.io/v1",
    kind: "ImageRepository",
    metadata: { name, namespace: ns },
    spec: { image: `ghcr.io/example/${name}`, interval: "10m" },
  };
}

export function helmRelease(ns: string, name: string): KubeObject {
  return {
    apiVersion: "helm.toolkit.fluxcd.io/v2",
    kind: "HelmRelease",
    metadata: { name, namespace: ns },
    spec: {
      interval: "10m",
      chart: { spec: { chart: name, sourceRef: { kind: "HelmRepository", name: "charts" } } },
    },
  };
}

export function kustomization(
  ns: string,
  name: string,
  source: { kind: string; name: string; namespace?: string },
): KubeObject {
  return {
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name, namespace: ns },
    spec: { interval: "10m", path: "./", prune: false, sourceRef: source },
  };
}

/** Applies objects as the admin (server-side apply, so a test can re-apply a changed spec). */
export function apply(plane: ControlPlane, ...objects: KubeObject[]): void {
  plane.kubectl(
    ["apply", "--server-side", "--force-conflicts", "--field-manager=tier", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
}

/** The collection path of an object's kind in its namespace (the kinds the tier creates). */
function collectionPath(o: KubeObject): string {
  const plural = o.kind.toLowerCase().replace(/y$/, "ie").concat("s");
  const base = o.apiVersion.includes("/") ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  return `${base}/namespaces/${o.metadata.namespace}/${plural}`;
}

/**
 * Creates many namespaced objects as the admin, `concurrency` at a time, with Bun's fetch
 * (kubectl applies one after another: 2,000 objects took five minutes).
 */
export async function createMany(plane: ControlPlane, objects: readonly KubeObject[], concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < objects.length) {
      const object = objects[next++]!;
      const res = await fetch(`${plane.url}${collectionPath(object)}`, {
        method: "POST",
        body: JSON.stringify(object),
        headers: { "Content-Type": "application/json" },
        tls: plane.adminTls,
      });
      if (res.status !== 201)
        throw new Error(`create ${object.kind} ${object.metadata.name}: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** One object as the API serves it, or undefined when it does not exist. */
export function get(plane: ControlPlane, kind: string, ns: string, name: string): KubeObject | undefined {
  const r = plane.tryKubectl(["get", kind, "-n", ns, name, "-o", "json"]);
  if (r.code !== 0) {
    if (/NotFound|not found/.test(r.stderr)) return undefined;
    throw new Error(`kubectl get ${kind} ${ns}/${name}: ${r.stderr}`);
  }
  return JSON.parse(r.stdout);
}

export function requestedAt(plane: ControlPlane, kind: string, ns: string, name: string): string | undefined {
  const annotations = get(plane, kind, ns, name)?.metadata.annotations as Record<string, string> | undefined;
  return annotations?.["reconcile.fluxcd.io/requestedAt"];
}

/** Waits for Ready=True and returns the Receiver's status.webhookPath. */
export function readyPath(plane: ControlPlane, ns: string, name: string, deadlineMs = 30_000): Promise<string> {
  return waitFor(
    `Receiver ${ns}/${name} Ready`,
    () => {
      const r = get(plane, "receivers.notification.toolkit.fluxcd.io", ns, name);
      const ready = r?.status?.conditions?.find((c: { type: string }) => c.type === "Ready");
      return ready?.status === "True" && r?.status?.webhookPath;
    },
    deadlineMs,
  );
}

/** A Ready condition of a Receiver, whatever its status. */
export function readyCondition(plane: ControlPlane, ns: string, name: string): Record<string, any> | undefined {
  const r = get(plane, "receivers.notification.toolkit.fluxcd.io", ns, name);
  return r?.status?.conditions?.find((c: { type: string }) => c.type === "Ready");
}

/**
 * Deletes every Receiver in the cluster: one collection delete per namespace, then the finalizers
 * of those left Terminating removed (no controller may be left to do it), concurrently.
 */
export async function deleteAllReceivers(plane: ControlPlane): Promise<void> {
  plane.kubectl(["delete", "receivers.notification.toolkit.fluxcd.io", "--all", "--all-namespaces", "--wait=false"]);
  const left = JSON.parse(plane.kubectl(["get", "receivers.notification.toolkit.fluxcd.io", "-A", "-o", "json"]));
  const items = left.items as KubeObject[];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const r = items[next++]!;
      const path = `/apis/notification.toolkit.fluxcd.io/v1/namespaces/${r.metadata.namespace}/receivers/${r.metadata.name}`;
      await fetch(`${plane.url}${path}`, {
        method: "PATCH",
        body: '{"metadata":{"finalizers":null}}',
        headers: { "Content-Type": "application/merge-patch+json" },
        tls: plane.adminTls,
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** A GitHub delivery as GitHub sends it: the payload's bytes, signed with the token. */
export function githubDelivery(
  token: string,
  event: string,
  body: string,
): { headers: Record<string, string>; body: string } {
  return {
    body,
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": event,
      "X-GitHub-Delivery": crypto.randomUUID(),
      "X-Hub-Signature-256": signPayload("sha256", token, body),
    },
  };
}

/** A unique, valid namespace name for one test. */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}
