import { describe, expect, test } from "bun:test";
import { CustomObjectsApi, makeInformer } from "@kubernetes/client-node";
import { mergePatch, startKubeApiServer } from "./index";
import { GIT } from "../support/kinds";
import { waitFor } from "../support/wait";

// client-node cannot produce most malformed requests, so these use fetch directly: what is
// under test is that the server answers each with a Status and keeps serving.
describe("malformed requests get a Status, never a crash", () => {
  test.each([
    ["GET", "/nonsense", undefined, 404, "NotFound"],
    ["GET", "/api/v2", undefined, 404, "NotFound"],
    ["GET", "/apis/unknown.example.com/v1", undefined, 404, "NotFound"],
    ["GET", "/apis/unknown.example.com", undefined, 404, "NotFound"],
    ["GET", "/api/v1/namespaces/default/secrets/a/b/c", undefined, 404, "NotFound"],
    ["GET", "/api/v1/secrets/s", undefined, 404, "NotFound"],
    ["GET", "/api/v1/namespaces/default/secrets/s/status", undefined, 404, "NotFound"],
    ["GET", "/api/v1/namespaces/default/secrets/%E0%A4%A", undefined, 400, "BadRequest"],
    ["GET", "/api/v1/namespaces/default/secrets?watch=true&timeoutSeconds=soon", undefined, 400, "BadRequest"],
    ["GET", "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name", undefined, 400, "BadRequest"],
    ["PROPFIND", "/api/v1/namespaces/default/secrets", undefined, 405, "MethodNotAllowed"],
    ["PUT", "/api/v1/namespaces/default/secrets", "{}", 405, "MethodNotAllowed"],
    ["POST", "/apis", "{}", 405, "MethodNotAllowed"],
    ["DELETE", "/api/v1/namespaces/default/secrets/s", "{oops", 400, "BadRequest"],
    ["PATCH", "/api/v1/namespaces/default/secrets/s", "{}", 415, "UnsupportedMediaType"],
    ["DELETE", "/api/v1/namespaces/default/secrets/s?dryRun=All", undefined, 400, "BadRequest"],
  ])("%s %s", async (method, path, body, code, reason) => {
    await using api = await startKubeApiServer();
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "default" } });
    const response = await fetch(api.url + path, { method, body });
    expect(response.status).toBe(code);
    expect(response.headers.get("content-type")).toStartWith("application/json");
    expect(await response.json()).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason, code });
    expect((await fetch(`${api.url}/api/v1/namespaces/default/secrets/s`)).status).toBe(200);
  });

  test("health endpoints", async () => {
    await using api = await startKubeApiServer();
    for (const path of ["/healthz", "/readyz", "/livez"]) expect(await (await fetch(api.url + path)).text()).toBe("ok");
  });
});

describe("scale", () => {
  // The benchmark runs against 10,000 objects; list, sync and concurrent writes must stay quick.
  test("10,000 objects: list, informer sync, 1,000 concurrent merge patches all observed", async () => {
    const objects = Array.from({ length: 10_000 }, (_, i) => ({
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: `repo-${i}`, namespace: `ns-${i % 100}`, labels: { shard: String(i % 10) } },
      spec: { url: `https://example.com/${i}` },
    }));
    await using api = await startKubeApiServer({ objects });
    const kc = api.kubeConfig();
    const custom = kc.makeApiClient(CustomObjectsApi);
    const repos = { group: "source.toolkit.fluxcd.io", version: "v1", plural: "gitrepositories" };
    expect((await custom.listClusterCustomObject(repos)).items).toHaveLength(10_000);
    expect((await custom.listClusterCustomObject({ ...repos, labelSelector: "shard=3" })).items).toHaveLength(1_000);

    const informer = makeInformer(kc, "/apis/source.toolkit.fluxcd.io/v1/gitrepositories", () =>
      custom.listClusterCustomObject(repos),
    );
    let updates = 0;
    informer.on("update", () => updates++);
    await informer.start();
    expect(informer.list()).toHaveLength(10_000);
    await waitFor("1 open watch", () => api.openWatches === 1);

    await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        custom.patchNamespacedCustomObject(
          {
            ...repos,
            namespace: `ns-${i % 100}`,
            name: `repo-${i}`,
            body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": `t${i}` } } },
          },
          mergePatch,
        ),
      ),
    );
    await waitFor("1,000 updates seen", () => updates === 1_000);
    expect(api.count({ method: "PATCH" })).toBe(1_000);
    expect(api.store.resourceVersion).toBe("11000");
    await informer.stop();
  });
});
