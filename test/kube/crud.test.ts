import { describe, expect, test } from "bun:test";
import { ApiException, CoreV1Api, CustomObjectsApi, type V1Secret } from "@kubernetes/client-node";
import { mergePatch, patchAs, startKubeApiServer, type KubeApiServer } from "./index";
import { GIT } from "../support/kinds";

const GIT_REPOSITORIES = { group: "source.toolkit.fluxcd.io", version: "v1", plural: "gitrepositories" } as const;

/** The code and Status body of a client-node ApiException. */
async function failure(
  call: Promise<unknown>,
): Promise<{ code: number; reason?: string; message?: string; details?: unknown }> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body = typeof error.body === "string" ? JSON.parse(error.body) : error.body;
    expect(body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code: error.code });
    return { code: error.code, reason: body.reason, message: body.message, details: body.details };
  }
  throw new Error("expected the call to fail");
}

function clients(api: KubeApiServer) {
  const kc = api.kubeConfig();
  return { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

function gitRepo(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: GIT,
    kind: "GitRepository",
    metadata: { name },
    spec: { url: `https://example.com/${name}` },
    ...extra,
  };
}

describe("create and read", () => {
  test("create sets uid, creationTimestamp, resourceVersion and generation from one global counter", async () => {
    await using api = await startKubeApiServer();
    const { core, custom } = clients(api);
    const secret = await core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "a", resourceVersion: "999", uid: "mine" }, stringData: { k: "v" } },
    });
    const repo = await custom.createNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      body: gitRepo("app"),
    });
    expect(secret.metadata).toMatchObject({ name: "a", namespace: "default", resourceVersion: "1", generation: 1 });
    expect(secret.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(secret.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(repo.metadata).toMatchObject({ name: "app", namespace: "default", resourceVersion: "2", generation: 1 });
    expect(repo.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const read = await core.readNamespacedSecret({ name: "a", namespace: "default" });
    expect(read.metadata?.uid).toBe(secret.metadata!.uid!);
  });

  test("generateName picks a fresh name", async () => {
    await using api = await startKubeApiServer();
    const { core } = clients(api);
    const made = await Promise.all(
      [1, 2, 3].map(() =>
        core.createNamespacedSecret({ namespace: "default", body: { metadata: { generateName: "tok-" } } }),
      ),
    );
    const names = made.map((s) => s.metadata!.name!);
    expect(new Set(names).size).toBe(3);
    for (const name of names) expect(name).toMatch(/^tok-[a-z0-9]{5}$/);
  });

  test("a status in a POST is dropped for kinds with a status subresource, kept by the store API", async () => {
    await using api = await startKubeApiServer();
    const { custom } = clients(api);
    const created = await custom.createNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      body: gitRepo("app", { status: { ready: true } }),
    });
    expect(created.status).toBeUndefined();
    api.store.create({
      ...gitRepo("seeded"),
      metadata: { name: "seeded", namespace: "default" },
      status: { ready: true },
    });
    const seeded = await custom.getNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      name: "seeded",
    });
    expect(seeded.status).toEqual({ ready: true });
  });

  test("cluster-scoped Namespaces", async () => {
    await using api = await startKubeApiServer();
    const { core } = clients(api);
    await core.createNamespace({ body: { metadata: { name: "flux-system", labels: { team: "a" } } } });
    await core.createNamespace({ body: { metadata: { name: "apps" } } });
    expect((await core.readNamespace({ name: "flux-system" })).metadata?.namespace).toBeUndefined();
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).toEqual(["apps", "flux-system"]);
    expect((await core.listNamespace({ labelSelector: "team=a" })).items.map((n) => n.metadata?.name)).toEqual([
      "flux-system",
    ]);
    // "status" is both a namespace subresource and, here, not a plural: /api/v1/namespaces/apps/status
    const status = await core.patchNamespaceStatus({ name: "apps", body: { status: { phase: "Active" } } }, mergePatch);
    expect(status.status?.phase).toBe("Active");
  });

  test.each([
    [
      "missing object",
      (api: KubeApiServer) => clients(api).core.readNamespacedSecret({ name: "nope", namespace: "default" }),
      404,
      "NotFound",
      'secrets "nope" not found',
    ],
    [
      "missing custom object",
      (api: KubeApiServer) =>
        clients(api).custom.getNamespacedCustomObject({ ...GIT_REPOSITORIES, namespace: "default", name: "nope" }),
      404,
      "NotFound",
      'gitrepositories.source.toolkit.fluxcd.io "nope" not found',
    ],
    [
      "unknown resource",
      (api: KubeApiServer) =>
        clients(api).custom.listNamespacedCustomObject({
          ...GIT_REPOSITORIES,
          plural: "widgets",
          namespace: "default",
        }),
      404,
      "NotFound",
      "the server could not find the requested resource",
    ],
    [
      "duplicate",
      async (api: KubeApiServer) => {
        await clients(api).core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "dup" } } });
        return clients(api).core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "dup" } } });
      },
      409,
      "AlreadyExists",
      'secrets "dup" already exists',
    ],
    [
      "no name",
      (api: KubeApiServer) =>
        clients(api).core.createNamespacedSecret({ namespace: "default", body: { metadata: {} } }),
      422,
      "Invalid",
      'Secret "" is invalid: metadata.name: Required value: name or generateName is required',
    ],
    [
      "bad name",
      (api: KubeApiServer) =>
        clients(api).core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "Not_Valid" } } }),
      422,
      "Invalid",
      undefined,
    ],
    [
      "namespace mismatch",
      (api: KubeApiServer) =>
        clients(api).core.createNamespacedSecret({
          namespace: "default",
          body: { metadata: { name: "x", namespace: "other" } },
        }),
      400,
      "BadRequest",
      "the namespace of the provided object does not match the namespace sent on the request",
    ],
    [
      "kind mismatch",
      (api: KubeApiServer) =>
        clients(api).custom.createNamespacedCustomObject({
          ...GIT_REPOSITORIES,
          namespace: "default",
          body: { ...gitRepo("x"), kind: "Bucket" },
        }),
      400,
      "BadRequest",
      undefined,
    ],
    [
      "create on an all-namespaces path",
      (api: KubeApiServer) =>
        clients(api).custom.createClusterCustomObject({ ...GIT_REPOSITORIES, body: gitRepo("x") }),
      405,
      "MethodNotAllowed",
      undefined,
    ],
    [
      "unsupported patch type",
      async (api: KubeApiServer) => {
        await clients(api).core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "p" } } });
        return clients(api).core.patchNamespacedSecret(
          { name: "p", namespace: "default", body: {} },
          patchAs("text/plain" as never),
        );
      },
      415,
      "UnsupportedMediaType",
      undefined,
    ],
    [
      "bad label selector",
      (api: KubeApiServer) =>
        clients(api).core.listNamespacedSecret({ namespace: "default", labelSelector: "a in (b" }),
      400,
      "BadRequest",
      undefined,
    ],
    [
      "unsupported field selector",
      (api: KubeApiServer) =>
        clients(api).core.listNamespacedSecret({ namespace: "default", fieldSelector: "spec.x=y" }),
      400,
      "BadRequest",
      "field label not supported: spec.x",
    ],
  ] as const)("%s", async (_, call, code, reason, message) => {
    await using api = await startKubeApiServer();
    const result = await failure(call(api));
    expect(result.code).toBe(code);
    expect(result.reason).toBe(reason);
    if (message) expect(result.message).toBe(message);
  });
});

describe("list with selectors", () => {
  const labels: Record<string, Record<string, string>> = {
    a: { app: "web", tier: "front" },
    b: { app: "web", tier: "back" },
    c: { app: "db" },
    d: {},
  };

  test.each([
    ["", ["a", "b", "c", "d"]],
    ["app=web", ["a", "b"]],
    ["app==web", ["a", "b"]],
    ["app!=web", ["c", "d"]],
    ["tier in (front,back)", ["a", "b"]],
    ["tier notin (front)", ["b", "c", "d"]],
    ["tier", ["a", "b"]],
    ["!tier", ["c", "d"]],
    ["app=web,tier!=front", ["b"]],
    ["app in (web, db),!tier", ["c"]],
  ])("labelSelector %p", async (selector, expected) => {
    await using api = await startKubeApiServer();
    for (const [name, l] of Object.entries(labels))
      api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default", labels: l } });
    const list = await clients(api).core.listNamespacedSecret({ namespace: "default", labelSelector: selector });
    expect(list.items.map((s) => s.metadata?.name)).toEqual(expected);
  });

  test.each([
    ["metadata.name=a", ["default/a", "other/a"]],
    ["metadata.name==a", ["default/a", "other/a"]],
    ["metadata.name!=a", ["default/b"]],
    ["metadata.namespace=other", ["other/a"]],
    ["metadata.namespace=default,metadata.name=b", ["default/b"]],
    ["type=kubernetes.io/tls", ["other/a"]],
  ])("fieldSelector %p across namespaces", async (selector, expected) => {
    await using api = await startKubeApiServer();
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "a", namespace: "default" } });
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "b", namespace: "default" } });
    api.store.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "a", namespace: "other" },
      type: "kubernetes.io/tls",
    });
    const list = await clients(api).core.listSecretForAllNamespaces({ fieldSelector: selector });
    expect(list.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(expected);
  });

  test("a list carries its kind and the current resourceVersion", async () => {
    await using api = await startKubeApiServer();
    api.store.create(gitRepo("x"));
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } });
    const list = await clients(api).custom.listClusterCustomObject({ ...GIT_REPOSITORIES });
    expect(list).toMatchObject({ kind: "GitRepositoryList", apiVersion: GIT, metadata: { resourceVersion: "2" } });
    expect(list.items).toHaveLength(1);
  });
});

describe("update", () => {
  test("replace checks resourceVersion: stale is a 409 Conflict, current or absent succeeds", async () => {
    await using api = await startKubeApiServer();
    const { core } = clients(api);
    const v1 = await core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "s" }, stringData: { a: "1" } },
    });
    const v2 = await core.replaceNamespacedSecret({
      name: "s",
      namespace: "default",
      body: { ...v1, stringData: { a: "2" } },
    });
    expect(Number(v2.metadata!.resourceVersion)).toBeGreaterThan(Number(v1.metadata!.resourceVersion));
    const stale = await failure(
      core.replaceNamespacedSecret({ name: "s", namespace: "default", body: { ...v1, stringData: { a: "3" } } }),
    );
    expect(stale).toEqual({
      code: 409,
      reason: "Conflict",
      message:
        'Operation cannot be fulfilled on secrets "s": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: "s", kind: "secrets" },
    });
    const unconditional: V1Secret = { metadata: { name: "s" }, stringData: { a: "4" } };
    expect(
      (await core.replaceNamespacedSecret({ name: "s", namespace: "default", body: unconditional })).stringData,
    ).toEqual({ a: "4" });
    const missing = await failure(
      core.replaceNamespacedSecret({ name: "gone", namespace: "default", body: { metadata: { name: "gone" } } }),
    );
    expect(missing.code).toBe(404);
    const renamed = await failure(
      core.replaceNamespacedSecret({ name: "s", namespace: "default", body: { metadata: { name: "t" } } }),
    );
    expect(renamed.code).toBe(400);
  });

  test("a merge patch with a stale resourceVersion is a 409", async () => {
    await using api = await startKubeApiServer();
    const { custom } = clients(api);
    const created = await custom.createNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      body: gitRepo("app"),
    });
    await custom.patchNamespacedCustomObject(
      { ...GIT_REPOSITORIES, namespace: "default", name: "app", body: { metadata: { labels: { a: "b" } } } },
      mergePatch,
    );
    const stale = await failure(
      custom.patchNamespacedCustomObject(
        {
          ...GIT_REPOSITORIES,
          namespace: "default",
          name: "app",
          body: { metadata: { resourceVersion: created.metadata.resourceVersion, labels: { a: "c" } } },
        },
        mergePatch,
      ),
    );
    expect(stale.code).toBe(409);
  });

  test("status subresource isolation and generation", async () => {
    await using api = await startKubeApiServer();
    const { custom } = clients(api);
    const ns = { ...GIT_REPOSITORIES, namespace: "default", name: "app" };
    await custom.createNamespacedCustomObject({ ...GIT_REPOSITORIES, namespace: "default", body: gitRepo("app") });

    const status = await custom.patchNamespacedCustomObjectStatus(
      { ...ns, body: { spec: { url: "ignored" }, status: { observedGeneration: 1 } } },
      mergePatch,
    );
    expect(status).toMatchObject({
      spec: { url: "https://example.com/app" },
      status: { observedGeneration: 1 },
      metadata: { generation: 1, resourceVersion: "2" },
    });

    const main = await custom.patchNamespacedCustomObject(
      { ...ns, body: { spec: { interval: "1m" }, status: { observedGeneration: 99 } } },
      mergePatch,
    );
    expect(main).toMatchObject({
      spec: { interval: "1m" },
      status: { observedGeneration: 1 },
      metadata: { generation: 2 },
    });

    const annotated = await custom.patchNamespacedCustomObject(
      { ...ns, body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "t" } } } },
      mergePatch,
    );
    expect(annotated.metadata).toMatchObject({ generation: 2, resourceVersion: "4" });

    const replaced = await custom.replaceNamespacedCustomObject({
      ...ns,
      body: { ...annotated, spec: { url: "u2" }, status: { hijacked: true } },
    });
    expect(replaced).toMatchObject({
      spec: { url: "u2" },
      status: { observedGeneration: 1 },
      metadata: { generation: 3 },
    });

    const replacedStatus = await custom.replaceNamespacedCustomObjectStatus({
      ...ns,
      body: {
        ...replaced,
        metadata: { ...replaced.metadata, labels: { ignored: "yes" } },
        spec: { url: "ignored" },
        status: { ready: true },
      },
    });
    expect(replacedStatus.spec).toEqual({ url: "u2" });
    expect(replacedStatus.status).toEqual({ ready: true });
    expect(replacedStatus.metadata.labels).toBeUndefined();
    expect(replacedStatus.metadata.generation).toBe(3);
    expect(await custom.getNamespacedCustomObjectStatus(ns)).toMatchObject({ status: { ready: true } });
  });

  test("a write that changes nothing does not bump the resourceVersion", async () => {
    await using api = await startKubeApiServer();
    const { custom } = clients(api);
    const ns = { ...GIT_REPOSITORIES, namespace: "default", name: "app" };
    await custom.createNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      body: gitRepo("app", { metadata: { name: "app", annotations: { a: "1" } } }),
    });
    const same = await custom.patchNamespacedCustomObject(
      { ...ns, body: { metadata: { annotations: { a: "1" } } } },
      mergePatch,
    );
    expect(same.metadata.resourceVersion).toBe("1");
    expect(api.store.resourceVersion).toBe("1");
  });
});

describe("delete", () => {
  test("finalizers hold an object with a deletionTimestamp until they are removed", async () => {
    await using api = await startKubeApiServer();
    const { custom } = clients(api);
    const ns = { ...GIT_REPOSITORIES, namespace: "default", name: "app" };
    await custom.createNamespacedCustomObject({
      ...GIT_REPOSITORIES,
      namespace: "default",
      body: gitRepo("app", { metadata: { name: "app", finalizers: ["example.com/hold"] } }),
    });
    const pending = await custom.deleteNamespacedCustomObject(ns);
    expect(pending.metadata.deletionTimestamp).toMatch(/Z$/);
    expect(pending.metadata.generation).toBe(2);
    expect((await custom.getNamespacedCustomObject(ns)).metadata.deletionTimestamp).toBe(
      pending.metadata.deletionTimestamp,
    );
    // Deleting again changes nothing.
    expect((await custom.deleteNamespacedCustomObject(ns)).metadata.resourceVersion).toBe(
      pending.metadata.resourceVersion,
    );
    await custom.patchNamespacedCustomObject({ ...ns, body: { metadata: { finalizers: null } } }, mergePatch);
    expect((await failure(custom.getNamespacedCustomObject(ns))).code).toBe(404);
  });

  test("core kinds answer a finished delete with a Status, custom kinds with the object", async () => {
    await using api = await startKubeApiServer();
    const { core, custom } = clients(api);
    const secret = await core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "s" } } });
    const status = await core.deleteNamespacedSecret({ name: "s", namespace: "default" });
    expect(status).toMatchObject({
      kind: "Status",
      status: "Success",
      details: { name: "s", kind: "secrets", uid: secret.metadata!.uid! },
    });
    await custom.createNamespacedCustomObject({ ...GIT_REPOSITORIES, namespace: "default", body: gitRepo("app") });
    const last = await custom.deleteNamespacedCustomObject({ ...GIT_REPOSITORIES, namespace: "default", name: "app" });
    expect(last).toMatchObject({ kind: "GitRepository", metadata: { name: "app", resourceVersion: "4" } });
    expect((await failure(core.deleteNamespacedSecret({ name: "s", namespace: "default" }))).code).toBe(404);
  });

  test("preconditions and delete collection", async () => {
    await using api = await startKubeApiServer();
    const { core } = clients(api);
    for (const [name, app] of [
      ["a", "x"],
      ["b", "x"],
      ["c", "y"],
    ]) {
      await core.createNamespacedSecret({ namespace: "default", body: { metadata: { name, labels: { app: app! } } } });
    }
    const stale = await failure(
      core.deleteNamespacedSecret({
        name: "a",
        namespace: "default",
        body: { preconditions: { resourceVersion: "99" } },
      }),
    );
    expect(stale.code).toBe(409);
    await core.deleteCollectionNamespacedSecret({ namespace: "default", labelSelector: "app=x" });
    expect(api.store.list("v1", "Secret", "default").map((s) => s.metadata.name)).toEqual(["c"]);
  });
});
