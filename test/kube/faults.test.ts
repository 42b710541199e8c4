import { describe, expect, test } from "bun:test";
import { ApiException, CoreV1Api, KubernetesObjectApi } from "@kubernetes/client-node";
import { collectWatch, mergePatch, requestTimeout, startKubeApiServer, type KubeApiServer } from "./index";
import { GIT } from "../support/kinds";
import { waitFor } from "../support/wait";

const SECRET = "/api/v1/namespaces/default/secrets/s";

async function setup(): Promise<{ api: KubeApiServer; core: CoreV1Api }> {
  const api = await startKubeApiServer();
  api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "default" } });
  return { api, core: api.kubeConfig().makeApiClient(CoreV1Api) };
}

/** Settle a call: the status code, or the error's code/name for a transport failure. */
async function outcome(call: Promise<unknown>): Promise<number | string> {
  try {
    await call;
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    // Transport errors carry a string code (ECONNRESET); a DOMException's code is a number.
    const e = error as { code?: unknown; name?: string };
    return typeof e.code === "string" ? e.code : (e.name ?? String(error));
  }
}

describe("fault injection", () => {
  test("500 twice, then success", async () => {
    const { api, core } = await setup();
    await using _ = api;
    const fault = api.faults.add({ method: "GET", path: SECRET, times: 2, respond: { status: 500 } });
    const read = () => outcome(core.readNamespacedSecret({ name: "s", namespace: "default" }));
    expect([await read(), await read(), await read()]).toEqual([500, 500, 200]);
    expect({ hits: fault.hits, remaining: fault.remaining, active: api.faults.list().length }).toEqual({
      hits: 2,
      remaining: 0,
      active: 0,
    });
    expect(api.requests.map((r) => [r.status, r.fault])).toEqual([
      [500, "status"],
      [500, "status"],
      [200, undefined],
    ]);
  });

  test.each([
    [409, undefined, "Conflict"],
    [429, 7, "TooManyRequests"],
    [500, undefined, "InternalError"],
    [503, 2, "ServiceUnavailable"],
  ] as const)("status %d (Retry-After %p) is a Kubernetes Status", async (status, retryAfterSeconds, reason) => {
    const { api, core } = await setup();
    await using _ = api;
    api.faults.add({ method: "PATCH", respond: { status, retryAfterSeconds, message: "injected for a test" } });
    try {
      await core.patchNamespacedSecret(
        { name: "s", namespace: "default", body: { metadata: { labels: { a: "b" } } } },
        mergePatch,
      );
      throw new Error("expected a failure");
    } catch (error) {
      if (!(error instanceof ApiException)) throw error;
      expect(error.code).toBe(status);
      expect(error.headers["retry-after"]).toBe(
        retryAfterSeconds === undefined ? undefined : String(retryAfterSeconds),
      );
      expect(JSON.parse(error.body as string)).toEqual({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "injected for a test",
        reason,
        code: status,
        ...(retryAfterSeconds === undefined ? {} : { details: { retryAfterSeconds } }),
      });
    }
    // The faulted request was not processed.
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.labels).toBeUndefined();
  });

  test("hang: the client times out, the request is never processed, clear() releases it", async () => {
    const { api, core } = await setup();
    await using _ = api;
    api.faults.add({ method: "PATCH", path: SECRET, respond: "hang" });
    const patch = (value: string) =>
      core.patchNamespacedSecret(
        { name: "s", namespace: "default", body: { metadata: { labels: { a: value } } } },
        requestTimeout(500, mergePatch),
      );
    const hung = outcome(patch("hung"));
    await waitFor("the request held by the fault", () => api.faults.hung === 1);
    expect(await hung).toBe("TimeoutError");
    expect(api.faults.hung).toBe(1);
    api.faults.clear();
    expect(api.faults.hung).toBe(0);
    expect(await outcome(patch("ok"))).toBe(200);
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.labels).toEqual({ a: "ok" });
    expect(api.requests.map((r) => [r.method, r.status, r.fault])).toEqual([
      ["PATCH", 0, "hang"],
      ["PATCH", 200, undefined],
    ]);
  });

  test("hang: stopping the server resets hung connections", async () => {
    const { api, core } = await setup();
    await using _ = api;
    api.faults.add({ respond: "hang", times: Infinity });
    const pending = outcome(core.readNamespacedSecret({ name: "s", namespace: "default" }));
    await waitFor("the request held by the fault", () => api.faults.hung === 1);
    await api.stop();
    expect(await pending).toBe("ECONNRESET");
  });

  test("hold: the request waits until released, then is processed and answered", async () => {
    const { api, core } = await setup();
    await using _ = api;
    const fault = api.faults.add({ method: "PATCH", path: SECRET, respond: "hold" });
    const held = outcome(
      core.patchNamespacedSecret(
        { name: "s", namespace: "default", body: { metadata: { labels: { a: "held" } } } },
        mergePatch,
      ),
    );
    await waitFor("the request held by the fault", () => api.faults.hung === 1);
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.labels).toBeUndefined();
    fault.remove();
    expect(await held).toBe(200);
    expect(api.store.get("v1", "Secret", "default", "s")?.metadata.labels).toEqual({ a: "held" });
    expect(api.requests.map((r) => [r.method, r.status, r.fault])).toEqual([["PATCH", 200, "hold"]]);
  });

  test("drop: the connection is reset with no answer", async () => {
    const { api, core } = await setup();
    await using _ = api;
    api.faults.add({ path: SECRET, respond: "drop" });
    expect(await outcome(core.readNamespacedSecret({ name: "s", namespace: "default" }))).toBe("ECONNRESET");
    expect(await outcome(core.readNamespacedSecret({ name: "s", namespace: "default" }))).toBe(200);
    expect(api.requests[0]).toMatchObject({ status: 0, fault: "drop" });
  });

  test("times: Infinity lasts until removed; a RegExp path and the watch flag narrow it", async () => {
    const { api, core } = await setup();
    await using _ = api;
    const fault = api.faults.add({ path: /\/secrets$/, watch: true, times: Infinity, respond: { status: 503 } });
    expect(await outcome(core.listNamespacedSecret({ namespace: "default" }))).toBe(200);
    for (let i = 0; i < 3; i++) {
      const watch = await collectWatch(api.kubeConfig(), "/api/v1/namespaces/default/secrets");
      expect(await watch.ended).toMatchObject({ statusCode: 503 });
    }
    expect(fault.hits).toBe(3);
    fault.remove();
    const watch = await collectWatch(api.kubeConfig(), "/api/v1/namespaces/default/secrets");
    await waitFor("1 watch event", () => watch.events.length === 1);
    watch.abort();
  });

  test("discovery can fail too", async () => {
    const { api } = await setup();
    await using _ = api;
    api.faults.add({ path: "/apis/source.toolkit.fluxcd.io/v1", respond: { status: 503 } });
    const objects = KubernetesObjectApi.makeApiClient(api.kubeConfig());
    const spec = {
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: "x", namespace: "default" },
    };
    await expect(objects.read(spec)).rejects.toThrow(
      /Failed to fetch resource metadata for source.toolkit.fluxcd.io\/v1\/GitRepository/,
    );
    expect(await outcome(objects.read(spec))).toBe(404);
  });

  test("stop refuses connections; the store still works; restart serves the same state on the same URL", async () => {
    const { api, core } = await setup();
    await using _ = api;
    const url = api.url;
    await api.stop();
    expect(await outcome(core.readNamespacedSecret({ name: "s", namespace: "default" }))).toBe("ECONNREFUSED");
    api.store.patch("v1", "Secret", "default", "s", { metadata: { labels: { while: "down" } } });
    await api.restart();
    expect(api.url).toBe(url);
    expect((await core.readNamespacedSecret({ name: "s", namespace: "default" })).metadata?.labels).toEqual({
      while: "down",
    });
  });
});
