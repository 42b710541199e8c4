import { describe, expect, test } from "bun:test";
import {
  ApisApi,
  CoordinationV1Api,
  CoreApi,
  CoreV1Api,
  EventsV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
} from "@kubernetes/client-node";
import { BUILTIN_KINDS, startKubeApiServer } from "./index";

const FLUX_KINDS = BUILTIN_KINDS.filter((k) => k.group.includes("fluxcd.io"));

describe("discovery", () => {
  test("core versions, resources and the version endpoint", async () => {
    await using api = await startKubeApiServer();
    const kc = api.kubeConfig();
    expect((await kc.makeApiClient(CoreApi).getAPIVersions()).versions).toEqual(["v1"]);
    const core = await kc.makeApiClient(CoreV1Api).getAPIResources();
    expect(core.groupVersion).toBe("v1");
    expect(core.resources.map((r) => [r.name, r.kind, r.namespaced])).toEqual([
      ["namespaces", "Namespace", false],
      ["namespaces/status", "Namespace", false],
      ["secrets", "Secret", true],
      ["events", "Event", true],
    ]);
    expect(core.resources[0]!.verbs).toContain("watch");
    expect(core.resources[1]!.verbs).toEqual(["get", "patch", "update"]);
    expect((await kc.makeApiClient(CoordinationV1Api).getAPIResources()).resources.map((r) => r.name)).toEqual([
      "leases",
    ]);
    expect((await kc.makeApiClient(EventsV1Api).getAPIResources()).resources.map((r) => r.name)).toEqual(["events"]);
    expect((await kc.makeApiClient(VersionApi).getCode()).major).toBe("1");
  });

  test("the group list names every group with its preferred version", async () => {
    await using api = await startKubeApiServer();
    const groups = (await api.kubeConfig().makeApiClient(ApisApi).getAPIVersions()).groups;
    const byName = Object.fromEntries(groups.map((g) => [g.name, g.preferredVersion?.groupVersion]));
    expect(byName).toEqual({
      "events.k8s.io": "events.k8s.io/v1",
      "coordination.k8s.io": "coordination.k8s.io/v1",
      "notification.toolkit.fluxcd.io": "notification.toolkit.fluxcd.io/v1",
      "source.toolkit.fluxcd.io": "source.toolkit.fluxcd.io/v1",
      "kustomize.toolkit.fluxcd.io": "kustomize.toolkit.fluxcd.io/v1",
      "helm.toolkit.fluxcd.io": "helm.toolkit.fluxcd.io/v2",
      "image.toolkit.fluxcd.io": "image.toolkit.fluxcd.io/v1",
      "source.extensions.fluxcd.io": "source.extensions.fluxcd.io/v1beta1",
    });
  });

  // KubernetesObjectApi maps kind → plural through /apis/{g}/{v}; every Flux kind must resolve.
  test.each(FLUX_KINDS.map((k) => [k.kind, k] as const))("KubernetesObjectApi resolves %s", async (_, kind) => {
    await using api = await startKubeApiServer();
    const apiVersion = `${kind.group}/${kind.version}`;
    api.store.create({ apiVersion, kind: kind.kind, metadata: { name: "app", namespace: "flux-system" }, spec: {} });
    const objects = KubernetesObjectApi.makeApiClient(api.kubeConfig());
    const read = await objects.read({
      apiVersion,
      kind: kind.kind,
      metadata: { name: "app", namespace: "flux-system" },
    });
    expect(read.metadata?.name).toBe("app");
    // The plural came from discovery.
    expect(api.requests.map((r) => `${r.method} ${r.path}`).slice(0, 2)).toEqual([
      `GET /apis/${apiVersion}`,
      `GET /apis/${apiVersion}/namespaces/flux-system/${kind.plural}/app`,
    ]);
    const patched = await objects.patch(
      {
        apiVersion,
        kind: kind.kind,
        metadata: { name: "app", namespace: "flux-system", annotations: { "reconcile.fluxcd.io/requestedAt": "t1" } },
      },
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    );
    expect(patched.metadata?.annotations).toEqual({ "reconcile.fluxcd.io/requestedAt": "t1" });
    const list = await objects.list(apiVersion, kind.kind, "flux-system");
    expect(list.items.map((i) => i.metadata?.name)).toEqual(["app"]);
    expect(api.count({ method: "GET", path: `/apis/${apiVersion}` })).toBe(1);
  });

  test("a kind registered by a test is served and discoverable at once", async () => {
    await using api = await startKubeApiServer();
    api.registerKind({ group: "example.com", version: "v1alpha1", kind: "Widget", plural: "widgets" });
    api.registerKind({ group: "example.com", version: "v1", kind: "Widget", plural: "widgets", namespaced: false });
    const kc = api.kubeConfig();
    const group = (await kc.makeApiClient(ApisApi).getAPIVersions()).groups.find((g) => g.name === "example.com");
    expect(group?.versions.map((v) => v.version)).toEqual(["v1", "v1alpha1"]);
    expect(group?.preferredVersion?.version).toBe("v1");
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await objects.create({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
    expect(api.store.get("example.com/v1", "Widget", undefined, "w")?.metadata.namespace).toBeUndefined();
    // Namespaced in v1alpha1: KubernetesObjectApi puts it in the context's namespace.
    await objects.create({ apiVersion: "example.com/v1alpha1", kind: "Widget", metadata: { name: "w" } });
    expect(api.requests.at(-1)?.path).toBe("/apis/example.com/v1alpha1/namespaces/default/widgets");
  });
});
