import { describe, expect, test } from "bun:test";
import {
  CoreV1Api,
  type Informer,
  type KubernetesObject,
  type ListWatch,
  makeInformer,
  type V1Secret,
} from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "./index";
import { waitFor } from "../support/wait";

const SECRETS = "/api/v1/namespaces/default/secrets";

function secret(name: string, data?: Record<string, string>) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: "default" },
    ...(data ? { stringData: data } : {}),
  };
}

interface Probe {
  informer: Informer<V1Secret> & ListWatch<V1Secret>;
  log: string[];
  errors: unknown[];
  names(): string[];
  lists(): number;
}

/**
 * An informer on default/secrets recording callbacks. client-node's ListWatch does not restart
 * itself after an error (only after a clean end, a 410, or its own timeout), so, like a real
 * controller, the probe restarts it from the error handler when `restartOnError` is set.
 */
async function probe(
  api: KubeApiServer,
  options: { restartOnError?: boolean; labelSelector?: string } = {},
): Promise<Probe> {
  const kc = api.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Secret>(
    kc,
    SECRETS,
    () => core.listNamespacedSecret({ namespace: "default", labelSelector: options.labelSelector }),
    options.labelSelector,
  ) as Informer<V1Secret> & ListWatch<V1Secret>;
  const log: string[] = [];
  const errors: unknown[] = [];
  const record = (verb: string) => (obj: KubernetesObject) =>
    log.push(`${verb} ${obj.metadata?.name}@${obj.metadata?.resourceVersion}`);
  informer.on("add", record("add"));
  informer.on("update", record("update"));
  informer.on("delete", record("delete"));
  informer.on("error", (err) => {
    errors.push(err);
    if (options.restartOnError) setTimeout(() => void informer.start(), 5);
  });
  await informer.start();
  return {
    informer,
    log,
    errors,
    names: () =>
      informer
        .list()
        .map((o) => o.metadata!.name!)
        .sort(),
    lists: () => api.count({ method: "GET", path: SECRETS, watch: false }),
  };
}

describe("informer (makeInformer / ListWatch)", () => {
  test("lists, then delivers add, update and delete", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("before"));
    const p = await probe(api);
    expect(p.log).toEqual(["add before@1"]);
    await waitFor("1 open watch", () => api.openWatches === 1);
    api.store.create(secret("a"));
    api.store.patch("v1", "Secret", "default", "a", { stringData: { k: "v" } });
    api.store.delete("v1", "Secret", "default", "before");
    await waitFor("4 informer events", () => p.log.length === 4);
    expect(p.log).toEqual(["add before@1", "add a@2", "update a@3", "delete before@4"]);
    expect(p.names()).toEqual(["a"]);
    expect(p.informer.latestResourceVersion()).toBe("4");
    await p.informer.stop();
  });

  test("a watch that gets ERROR 410 re-lists and carries on", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    const p = await probe(api);
    await waitFor("1 open watch", () => api.openWatches === 1);
    api.expireWatches();
    await waitFor("a re-list and a new watch", () => p.lists() === 2 && api.openWatches === 1);
    api.store.create(secret("b"));
    await waitFor("2 objects in the informer's cache", () => p.names().length === 2);
    expect(p.names()).toEqual(["a", "b"]);
    expect(p.errors).toEqual([]);
    await p.informer.stop();
  });

  test("restarted after its history was compacted: 410, re-list, deletions noticed", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    api.store.create(secret("b"));
    const p = await probe(api);
    await waitFor("1 open watch", () => api.openWatches === 1);
    await p.informer.stop();
    await waitFor("no open watch", () => api.openWatches === 0);
    api.store.delete("v1", "Secret", "default", "a");
    api.store.create(secret("c"));
    api.compact();
    await p.informer.start();
    await waitFor("the informer to catch up", () => p.names().join() === "b,c");
    // The informer watches again after handling the re-list, a moment after its cache is current.
    await waitFor("the watch from the re-list's version", () => api.count({ watch: true }) === 3);
    expect(p.lists()).toBe(2);
    // A re-list reports deletions with the last state the informer had.
    expect(p.log).toEqual(["add a@1", "add b@2", "delete a@1", "add c@4"]);
    expect(api.requests.filter((r) => r.watch).map((r) => r.query.resourceVersion)).toEqual(["2", "2", "4"]);
    await p.informer.stop();
  });

  test("dropWatches('clean'): the informer reconnects from its resourceVersion without re-listing", async () => {
    await using api = await startKubeApiServer();
    const p = await probe(api);
    await waitFor("1 open watch", () => api.openWatches === 1);
    api.store.create(secret("a"));
    await waitFor("1 informer event", () => p.log.length === 1);
    api.dropWatches("clean");
    await waitFor("a second watch, open", () => api.count({ watch: true }) === 2 && api.openWatches === 1);
    api.store.create(secret("b"));
    await waitFor("2 informer events", () => p.log.length === 2);
    expect(p.log).toEqual(["add a@1", "add b@2"]);
    expect(p.lists()).toBe(1);
    expect(api.requests.filter((r) => r.watch).map((r) => r.query.resourceVersion)).toEqual(["0", "1"]);
    await p.informer.stop();
  });

  test("dropWatches() (connection reset): an error; restarted, it resumes without re-listing", async () => {
    await using api = await startKubeApiServer();
    const p = await probe(api, { restartOnError: true });
    await waitFor("1 open watch", () => api.openWatches === 1);
    api.store.create(secret("a"));
    await waitFor("1 informer event", () => p.log.length === 1);
    api.dropWatches();
    api.store.create(secret("b")); // made while no watch is open
    await waitFor("2 informer events", () => p.log.length === 2);
    expect(p.log).toEqual(["add a@1", "add b@2"]);
    expect(p.errors).toEqual([expect.objectContaining({ code: "ECONNRESET" })]);
    expect(p.lists()).toBe(1);
    await p.informer.stop();
  });

  test("API server down for a while, changed meanwhile: the informer catches up after restart", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    api.store.create(secret("b"));
    const p = await probe(api, { restartOnError: true });
    await waitFor("1 open watch", () => api.openWatches === 1);
    const url = api.url;
    await api.stop();
    expect(api.running).toBe(false);
    await waitFor("connection refused while down", () =>
      p.errors.some((e) => (e as { code?: string }).code === "ECONNREFUSED"),
    );
    api.store.patch("v1", "Secret", "default", "a", { stringData: { changed: "yes" } });
    api.store.delete("v1", "Secret", "default", "b");
    api.store.create(secret("c"));
    await api.restart();
    expect(api.url).toBe(url);
    await waitFor("the informer to catch up", () => p.names().join() === "a,c");
    expect(p.log).toEqual(["add a@1", "add b@2", "update a@3", "delete b@4", "add c@5"]);
    expect(p.lists()).toBe(1); // resumed from its resourceVersion: the history covered the outage
    await p.informer.stop();
  });

  test("a label-selected informer", async () => {
    await using api = await startKubeApiServer();
    api.store.create({
      ...secret("mine"),
      metadata: { name: "mine", namespace: "default", labels: { owner: "fluxhook" } },
    });
    api.store.create(secret("other"));
    const p = await probe(api, { labelSelector: "owner=fluxhook" });
    await waitFor("1 open watch", () => api.openWatches === 1);
    api.store.patch("v1", "Secret", "default", "other", { metadata: { labels: { owner: "fluxhook" } } });
    await waitFor("2 objects in the informer's cache", () => p.names().length === 2);
    expect(api.requests.filter((r) => r.watch).map((r) => r.query.labelSelector)).toEqual(["owner=fluxhook"]);
    await p.informer.stop();
  });
});
