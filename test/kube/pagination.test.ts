/**
 * Paginated lists through client-node: pages from one snapshot, continue tokens, and 410 Expired
 * for a token whose snapshot is gone.
 */
import { describe, expect, test } from "bun:test";
import { ApiException, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { startKubeApiServer } from "./index";
import { RECEIVER } from "../support/kinds";

const secret = (namespace: string, name: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  data: {},
});

describe("limit and continue", () => {
  test("pages cover the list once, in order, from the first page's snapshot", async () => {
    await using api = await startKubeApiServer();
    for (const name of ["a", "b", "c", "d", "e"]) api.store.create(secret("ns", name));
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    const first = await core.listNamespacedSecret({ namespace: "ns", limit: 2 });
    expect(first.items.map((s) => s.metadata!.name)).toEqual(["a", "b"]);
    expect(first.metadata!.remainingItemCount).toBe(3);
    const snapshotVersion = first.metadata!.resourceVersion;
    // Changes after the first page do not show in the rest of this list (one consistent snapshot).
    api.store.create(secret("ns", "f"));
    api.store.delete("v1", "Secret", "ns", "c");
    const second = await core.listNamespacedSecret({
      namespace: "ns",
      limit: 2,
      _continue: first.metadata!._continue!,
    });
    const third = await core.listNamespacedSecret({
      namespace: "ns",
      limit: 2,
      _continue: second.metadata!._continue!,
    });
    expect([second, third].map((l) => l.items.map((s) => s.metadata!.name))).toEqual([["c", "d"], ["e"]]);
    expect([second.metadata!.resourceVersion, third.metadata!.resourceVersion]).toEqual([
      snapshotVersion,
      snapshotVersion,
    ]);
    expect(third.metadata!._continue).toBeUndefined();
    expect(third.metadata!.remainingItemCount).toBeUndefined();
  });

  test("a limit that covers the list, or none, gives one page without a token", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("ns", "a"));
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    for (const limit of [undefined, 1, 500]) {
      const list = await core.listSecretForAllNamespaces({ limit });
      expect({ names: list.items.map((s) => s.metadata!.name), continue: list.metadata!._continue }).toEqual({
        names: ["a"],
        continue: undefined,
      });
    }
  });

  test("custom resources page too", async () => {
    await using api = await startKubeApiServer();
    for (const name of ["r1", "r2", "r3"]) {
      api.store.create({
        apiVersion: RECEIVER,
        kind: "Receiver",
        metadata: { name, namespace: "ns" },
        spec: { type: "generic", resources: [] },
      });
    }
    const custom = api.kubeConfig().makeApiClient(CustomObjectsApi);
    const plural = { group: "notification.toolkit.fluxcd.io", version: "v1", plural: "receivers" };
    const first = await custom.listClusterCustomObject({ ...plural, limit: 2 });
    const rest = await custom.listClusterCustomObject({ ...plural, limit: 2, _continue: first.metadata.continue });
    expect([...first.items, ...rest.items].map((r: any) => r.metadata.name)).toEqual(["r1", "r2", "r3"]);
  });

  test("after compaction a continue token is 410 Expired; a token for another list is 400", async () => {
    await using api = await startKubeApiServer();
    for (const name of ["a", "b", "c"]) api.store.create(secret("ns", name));
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    const first = await core.listNamespacedSecret({ namespace: "ns", limit: 1 });
    const failure = async (call: Promise<unknown>) => {
      try {
        await call;
      } catch (error) {
        if (error instanceof ApiException) return { code: error.code, reason: JSON.parse(error.body as string).reason };
        throw error;
      }
      throw new Error("expected the call to fail");
    };
    expect(
      await failure(core.listNamespacedSecret({ namespace: "other", limit: 1, _continue: first.metadata!._continue! })),
    ).toEqual({ code: 400, reason: "BadRequest" });
    api.compact();
    expect(
      await failure(core.listNamespacedSecret({ namespace: "ns", limit: 1, _continue: first.metadata!._continue! })),
    ).toEqual({ code: 410, reason: "Expired" });
  });
});
