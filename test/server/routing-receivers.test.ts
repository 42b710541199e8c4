/**
 * The Receiver side of issue 24's opt-ins: what makes a routing Receiver (or one naming every
 * namespace) not Ready and why, and how routed deliveries behave at the edges: a filter, a named
 * source, a cluster without some of Flux's CRDs, sources not indexed yet, a dry run.
 */
import { describe, expect, test } from "bun:test";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import { BUILTIN_KINDS, startKubeApiServer, type KubeObject } from "../kube";
import { createKubeClient } from "../../server/kube/client";
import { createLogger } from "../../server/runtime/log";
import { startFluxhook } from "../../server/server";
import { githubPayloadFor } from "../support/provider-payloads";
import { startStack, TEST_CONFIG, waitFor, type Stack } from "../support/stack";
import { GIT, IMAGE, KS } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const TOKEN = "routing-token";
const NS = "apps";

const secretObject = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "token", namespace: NS },
  data: { token: Buffer.from(TOKEN).toString("base64") },
} as KubeObject;

const conditions = (stack: Stack, name: string, ns = NS) =>
  (stack.receiverObject(ns, name)?.status?.conditions ?? []).map((c: any) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
  }));

/** A Receiver in NS with the token Secret; `routeBy` null: without the annotation. */
function receiver(stack: Stack, name: string, spec: Record<string, unknown>, routeBy: string | null = "repository") {
  stack.api.store.create({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name, namespace: NS, ...(routeBy ? { annotations: { "fluxhook.io/route-by": routeBy } } : {}) },
    spec: { secretRef: { name: "token" }, ...spec },
  } as KubeObject);
}

const repo = (
  ns: string,
  name: string,
  url: string,
  ref: Record<string, string> = { branch: "main" },
  labels = {},
) => ({
  apiVersion: GIT,
  kind: "GitRepository",
  metadata: { name, namespace: ns, labels },
  spec: { url, interval: "10m", ref },
});

const push = (owner: string, name: string, ref = "refs/heads/main") => {
  const body = githubPayloadFor("push", 4, owner, name, ref);
  return {
    headers: githubHeaders(TOKEN, body),
    body,
  };
};

async function stalled(stack: Stack, name: string) {
  await waitFor(`${name} Stalled`, () => conditions(stack, name).some((c: any) => c.type === "Stalled"));
  return conditions(stack, name).find((c: any) => c.type === "Ready");
}

const terminal = (message: string) => ({
  type: "Ready",
  status: "False",
  reason: "ValidationFailed",
  message: `Reconciliation failed terminally due to configuration error: ${message}`,
});

describe("a Receiver's opt-ins, checked when it is reconciled", () => {
  test('namespace "*" is refused under --no-cross-namespace-refs, with the reason', async () => {
    await using stack = await startStack({ noCrossNamespaceRefs: true });
    stack.secret(NS, "token", { token: TOKEN });
    receiver(
      stack,
      "everywhere",
      {
        type: "github",
        resources: [{ kind: "GitRepository", name: "*", namespace: "*", matchLabels: {} }],
      },
      null,
    );
    expect(await stalled(stack, "everywhere")).toEqual(
      terminal(
        'resources[0] (kind="GitRepository", name="*"): namespace "*" names every namespace, and cross-namespace references are not allowed (--no-cross-namespace-refs)',
      ),
    );
    // Its own namespace stays allowed.
    receiver(
      stack,
      "own",
      { type: "github", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] },
      null,
    );
    expect(await stack.readyPath(NS, "own")).toStartWith("/hook/");
  });

  test('without the flag, namespace "*" is Ready', async () => {
    await using stack = await startStack();
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "everywhere", {
      type: "github",
      resources: [{ kind: "GitRepository", name: "*", namespace: "*", matchLabels: {} }],
    });
    expect(await stack.readyPath(NS, "everywhere")).toStartWith("/hook/");
  });

  test.each([
    {
      what: "a type whose deliveries name no repository (nexus)",
      spec: { type: "nexus", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] },
      routeBy: "repository",
      message:
        'annotation fluxhook.io/route-by: "repository": the deliveries of a nexus Receiver name no repository; routing reads those of generic, generic-hmac, generic-oidc, github, gitlab, bitbucket, harbor, dockerhub, quay, gcr and acr',
    },
    {
      what: "a type whose deliveries name no repository (cdevents)",
      spec: { type: "cdevents", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] },
      routeBy: "repository",
      message:
        'annotation fluxhook.io/route-by: "repository": the deliveries of a cdevents Receiver name no repository; routing reads those of generic, generic-hmac, generic-oidc, github, gitlab, bitbucket, harbor, dockerhub, quay, gcr and acr',
    },
    {
      what: "a kind that follows no repository",
      spec: {
        type: "github",
        resources: [
          { kind: "GitRepository", name: "*", matchLabels: {} },
          { apiVersion: KS, kind: "Kustomization", name: "apps" },
        ],
      },
      routeBy: "repository",
      message:
        'annotation fluxhook.io/route-by: "repository": resources[1] (kind="Kustomization") follows no repository; routing selects GitRepository, OCIRepository, ImageRepository and HelmRepository',
    },
    {
      what: "another value",
      spec: { type: "github", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] },
      routeBy: "repo",
      message: 'annotation fluxhook.io/route-by: "repo" is not supported; its one value is "repository"',
    },
  ])("not Ready: $what", async ({ spec, routeBy, message }) => {
    await using stack = await startStack();
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "routed", spec, routeBy);
    expect(await stalled(stack, "routed")).toEqual(terminal(message));
    // The annotation is metadata: removing it (no new generation) is decided again, and Ready.
    stack.api.store.patch(RECEIVER_API_VERSION, "Receiver", NS, "routed", {
      metadata: { annotations: { "fluxhook.io/route-by": null } },
    });
    expect(await stack.readyPath(NS, "routed")).toStartWith("/hook/");
  });
});

describe("routed deliveries at the edges", () => {
  test("a filter narrows the sources that follow; an object two resources select counts once, annotated if one accepts it", async () => {
    await using stack = await startStack({}, {}, [
      repo("a", "one", "https://github.com/example/app", { branch: "main" }, { tier: "prod" }),
      repo("b", "two", "git@github.com:example/app.git", { branch: "main" }, { tier: "dev" }),
      repo(NS, "named", "https://github.com/example/app.git"),
      repo(NS, "named-other", "https://github.com/example/other"),
    ]);
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "routed", {
      type: "github",
      resources: [
        { kind: "GitRepository", name: "*", namespace: "*", matchLabels: {}, filter: "res.metadata.name == 'one'" },
        { kind: "GitRepository", name: "named" },
        { kind: "GitRepository", name: "named-other" },
      ],
    });
    const path = await stack.readyPath(NS, "routed");
    const res = await stack.post(path, push("example", "app"));
    // Every object counts once, though the wildcard selects the named ones too; the wildcard's
    // filter refuses "named", which its own resource (no filter) accepts.
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "3 of 4 targets follow example/app@refs/heads/main, 2 annotated",
    });
    expect(res.body.targets.map((t: any) => `${t.namespace}/${t.name}:${t.outcome}`).sort()).toEqual([
      "a/one:annotated",
      "apps/named:annotated",
      "b/two:skipped",
    ]);
    expect(stack.requestedAt(GIT, "GitRepository", "a", "one")).toBeString();
    expect(stack.requestedAt(GIT, "GitRepository", "b", "two")).toBeUndefined();
  });

  test("a named source that does not exist fails the delivery, as in Flux", async () => {
    await using stack = await startStack({}, {}, [repo(NS, "app", "https://github.com/example/app")]);
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "routed", {
      type: "github",
      resources: [
        { kind: "GitRepository", name: "app" },
        { kind: "GitRepository", name: "gone" },
      ],
    });
    const res = await stack.post(await stack.readyPath(NS, "routed"), push("example", "app"));
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 500,
      reason: "1 target failed; 1 of 1 target follows example/app@refs/heads/main",
    });
    expect(stack.requestedAt(GIT, "GitRepository", NS, "app")).toBeString();
  });

  test("a cluster without image-reflector-controller routes Git events, and finds ImageRepositories once it is installed", async () => {
    const image = BUILTIN_KINDS.find((k) => k.kind === "ImageRepository")!;
    await using stack = await startStack(
      {},
      { unservedKindDiscoveryMs: 20 },
      [repo(NS, "app", "https://github.com/example/app")],
      { builtinKinds: BUILTIN_KINDS.filter((k) => k !== image) },
    );
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "routed", {
      type: "github",
      resources: [
        { kind: "GitRepository", name: "*", matchLabels: {} },
        { kind: "ImageRepository", name: "*", matchLabels: {} },
      ],
    });
    const path = await stack.readyPath(NS, "routed");
    const res = await stack.post(path, push("example", "app"));
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target follows example/app@refs/heads/main",
    });
    expect(stack.logs.filter((l) => l.level === "error")).toEqual([]);
    expect(
      stack.logs.some((l) => String(l.msg).startsWith("ImageRepository: image.toolkit.fluxcd.io/v1 is not served")),
    ).toBe(true);

    stack.api.registerKind(image);
    stack.api.store.create({
      apiVersion: IMAGE,
      kind: "ImageRepository",
      metadata: { name: "app", namespace: NS },
      spec: { image: "ghcr.io/example/app", interval: "10m" },
    });
    await waitFor("the ImageRepository indexed once its CRD is served", () => stack.fluxhook.sourcesIndexed() === 2);
  });

  test("sources not indexed in time: the delivery fails with the reason, and the next one routes", async () => {
    await using stack = await startStack({}, { sourceIndexWaitMs: 50 }, [
      repo(NS, "app", "https://github.com/example/app"),
    ]);
    stack.secret(NS, "token", { token: TOKEN });
    // The first list of GitRepositories is held until the test lets it go.
    const held = stack.api.faults.add({
      method: "GET",
      path: `/apis/${GIT}/gitrepositories`,
      watch: false,
      respond: "hold",
    });
    receiver(stack, "routed", { type: "github", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] });
    const path = await stack.readyPath(NS, "routed");
    await waitFor("the list held", () => stack.api.faults.hung === 1);
    const early = await stack.post(path, push("example", "app"));
    expect({ status: early.status, reason: early.body.reason }).toEqual({
      status: 500,
      reason:
        "1 target failed; the sources are not indexed yet (GitRepository not listed yet; the log says why when it lasts); retry",
    });
    held.remove();
    await waitFor("the sources indexed", () => stack.fluxhook.sourcesIndexed() === 1);
    const later = await stack.post(path, push("example", "app"));
    expect({ status: later.status, reason: later.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target follows example/app@refs/heads/main",
    });
  });

  test("a replica whose RBAC refuses the index's list is Ready all the same, and says why routed deliveries fail", async () => {
    const api = await startKubeApiServer({
      objects: [
        repo(NS, "app", "https://github.com/example/app"),
        secretObject,
        {
          apiVersion: RECEIVER_API_VERSION,
          kind: "Receiver",
          metadata: { name: "routed", namespace: NS, annotations: { "fluxhook.io/route-by": "repository" } },
          spec: {
            type: "github",
            secretRef: { name: "token" },
            resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }],
          },
        } as KubeObject,
      ],
    });
    await using _api = api;
    api.faults.add({
      method: "GET",
      path: `/apis/${GIT}/gitrepositories`,
      watch: false,
      times: Number.POSITIVE_INFINITY,
      respond: {
        status: 403,
        message: 'gitrepositories.source.toolkit.fluxcd.io is forbidden: cannot list resource "gitrepositories"',
      },
    });
    const tuning = { sourceIndexWaitMs: 50, watchBackoff: { baseMs: 10, capMs: 200 } };
    const log = createLogger({ level: "error", encoding: "json", write: () => {} });
    await using fluxhook = await startFluxhook({
      config: TEST_CONFIG,
      log,
      kube: createKubeClient({ kubeConfig: api.kubeConfig(), log, tuning }),
      tuning,
    });
    await waitFor("the replica Ready, the index unlisted", () => fluxhook.ready() && fluxhook.sourcesIndexed() === 0);
    const path = await waitFor(
      "the routing Receiver served",
      () => fluxhook.receivers().find((r) => r.key.name === "routed" && r.state === "ready")?.path,
    );
    const { headers, body } = push("example", "app");
    const res = await fetch(fluxhook.receiverUrl + path, { method: "POST", headers, body });
    expect({ status: res.status, reason: ((await res.json()) as { reason: string }).reason }).toEqual({
      status: 500,
      reason:
        "1 target failed; the sources are not indexed yet (GitRepository not listed yet; the log says why when it lasts); retry",
    });
  });

  test("a dry run routes from the cluster's sources and writes nothing", async () => {
    await using stack = await startStack({ dryRun: true }, {}, [repo(NS, "app", "https://github.com/example/app")]);
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "routed", { type: "github", resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] });
    const path = await waitFor(
      "the Receiver served",
      () => stack.fluxhook.receivers().find((r) => r.key.name === "routed" && r.state === "ready")?.path,
    );
    const res = await stack.post(path, push("example", "app"));
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target follows example/app@refs/heads/main (dry run: nothing was written)",
    });
    expect(stack.requestedAt(GIT, "GitRepository", NS, "app")).toBeUndefined();
  });

  test("no routing Receiver, no watch of sources", async () => {
    await using stack = await startStack({}, {}, [repo(NS, "app", "https://github.com/example/app")]);
    stack.secret(NS, "token", { token: TOKEN });
    receiver(stack, "plain", { type: "github", resources: [{ kind: "GitRepository", name: "app" }] }, null);
    const path = await stack.readyPath(NS, "plain");
    expect((await stack.post(path, push("example", "app"))).body.reason).toBe("1 of 1 target annotated");
    expect(stack.api.requests.filter((r) => r.path.includes("gitrepositories") && r.method === "GET")).toEqual([]);
  });
});
