/**
 * Deletion with finalizers, as kube-apiserver does it (generic registry store): DELETE marks an
 * object that has finalizers (deletionTimestamp, deletionGracePeriodSeconds 0, generation + 1) in
 * one MODIFIED event; the write that removes the last finalizer deletes it (DELETED); no finalizer
 * may be added meanwhile. Through client-node, against Receivers, the kind fluxhook finalizes.
 */
import { describe, expect, test } from "bun:test";
import { ApiException, CustomObjectsApi, PatchStrategy } from "@kubernetes/client-node";
import { collectWatch, mergePatch, patchAs, startKubeApiServer, type KubeApiServer } from "./index";
import { RECEIVER } from "../support/kinds";
import { waitFor } from "../support/wait";

const RECEIVERS = { group: "notification.toolkit.fluxcd.io", version: "v1", plural: "receivers" } as const;
const REF = { ...RECEIVERS, namespace: "default", name: "hook" } as const;
const FINALIZER = "finalizers.fluxcd.io";

interface Receiver {
  metadata: {
    name: string;
    resourceVersion: string;
    generation: number;
    finalizers?: string[];
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

async function setup(finalizers: string[] = [FINALIZER]) {
  const api = await startKubeApiServer();
  const custom = api.kubeConfig().makeApiClient(CustomObjectsApi);
  await custom.createNamespacedCustomObject({
    ...RECEIVERS,
    namespace: "default",
    body: {
      apiVersion: RECEIVER,
      kind: "Receiver",
      metadata: { name: "hook", finalizers },
      spec: { type: "generic", resources: [], secretRef: { name: "token" } },
    },
  });
  const watch = await collectWatch(api.kubeConfig(), "/apis/notification.toolkit.fluxcd.io/v1/receivers", {
    resourceVersion: api.store.resourceVersion,
  });
  return { api, custom, watch, [Symbol.asyncDispose]: async () => (watch.abort(), await api.stop()) };
}

const events = (watch: { events: { type: string; object: { metadata?: { resourceVersion?: string } } }[] }) =>
  watch.events.map((e) => `${e.type}@${e.object.metadata?.resourceVersion}`);

async function failure(call: Promise<unknown>) {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    return { code: error.code, body: typeof error.body === "string" ? JSON.parse(error.body) : error.body };
  }
  throw new Error("expected the call to fail");
}

const stored = (api: KubeApiServer) =>
  api.store.get(RECEIVER, "Receiver", "default", "hook") as unknown as Receiver | undefined;

describe("deletion with finalizers", () => {
  test("DELETE marks the object (one MODIFIED event) and keeps it; deleting again changes nothing", async () => {
    await using t = await setup();
    const marked = (await t.custom.deleteNamespacedCustomObject(REF)) as Receiver;
    expect(marked.metadata).toMatchObject({
      finalizers: [FINALIZER],
      deletionGracePeriodSeconds: 0,
      generation: 2,
      resourceVersion: "2",
    });
    expect(marked.metadata.deletionTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    await waitFor("1 watch event", () => t.watch.events.length === 1);
    expect(events(t.watch)).toEqual(["MODIFIED@2"]);
    const again = (await t.custom.deleteNamespacedCustomObject(REF)) as Receiver;
    expect(again.metadata).toEqual(marked.metadata);
    expect(t.api.store.resourceVersion).toBe("2");
  });

  test.each([
    [
      "merge patch",
      (c: CustomObjectsApi) =>
        c.patchNamespacedCustomObject({ ...REF, body: { metadata: { finalizers: null } } }, mergePatch),
    ],
    [
      "JSON patch",
      (c: CustomObjectsApi) =>
        c.patchNamespacedCustomObject(
          { ...REF, body: [{ op: "remove", path: "/metadata/finalizers/0" }] },
          patchAs(PatchStrategy.JsonPatch),
        ),
    ],
    [
      "update",
      async (c: CustomObjectsApi) => {
        const current = (await c.getNamespacedCustomObject(REF)) as Receiver;
        return c.replaceNamespacedCustomObject({
          ...REF,
          body: { ...current, metadata: { ...current.metadata, finalizers: [] } },
        });
      },
    ],
  ])("the %s that removes the last finalizer deletes the object (DELETED)", async (_, remove) => {
    await using t = await setup();
    await t.custom.deleteNamespacedCustomObject(REF);
    const last = (await remove(t.custom)) as Receiver;
    expect(last.metadata.deletionTimestamp).toBeDefined();
    expect((await failure(t.custom.getNamespacedCustomObject(REF))).code).toBe(404);
    await waitFor("2 watch events", () => t.watch.events.length === 2);
    expect(events(t.watch)).toEqual(["MODIFIED@2", "DELETED@3"]);
    const gone = t.watch.events[1]!.object as unknown as Receiver;
    expect(gone.metadata).toMatchObject({ name: "hook", deletionGracePeriodSeconds: 0 });
    expect(gone.metadata.finalizers ?? []).toEqual([]);
  });

  test("of two finalizers, removing one keeps the object; the second removal deletes it", async () => {
    await using t = await setup(["example.com/other", FINALIZER]);
    await t.custom.deleteNamespacedCustomObject(REF);
    await t.custom.patchNamespacedCustomObject({ ...REF, body: { metadata: { finalizers: [FINALIZER] } } }, mergePatch);
    expect(stored(t.api)?.metadata).toMatchObject({ finalizers: [FINALIZER], generation: 2 });
    await t.custom.patchNamespacedCustomObject({ ...REF, body: { metadata: { finalizers: [] } } }, mergePatch);
    expect(stored(t.api)).toBeUndefined();
    await waitFor("3 watch events", () => t.watch.events.length === 3);
    expect(t.watch.events.map((e) => e.type)).toEqual(["MODIFIED", "MODIFIED", "DELETED"]);
  });

  test.each([
    ["added", [FINALIZER, "example.com/late"], '[]string{"example.com/late"}'],
    ["swapped for another", ["example.com/late"], '[]string{"example.com/late"}'],
  ])("a finalizer %s while the object is being deleted: 422, nothing written", async (_, finalizers, found) => {
    await using t = await setup();
    await t.custom.deleteNamespacedCustomObject(REF);
    const refused = await failure(
      t.custom.patchNamespacedCustomObject({ ...REF, body: { metadata: { finalizers } } }, mergePatch),
    );
    expect(refused.code).toBe(422);
    expect(refused.body).toMatchObject({
      reason: "Invalid",
      details: { causes: [{ reason: "FieldValueForbidden", field: "metadata.finalizers" }] },
    });
    expect(refused.body.message).toContain(
      `no new finalizers can be added if the object is being deleted, found new finalizers ${found}`,
    );
    expect(stored(t.api)?.metadata.finalizers).toEqual([FINALIZER]);
    expect(t.api.store.resourceVersion).toBe("2");
  });

  test("a finalizer added before DELETE holds it; the same list reordered is accepted while deleting", async () => {
    await using t = await setup(["a.example.com/x", "b.example.com/y"]);
    await t.custom.deleteNamespacedCustomObject(REF);
    await t.custom.patchNamespacedCustomObject(
      { ...REF, body: { metadata: { finalizers: ["b.example.com/y", "a.example.com/x"] } } },
      mergePatch,
    );
    expect(stored(t.api)?.metadata.finalizers).toEqual(["b.example.com/y", "a.example.com/x"]);
  });

  test("status and spec stay writable while deleting; the deletion fields are the server's", async () => {
    await using t = await setup();
    const marked = (await t.custom.deleteNamespacedCustomObject(REF)) as Receiver;
    await t.custom.patchNamespacedCustomObjectStatus(
      { ...REF, body: { status: { observedGeneration: 2 } } },
      mergePatch,
    );
    const patched = (await t.custom.patchNamespacedCustomObject(
      {
        ...REF,
        body: { metadata: { deletionTimestamp: null, deletionGracePeriodSeconds: 30 }, spec: { suspend: true } },
      },
      mergePatch,
    )) as Receiver;
    expect(patched.metadata).toMatchObject({
      deletionTimestamp: marked.metadata.deletionTimestamp,
      deletionGracePeriodSeconds: 0,
      generation: 3,
    });
    expect(patched.status).toEqual({ observedGeneration: 2 });
  });

  test("without finalizers DELETE removes at once (one DELETED event), generation untouched", async () => {
    await using t = await setup([]);
    const last = (await t.custom.deleteNamespacedCustomObject(REF)) as Receiver;
    expect(last.metadata).toMatchObject({ generation: 1, resourceVersion: "2" });
    expect(last.metadata.deletionTimestamp).toBeUndefined();
    await waitFor("1 watch event", () => t.watch.events.length === 1);
    expect(events(t.watch)).toEqual(["DELETED@2"]);
  });

  test("a create ignores deletion fields in the body", async () => {
    await using api = await startKubeApiServer();
    const custom = api.kubeConfig().makeApiClient(CustomObjectsApi);
    const made = (await custom.createNamespacedCustomObject({
      ...RECEIVERS,
      namespace: "default",
      body: {
        apiVersion: RECEIVER,
        kind: "Receiver",
        metadata: { name: "hook", deletionTimestamp: "2020-01-01T00:00:00Z", deletionGracePeriodSeconds: 5 },
        spec: {},
      },
    })) as Receiver;
    expect(made.metadata.deletionTimestamp).toBeUndefined();
    expect(made.metadata.deletionGracePeriodSeconds).toBeUndefined();
  });
});
