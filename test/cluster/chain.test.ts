/**
 * The seed's chain, for real: a push, the receiver validates it, source-controller fetches,
 * kustomize-controller applies. A Git repository served on loopback by `git http-backend`; Flux's
 * source-controller and kustomize-controller (built from the Go module proxy, as their
 * ServiceAccounts under flux2's RBAC); fluxhook as deploy/standalone runs it; and the action's
 * bundle run as the runner runs it, with `wait-for: ready`. The GitRepository polls every 10
 * minutes, so only the delivery can bring the new commit within the test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runAction } from "../action/harness";
import { githubExample } from "../support/payloads";
import { waitFor } from "../support/wait";
import { startController } from "./controllers";
import {
  apply,
  deleteAllReceivers,
  get,
  gitRepository,
  installFlux,
  kustomization,
  namespace,
  receiver,
  readyPath,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
} from "./flux";
import { startGitServer } from "./git-server";
import { controlPlane, type ControlPlane } from "./plane";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
});
afterAll(() => deleteAllReceivers(plane));

const configMap = (ns: string, revision: string) =>
  [
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata:",
    "  name: webapp-settings",
    `  namespace: ${ns}`,
    "data:",
    `  revision: ${revision}`,
    "",
  ].join("\n");

describe("the seed's chain with Flux's own controllers", () => {
  test("a push delivered by the action: source-controller fetches the commit, kustomize-controller applies it, wait-for: ready reports its revision", async () => {
    const ns = uniqueNamespace("chain");
    await using gitServer = startGitServer();
    const url = gitServer.createRepository("webapp", { "deploy/settings.yaml": configMap(ns, "first") });
    const token = `chain-${crypto.randomUUID()}`;
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "webapp", { url }),
      {
        ...kustomization(ns, "webapp", { kind: "GitRepository", name: "webapp" }),
        spec: {
          interval: "10m",
          path: "./deploy",
          prune: true,
          sourceRef: { kind: "GitRepository", name: "webapp" },
        },
      },
      tokenSecret(ns, "webhook-token", token),
      receiver(
        ns,
        "webapp",
        {
          type: "github",
          events: ["push"],
          secretRef: { name: "webhook-token" },
          resources: [{ kind: "GitRepository", name: "webapp" }],
        },
        token,
      ),
    );
    // Both controllers watch only this namespace: the tier's other GitRepositories point at
    // hosts that do not exist.
    await using source = await startController(plane, "source-controller", { namespace: ns });
    await using kustomize = await startController(plane, "kustomize-controller", { namespace: ns });
    await using fluxhook = await startFluxhookProcess(plane);
    await readyPath(plane, ns, "webapp");

    const data = () => get(plane, "configmaps", ns, "webapp-settings")?.data as Record<string, string> | undefined;
    const applied = (k: Record<string, any> | undefined) => k?.status?.lastAppliedRevision as string | undefined;
    const firstRevision = await waitFor(
      "the first commit applied",
      () => data()?.revision === "first" && applied(get(plane, "kustomizations", ns, "webapp")),
      120_000,
    );
    expect(firstRevision).toMatch(/^main@sha1:[0-9a-f]{40}$/);

    const sha = gitServer.commit("webapp", { "deploy/settings.yaml": configMap(ns, "second") }, "second");
    const fetchesBefore = gitServer.requests.length;
    const push = JSON.parse(githubExample("push"));
    const run = await runAction({
      eventName: "push",
      event: { ...push, ref: "refs/heads/main", before: firstRevision.slice(-40), after: sha },
      inputs: {
        token,
        address: fluxhook.urls.receiverAddr,
        receiver: "webapp",
        namespace: ns,
        "wait-for": "ready",
        "wait-timeout-seconds": "180",
      },
    });

    const context = () =>
      `action exit ${run.exitCode}\n${run.stdout}\n${run.stderr}\nsource-controller errors: ${JSON.stringify(source.errors().slice(-5))}\nkustomize-controller errors: ${JSON.stringify(kustomize.errors().slice(-5))}`;
    expect(run.exitCode, context()).toBe(0);
    expect(run.outputs.status).toBe("200");
    expect(run.outputs.revision, context()).toBe(`main@sha1:${sha}`);
    expect(data()).toEqual({ revision: "second" });
    expect(applied(get(plane, "kustomizations", ns, "webapp"))).toBe(`main@sha1:${sha}`);
    expect(get(plane, "gitrepositories", ns, "webapp")?.status?.artifact?.revision).toBe(`main@sha1:${sha}`);
    // source-controller fetched again because of the delivery (its interval is ten minutes).
    expect(gitServer.requests.length).toBeGreaterThan(fetchesBefore);
    expect(fluxhook.errors()).toEqual([]);
  }, 300_000);
});
