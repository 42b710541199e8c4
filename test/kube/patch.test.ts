import { describe, expect, test } from "bun:test";
import {
  ApiException,
  type ConfigurationOptions,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  Observable,
  PatchStrategy,
} from "@kubernetes/client-node";
import { patchAs, startKubeApiServer } from "./index";
import { RECEIVER } from "../support/kinds";

/** Options that replace the serialised body (client-node always sends JSON) and its content type. */
function rawBody(text: string, contentType: string): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setBody(text);
          ctx.setHeaderParam("Content-Type", contentType);
          return new Observable(Promise.resolve(ctx));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

async function codeOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
  return 200;
}

async function withSecret() {
  const api = await startKubeApiServer();
  api.store.create({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s", namespace: "default", labels: { b: "x", c: "y" }, finalizers: ["f/one"] },
  });
  return { api, core: api.kubeConfig().makeApiClient(CoreV1Api) };
}

describe("patch types", () => {
  // Every type expresses "set label a, delete label b"; all must agree.
  test.each([
    ["merge patch", { metadata: { labels: { a: "1", b: null } } }, patchAs(PatchStrategy.MergePatch), undefined],
    [
      "strategic merge patch (as merge patch)",
      { metadata: { labels: { a: "1", b: null } } },
      patchAs(PatchStrategy.StrategicMergePatch),
      undefined,
    ],
    [
      "JSON patch (client-node's default type)",
      [
        { op: "add", path: "/metadata/labels/a", value: "1" },
        { op: "remove", path: "/metadata/labels/b" },
      ],
      undefined,
      undefined,
    ],
    [
      "server-side apply (JSON body)",
      { apiVersion: "v1", kind: "Secret", metadata: { name: "s", labels: { a: "1", b: null } } },
      patchAs(PatchStrategy.ServerSideApply),
      "tests",
    ],
  ] as const)("%s", async (_, body, options, fieldManager) => {
    const { api, core } = await withSecret();
    await using _api = api;
    const patched = await core.patchNamespacedSecret({ name: "s", namespace: "default", body, fieldManager }, options);
    expect(patched.metadata?.labels).toEqual({ a: "1", c: "y" });
  });

  test("the content type the server saw is the one the options set", async () => {
    const { api, core } = await withSecret();
    await using _api = api;
    await core.patchNamespacedSecret(
      { name: "s", namespace: "default", body: { metadata: { labels: { z: "1" } } } },
      patchAs(PatchStrategy.MergePatch),
    );
    await core.patchNamespacedSecret({
      name: "s",
      namespace: "default",
      body: [{ op: "add", path: "/metadata/labels/y", value: "2" }],
    });
    expect(api.requests.map((r) => r.contentType)).toEqual([
      "application/merge-patch+json",
      "application/json-patch+json",
    ]);
  });

  test.each([
    ["replace", [{ op: "replace", path: "/metadata/labels/b", value: "z" }], 200, { b: "z", c: "y" }],
    [
      "test then add",
      [
        { op: "test", path: "/metadata/labels/c", value: "y" },
        { op: "add", path: "/metadata/labels/t", value: "ok" },
      ],
      200,
      { b: "x", c: "y", t: "ok" },
    ],
    ["move", [{ op: "move", from: "/metadata/labels/b", path: "/metadata/labels/m" }], 200, { c: "y", m: "x" }],
    ["copy", [{ op: "copy", from: "/metadata/labels/c", path: "/metadata/labels/k" }], 200, { b: "x", c: "y", k: "y" }],
    [
      "escaped pointer",
      [{ op: "add", path: "/metadata/labels/example.com~1team", value: "a" }],
      200,
      { b: "x", c: "y", "example.com/team": "a" },
    ],
    [
      "failed test",
      [
        { op: "test", path: "/metadata/labels/c", value: "nope" },
        { op: "add", path: "/metadata/labels/t", value: "x" },
      ],
      422,
      undefined,
    ],
    ["remove a missing path", [{ op: "remove", path: "/metadata/labels/missing" }], 422, undefined],
    ["not an array", { op: "add" }, 400, undefined],
    ["unknown op", [{ op: "frobnicate", path: "/x" }], 400, undefined],
  ] as const)("JSON patch: %s", async (_, body, code, labels) => {
    const { api, core } = await withSecret();
    await using _api = api;
    expect(await codeOf(core.patchNamespacedSecret({ name: "s", namespace: "default", body }))).toBe(code);
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.labels).toEqual(labels ?? { b: "x", c: "y" });
  });

  test("JSON patch on a list: append and remove by index", async () => {
    const { api, core } = await withSecret();
    await using _api = api;
    await core.patchNamespacedSecret({
      name: "s",
      namespace: "default",
      body: [{ op: "add", path: "/metadata/finalizers/-", value: "f/two" }],
    });
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.finalizers).toEqual(["f/one", "f/two"]);
    await core.patchNamespacedSecret({
      name: "s",
      namespace: "default",
      body: [{ op: "remove", path: "/metadata/finalizers/0" }],
    });
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.finalizers).toEqual(["f/two"]);
  });
});

describe("server-side apply (simplified)", () => {
  test("creates when absent, merges when present, through KubernetesObjectApi", async () => {
    await using api = await startKubeApiServer();
    const objects = KubernetesObjectApi.makeApiClient(api.kubeConfig());
    const spec = {
      apiVersion: RECEIVER,
      kind: "Receiver",
      metadata: { name: "r", namespace: "flux-system" },
      spec: { type: "github" },
    };
    const created = await objects.patch(spec, undefined, undefined, "fluxhook", true, PatchStrategy.ServerSideApply);
    expect(created).toMatchObject({ metadata: { generation: 1 } });
    expect(api.requests.at(-1)?.status).toBe(201);
    const updated = await objects.patch(
      { ...spec, spec: { type: "gitlab" } },
      undefined,
      undefined,
      "fluxhook",
      true,
      PatchStrategy.ServerSideApply,
    );
    expect(updated).toMatchObject({ spec: { type: "gitlab" }, metadata: { generation: 2 } });
    expect(api.requests.at(-1)).toMatchObject({
      method: "PATCH",
      status: 200,
      query: { fieldManager: "fluxhook", force: "true" },
    });
  });

  test("a YAML body", async () => {
    await using api = await startKubeApiServer();
    const custom = api.kubeConfig().makeApiClient(CustomObjectsApi);
    const yaml = [
      "apiVersion: notification.toolkit.fluxcd.io/v1",
      "kind: Receiver",
      "metadata:",
      "  name: r",
      "spec:",
      "  type: github",
      "  events: [push]",
      "",
    ].join("\n");
    await custom.patchNamespacedCustomObject(
      {
        group: "notification.toolkit.fluxcd.io",
        version: "v1",
        plural: "receivers",
        namespace: "flux-system",
        name: "r",
        body: {},
        fieldManager: "tests",
      },
      rawBody(yaml, PatchStrategy.ServerSideApply),
    );
    expect(api.store.get(RECEIVER, "Receiver", "flux-system", "r")?.spec).toEqual({ type: "github", events: ["push"] });
  });

  test.each([
    ["no fieldManager", JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } }), undefined, 400],
    ["wrong kind", JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "s" } }), "tests", 400],
    [
      "name differs from the URL",
      JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "t" } }),
      "tests",
      400,
    ],
    ["broken YAML", "metadata: [unclosed", "tests", 400],
  ])("%s is a 400", async (_, text, fieldManager, code) => {
    await using api = await startKubeApiServer();
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    expect(
      await codeOf(
        core.patchNamespacedSecret(
          { name: "s", namespace: "default", body: {}, fieldManager },
          rawBody(text, PatchStrategy.ServerSideApply),
        ),
      ),
    ).toBe(code);
  });
});

describe("malformed bodies get a Status, never a crash", () => {
  test.each([
    ["invalid JSON create", "POST", "{not json", "application/json", 400],
    ["a JSON array create", "POST", "[]", "application/json", 400],
    ["protobuf create", "POST", "\u0000k8s", "application/vnd.kubernetes.protobuf", 415],
    ["YAML create", "POST", "metadata:\n  name: from-yaml\n", "application/yaml", 201],
    ["invalid JSON merge patch", "PATCH", "{", PatchStrategy.MergePatch, 400],
    ["a merge patch that is not an object", "PATCH", "[1]", PatchStrategy.MergePatch, 400],
    [
      "labels that are not strings",
      "PATCH",
      JSON.stringify({ metadata: { labels: { a: 1 } } }),
      PatchStrategy.MergePatch,
      422,
    ],
  ])("%s", async (_, method, text, contentType, code) => {
    await using api = await startKubeApiServer();
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } });
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    const call =
      method === "POST"
        ? core.createNamespacedSecret({ namespace: "default", body: {} }, rawBody(text, contentType))
        : core.patchNamespacedSecret({ name: "s", namespace: "default", body: {} }, rawBody(text, contentType));
    expect(await codeOf(call)).toBe(code === 201 ? 200 : code);
    expect(api.requests.at(-1)?.status).toBe(code);
  });
});
