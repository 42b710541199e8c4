/**
 * What the benchmark puts in the API test server and sends: Receivers, Secrets and targets, and
 * real GitHub push deliveries (@octokit/webhooks-examples), signed as GitHub signs them.
 */
import { randomBytes } from "node:crypto";
import { signPayload, webhookPath } from "../../shared";
import { githubExample } from "../../test/support/payloads";
import { githubPayloadFor } from "../../test/support/provider-payloads";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import type { KubeObject } from "../../test/kube";

export const NS = "bench";
export const TOKEN = "bench-token-7d1f";
export const GIT = "source.toolkit.fluxcd.io/v1";
/** Targets of the fan-out receiver (scenario 5). */
export const FANOUT = 500;
/** Receivers of the main cluster: push, burst, fanout and fillers, so lookups are among 10. */
export const MAIN_RECEIVERS = 10;

export interface BenchRequest {
  readonly method: "POST";
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The header that carries GitHub's delivery id; the load tools give each request a fresh one. */
export const DELIVERY_ID_HEADER = "X-GitHub-Delivery";

/** Every push example of @octokit/webhooks-examples (about 7 KB each). */
export function pushBodies(): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < 100; i++) {
    try {
      bodies.push(githubExample("push", i));
    } catch {
      break;
    }
  }
  return bodies;
}

/** Signed push deliveries to `path`; with `badToken`, signed with the wrong key. */
export function pushRequests(path: string, token: string, bodies: readonly string[]): BenchRequest[] {
  return bodies.map((body) => ({
    method: "POST",
    path,
    headers: {
      "Content-Type": "application/json",
      "User-Agent": "GitHub-Hookshot/bench",
      "X-GitHub-Event": "push",
      "X-Hub-Signature-256": signPayload("sha256", token, body),
    },
    body,
  }));
}

/** A path no receiver has: a random digest. */
export const unknownPath = () => `/hook/${randomBytes(32).toString("hex")}`;

const secret = (namespace: string, name: string, token: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  data: { token: Buffer.from(token).toString("base64") },
});

const gitRepository = (namespace: string, name: string): KubeObject => ({
  apiVersion: GIT,
  kind: "GitRepository",
  metadata: { name, namespace },
  spec: {},
});

const receiver = (namespace: string, name: string, secretName: string, targets: readonly string[]): KubeObject => ({
  apiVersion: RECEIVER_API_VERSION,
  kind: "Receiver",
  metadata: { name, namespace },
  spec: {
    type: "github",
    events: ["push"],
    secretRef: { name: secretName },
    resources: targets.map((t) => ({ kind: "GitRepository", name: t })),
  },
});

export interface MainCluster {
  readonly objects: KubeObject[];
  readonly paths: { push: string; burst: string; fanout: string };
  /** API paths of the targets, for PATCH counts. */
  readonly targetPaths: { push: string; burst: string; fanout: RegExp; barePatch: string };
}

const gitPath = (namespace: string, name: string) =>
  `/apis/source.toolkit.fluxcd.io/v1/namespaces/${namespace}/gitrepositories/${name}`;

/** Scenarios 1 to 5: ten receivers, one of them with 500 targets. */
export function mainCluster(): MainCluster {
  const fanTargets = Array.from({ length: FANOUT }, (_, i) => `fan-${i}`);
  const objects: KubeObject[] = [
    secret(NS, "token", TOKEN),
    gitRepository(NS, "app"),
    gitRepository(NS, "burst-target"),
    // bench/servers/bare-patch.ts PATCHes this one: the same kind as fluxhook's, in the same API server.
    gitRepository(NS, "bare-patch-target"),
    ...fanTargets.map((t) => gitRepository(NS, t)),
    receiver(NS, "push", "token", ["app"]),
    receiver(NS, "burst", "token", ["burst-target"]),
    receiver(NS, "fanout", "token", fanTargets),
  ];
  for (let i = 3; i < MAIN_RECEIVERS; i++) objects.push(receiver(NS, `filler-${i}`, "token", ["app"]));
  return {
    objects,
    paths: {
      push: webhookPath(TOKEN, "push", NS),
      burst: webhookPath(TOKEN, "burst", NS),
      fanout: webhookPath(TOKEN, "fanout", NS),
    },
    targetPaths: {
      push: gitPath(NS, "app"),
      burst: gitPath(NS, "burst-target"),
      fanout: new RegExp(`^${gitPath(NS, "fan-")}\\d+$`),
      barePatch: gitPath(NS, "bare-patch-target"),
    },
  };
}

export interface ScaleCluster {
  readonly objects: KubeObject[];
  readonly receivers: number;
  /** One receiver of the many, for the lookup comparison, and its target's API path. */
  readonly probe: { path: string; token: string; targetPath: string };
}

/**
 * Scenario 6: `n` Receivers, each with its own Secret and token, in namespaces of 100, each
 * namespace with one GitRepository its Receivers target.
 */
export function scaleCluster(n: number): ScaleCluster {
  const objects: KubeObject[] = [];
  const perNamespace = 100;
  for (let i = 0; i < n; i++) {
    const namespace = `scale-${Math.floor(i / perNamespace)}`;
    if (i % perNamespace === 0) objects.push(gitRepository(namespace, "app"));
    objects.push(secret(namespace, `token-${i}`, `scale-token-${i}`));
    objects.push(receiver(namespace, `receiver-${i}`, `token-${i}`, ["app"]));
  }
  const probe = Math.floor(n / 2);
  const namespace = `scale-${Math.floor(probe / perNamespace)}`;
  return {
    objects,
    receivers: n,
    probe: {
      path: webhookPath(`scale-token-${probe}`, `receiver-${probe}`, namespace),
      token: `scale-token-${probe}`,
      targetPath: gitPath(namespace, "app"),
    },
  };
}

export const HELM = "helm.toolkit.fluxcd.io/v2";

/** A JSON delivery with no signature, as anyone with a URL-only Receiver's URL can send it. */
export function unsignedRequests(path: string): BenchRequest[] {
  return [{ method: "POST", path, headers: { "Content-Type": "application/json" }, body: "{}" }];
}

export interface SiegeCluster {
  readonly objects: KubeObject[];
  readonly path: string;
  readonly releases: number;
}

/**
 * Issue 22, finding 7: `releases` HelmReleases of 20 KB in one namespace, and a generic Receiver
 * (its URL is its only credential) selecting them all with `name: "*"`.
 */
export function siegeCluster(releases = 1_000): SiegeCluster {
  const namespace = "siege";
  const objects: KubeObject[] = [secret(namespace, "token", TOKEN)];
  for (let i = 0; i < releases; i++)
    objects.push({
      apiVersion: HELM,
      kind: "HelmRelease",
      metadata: { name: `release-${i}`, namespace, labels: { app: "siege" } },
      spec: { interval: "10m", chart: { spec: { chart: "app" } }, values: { blob: "x".repeat(20_000) } },
    });
  objects.push({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name: "all-releases", namespace },
    spec: {
      type: "generic",
      secretRef: { name: "token" },
      resources: [{ apiVersion: HELM, kind: "HelmRelease", name: "*", matchLabels: {} }],
    },
  });
  return { objects, path: webhookPath(TOKEN, "all-releases", namespace), releases };
}

export interface RoutingCluster {
  readonly objects: KubeObject[];
  /** The routing Receiver (namespace `routed`) and the plain one naming the same targets (namespace `plain`). */
  readonly routed: { namespace: string; path: string };
  readonly plain: { namespace: string; path: string };
  readonly sources: number;
  /** Sources that follow each repository: what one push annotates. */
  readonly followers: number;
  /** Signed pushes, one per repository in turn, to `path`. */
  requests(path: string): BenchRequest[];
}

/**
 * Issue 24's cost: `sources` GitRepositories in `namespaces` namespaces, following `repositories`
 * repositories in turn (so a push is followed by sources / repositories of them). The routing
 * Receiver selects every GitRepository in every namespace; the plain one names the sources a push
 * of repo-0 routes to, so both annotate as many targets a delivery and differ by the index only.
 */
export function routingCluster(sources = 10_000, namespaces = 100, repositories = 1_000): RoutingCluster {
  const objects: KubeObject[] = [];
  const perNamespace = sources / namespaces;
  const followersOfRepo0: { namespace: string; name: string }[] = [];
  for (let i = 0; i < sources; i++) {
    const namespace = `routing-${Math.floor(i / perNamespace)}`;
    const name = `source-${i}`;
    const repo = i % repositories;
    if (repo === 0) followersOfRepo0.push({ namespace, name });
    objects.push({
      apiVersion: GIT,
      kind: "GitRepository",
      // The tenants' opt-in label the README's recipe selects on: every delivery walks the labels.
      metadata: { name, namespace, labels: { "fluxhook.io/webhook": "org" } },
      spec: { url: `https://github.com/example/repo-${repo}.git`, interval: "10m", ref: { branch: "main" } },
    });
  }
  const receiverIn = (namespace: string, annotations: Record<string, string>, resources: object[]): KubeObject => ({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name: "organisation", namespace, annotations },
    spec: { type: "github", events: ["push"], secretRef: { name: "token" }, resources },
  });
  objects.push(
    secret("routed", "token", TOKEN),
    receiverIn("routed", { "fluxhook.io/route-by": "repository" }, [
      { kind: "GitRepository", name: "*", namespace: "*", matchLabels: { "fluxhook.io/webhook": "org" } },
    ]),
    secret("plain", "token", TOKEN),
    receiverIn(
      "plain",
      {},
      followersOfRepo0.map((f) => ({ kind: "GitRepository", name: f.name, namespace: f.namespace })),
    ),
  );
  const bodies = Array.from({ length: 100 }, (_, k) =>
    githubPayloadFor("push", 4, "example", `repo-${(k * 7) % repositories}`, "refs/heads/main"),
  );
  return {
    objects,
    routed: { namespace: "routed", path: webhookPath(TOKEN, "organisation", "routed") },
    plain: { namespace: "plain", path: webhookPath(TOKEN, "organisation", "plain") },
    sources,
    followers: followersOfRepo0.length,
    requests: (path) => pushRequests(path, TOKEN, bodies),
  };
}
