/**
 * Routing by repository (issue 24) on a real kube-apiserver, under deploy/standalone's ClusterRole:
 * the source index lists and watches GitRepositories in every namespace with exactly the rights the
 * install grants, and a routed delivery annotates only the GitRepositories that follow the pushed
 * repository and branch, among several in two namespaces; one created after start is found through
 * the watch.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { githubPayloadFor } from "../support/provider-payloads";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  githubDelivery,
  installFlux,
  namespace,
  readyPath,
  requestedAt,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type KubeObject,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

let plane: ControlPlane;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
});
afterAll(() => deleteAllReceivers(plane));

function gitRepository(ns: string, name: string, url: string, ref: Record<string, string>, label: string): KubeObject {
  return {
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name, namespace: ns, labels: { "fluxhook.io/webhook": label } },
    spec: { url, interval: "10m", ref },
  };
}

describe("routing by repository on a real API server", () => {
  test("only the GitRepositories that follow the pushed repository and branch are annotated, in two namespaces", async () => {
    const [ns1, ns2] = [uniqueNamespace("route-a"), uniqueNamespace("route-b")];
    // A repository of this test alone, and a label of its own: other tests' GitRepositories share the cluster.
    const repo = `app-${ns1.slice(-8)}`;
    const token = `routing-${crypto.randomUUID()}`;
    apply(
      plane,
      namespace(ns1),
      namespace(ns2),
      gitRepository(ns1, "main-https", `https://github.com/example/${repo}.git`, { branch: "main" }, ns1),
      gitRepository(ns1, "dev", `https://github.com/example/${repo}`, { branch: "dev" }, ns1),
      gitRepository(ns2, "main-ssh", `ssh://git@github.com:22/Example/${repo}.git`, { branch: "main" }, ns1),
      gitRepository(ns2, "other", "https://github.com/example/other", { branch: "main" }, ns1),
      tokenSecret(ns1, "webhook-token", token),
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1",
        kind: "Receiver",
        metadata: { name: "organisation", namespace: ns1, annotations: { "fluxhook.io/route-by": "repository" } },
        spec: {
          type: "github",
          events: ["push"],
          secretRef: { name: "webhook-token" },
          resources: [
            { kind: "GitRepository", name: "*", namespace: "*", matchLabels: { "fluxhook.io/webhook": ns1 } },
          ],
        },
      },
    );
    await using server = await startFluxhookProcess(plane);
    const path = await readyPath(plane, ns1, "organisation");
    const push = async () => {
      const delivery = githubDelivery(token, "push", githubPayloadFor("push", 4, "example", repo, "refs/heads/main"));
      const res = await fetch(`${server.urls.receiverAddr}${path}`, { method: "POST", ...delivery });
      return { status: res.status, body: await res.json() };
    };
    const first = await push();
    expect({ status: first.status, reason: first.body.reason }).toEqual({
      status: 200,
      reason: `2 of 4 targets follow example/${repo}@refs/heads/main`,
    });
    expect(requestedAt(plane, "gitrepositories", ns1, "main-https")).toBeString();
    expect(requestedAt(plane, "gitrepositories", ns2, "main-ssh")).toBeString();
    expect(requestedAt(plane, "gitrepositories", ns1, "dev")).toBeUndefined();
    expect(requestedAt(plane, "gitrepositories", ns2, "other")).toBeUndefined();

    // Created after start: found through the watch, with no list per delivery.
    apply(plane, gitRepository(ns2, "late", `ssh://git@github.com/example/${repo}`, { name: "refs/heads/main" }, ns1));
    await waitFor(
      "the new GitRepository routed",
      async () => (await push()).body.reason === `3 of 5 targets follow example/${repo}@refs/heads/main`,
      30_000,
    );
    expect(requestedAt(plane, "gitrepositories", ns2, "late")).toBeString();
    expect(server.errors()).toEqual([]);
  });

  test("a wildcard across namespaces lists metadata only; a selection of nothing (null items) is 200", async () => {
    const [ns1, ns2] = [uniqueNamespace("wild-a"), uniqueNamespace("wild-b")];
    const token = `wildcard-${crypto.randomUUID()}`;
    apply(
      plane,
      namespace(ns1),
      namespace(ns2),
      gitRepository(ns1, "one", "https://github.com/example/one", { branch: "main" }, ns1),
      gitRepository(ns2, "two", "https://github.com/example/two", { branch: "main" }, ns1),
      tokenSecret(ns1, "webhook-token", token),
      {
        apiVersion: "notification.toolkit.fluxcd.io/v1",
        kind: "Receiver",
        metadata: { name: "wildcard", namespace: ns1 },
        spec: {
          type: "generic",
          secretRef: { name: "webhook-token" },
          resources: [
            { kind: "GitRepository", name: "*", namespace: "*", matchLabels: { "fluxhook.io/webhook": ns1 } },
            { kind: "GitRepository", name: "*", matchLabels: { "fluxhook.io/webhook": "nobody" } },
          ],
        },
      },
    );
    await using server = await startFluxhookProcess(plane);
    const path = await readyPath(plane, ns1, "wildcard");
    const res = await fetch(`${server.urls.receiverAddr}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    const body = await res.json();
    expect({ status: res.status, reason: body.reason }).toEqual({ status: 200, reason: "2 of 3 targets annotated" });
    expect(body.targets.map((t: any) => `${t.kind} ${t.namespace}/${t.name}:${t.outcome}`).sort()).toEqual([
      `GitRepository ${ns1}/*:skipped`,
      `GitRepository ${ns1}/one:annotated`,
      `GitRepository ${ns2}/two:annotated`,
    ]);
    expect(server.errors()).toEqual([]);
  });
});
