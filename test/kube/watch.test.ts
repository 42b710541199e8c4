import { describe, expect, test } from "bun:test";
import { collectWatch, startKubeApiServer, type KubeApiServer, type SeenEvent } from "./index";
import { GIT } from "../support/kinds";
import { waitFor } from "../support/wait";

const SECRETS = "/api/v1/namespaces/default/secrets";

function secret(name: string, labels?: Record<string, string>, namespace = "default") {
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace, ...(labels ? { labels } : {}) } };
}

/** "TYPE name@rv" for compact whole-list assertions. */
function summary(events: SeenEvent[]): string[] {
  return events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}@${e.object.metadata?.resourceVersion}`);
}

async function settle(_api: KubeApiServer, events: SeenEvent[], n: number): Promise<string[]> {
  await waitFor(`${n} watch events (have ${events.length})`, () => events.length >= n);
  return summary(events);
}

describe("watch", () => {
  test("from a resourceVersion: the later events in order, then live ones", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    api.store.create(secret("b"));
    const from = api.store.resourceVersion;
    api.store.patch("v1", "Secret", "default", "a", { data: { k: "dg==" } });
    api.store.delete("v1", "Secret", "default", "b");
    api.store.create(secret("c"));
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: from });
    expect(await settle(api, watch.events, 3)).toEqual(["MODIFIED a@3", "DELETED b@4", "ADDED c@5"]);
    api.store.patch("v1", "Secret", "default", "c", { metadata: { labels: { x: "y" } } });
    expect(await settle(api, watch.events, 4)).toEqual(["MODIFIED a@3", "DELETED b@4", "ADDED c@5", "MODIFIED c@6"]);
    watch.abort();
    await waitFor("no open watch", () => api.openWatches === 0);
  });

  test.each([
    ["absent", undefined],
    ["empty", ""],
    ["0", "0"],
  ])("resourceVersion %s: synthetic ADDED for current objects, then follow", async (_, resourceVersion) => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    api.store.create(secret("b"));
    api.store.patch("v1", "Secret", "default", "a", { metadata: { labels: { v: "2" } } });
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion });
    expect(await settle(api, watch.events, 2)).toEqual(["ADDED a@3", "ADDED b@2"]);
    api.store.delete("v1", "Secret", "default", "a");
    expect(await settle(api, watch.events, 3)).toEqual(["ADDED a@3", "ADDED b@2", "DELETED a@4"]);
    watch.abort();
  });

  test.each([
    ["all namespaces", `/apis/${GIT}/gitrepositories`, ["ADDED one/app@1", "ADDED two/app@2"]],
    ["one namespace", `/apis/${GIT}/namespaces/two/gitrepositories`, ["ADDED two/app@2"]],
    ["legacy /watch/ path", `/apis/${GIT}/watch/namespaces/one/gitrepositories`, ["ADDED one/app@1"]],
  ])("%s", async (_, path, expected) => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), path, { resourceVersion: "0" });
    api.store.create({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: "one" } });
    api.store.create({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: "two" } });
    api.store.create(secret("not-a-repo", undefined, "one"));
    // A last write in each namespace marks "everything before has been delivered".
    api.store.create({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "marker", namespace: "one" } });
    api.store.create({ apiVersion: GIT, kind: "GitRepository", metadata: { name: "marker", namespace: "two" } });
    await waitFor('the event of "marker"', () => watch.events.some((e) => e.object.metadata?.name === "marker"));
    const seen = watch.events
      .filter((e) => e.object.metadata?.name !== "marker")
      .map(
        (e) =>
          `${e.type} ${e.object.metadata?.namespace}/${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}`,
      );
    expect(seen).toEqual(expected);
    expect(watch.events.every((e) => e.object.kind === "GitRepository")).toBe(true);
    watch.abort();
  });

  test("a label selector sees objects move in (ADDED) and out (DELETED)", async () => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, {
      resourceVersion: api.store.resourceVersion,
      labelSelector: "app=web",
    });
    api.store.create(secret("in", { app: "web" })); // 1 ADDED
    api.store.create(secret("out", { app: "db" })); // 2 not seen
    api.store.patch("v1", "Secret", "default", "in", { metadata: { labels: { app: "db" } } }); // 3 DELETED
    api.store.patch("v1", "Secret", "default", "out", { metadata: { labels: { app: "web" } } }); // 4 ADDED
    api.store.patch("v1", "Secret", "default", "out", { metadata: { labels: { tier: "x" } } }); // 5 MODIFIED
    api.store.delete("v1", "Secret", "default", "in"); // 6 not seen
    api.store.delete("v1", "Secret", "default", "out"); // 7 DELETED
    expect(await settle(api, watch.events, 5)).toEqual([
      "ADDED in@1",
      "DELETED in@3",
      "ADDED out@4",
      "MODIFIED out@5",
      "DELETED out@7",
    ]);
    watch.abort();
  });

  test("a field selector on the name", async () => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { fieldSelector: "metadata.name=b" });
    for (const name of ["a", "b", "c"]) api.store.create(secret(name));
    api.store.patch("v1", "Secret", "default", "b", { metadata: { labels: { x: "1" } } });
    expect(await settle(api, watch.events, 2)).toEqual(["ADDED b@2", "MODIFIED b@4"]);
    watch.abort();
  });

  test("bookmarks only when allowed, carrying just the current resourceVersion", async () => {
    await using api = await startKubeApiServer({ bookmarkIntervalMs: 10 });
    api.store.create(secret("a"));
    const plain = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "1" });
    const withBookmarks = await collectWatch(api.kubeConfig(), SECRETS, {
      resourceVersion: "1",
      allowWatchBookmarks: true,
    });
    await waitFor("3 events on the watch with bookmarks", () => withBookmarks.events.length >= 3);
    api.store.create(secret("b"));
    await waitFor("a bookmark at resourceVersion 2", () =>
      withBookmarks.events.some((e) => e.type === "BOOKMARK" && e.object.metadata?.resourceVersion === "2"),
    );
    expect(withBookmarks.events.find((e) => e.type === "BOOKMARK")?.object).toEqual({
      kind: "Secret",
      apiVersion: "v1",
      metadata: { resourceVersion: "1" },
    });
    // Another stream: it may be behind the one just waited on.
    await waitFor("an event on the watch without bookmarks", () => plain.events.length >= 1);
    expect(summary(plain.events)).toEqual(["ADDED b@2"]);
    plain.abort();
    withBookmarks.abort();
  });

  test("timeoutSeconds ends the stream cleanly", async () => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { timeoutSeconds: 1 });
    expect(await watch.ended).toBeNull();
    expect(api.openWatches).toBe(0);
  });

  test("a resourceVersion older than the history: one ERROR 410 Expired event, then a clean end", async () => {
    await using api = await startKubeApiServer();
    api.store.create(secret("a"));
    api.store.create(secret("b"));
    api.compact();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "1" });
    expect(await watch.ended).toBeNull();
    expect(watch.events).toEqual([
      {
        type: "ERROR",
        object: {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: "too old resource version: 1 (2)",
          reason: "Expired",
          code: 410,
        },
      },
    ]);
    // From the compaction point on, watching works.
    const current = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "2" });
    api.store.create(secret("c"));
    expect(await settle(api, current.events, 1)).toEqual(["ADDED c@3"]);
    current.abort();
  });

  test("the history is bounded by historySize", async () => {
    await using api = await startKubeApiServer({ historySize: 3 });
    for (const name of ["a", "b", "c", "d", "e"]) api.store.create(secret(name));
    const tooOld = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "1" });
    await tooOld.ended;
    expect(tooOld.events.map((e) => (e.object as { code?: number }).code)).toEqual([410]);
    const oldest = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "2" });
    expect(await settle(api, oldest.events, 3)).toEqual(["ADDED c@3", "ADDED d@4", "ADDED e@5"]);
    oldest.abort();
  });

  test("expireWatches sends open watches ERROR 410 and ends them", async () => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, {});
    await waitFor("1 open watch", () => api.openWatches === 1);
    expect(api.expireWatches()).toBe(1);
    expect(await watch.ended).toBeNull();
    expect(watch.events.map((e) => [e.type, (e.object as { code?: number }).code])).toEqual([["ERROR", 410]]);
  });

  test("a bad resourceVersion is a 400", async () => {
    await using api = await startKubeApiServer();
    const watch = await collectWatch(api.kubeConfig(), SECRETS, { resourceVersion: "abc" });
    expect(await watch.ended).toMatchObject({ statusCode: 400 });
  });

  test.each([
    ["clean", null],
    ["abrupt", "ECONNRESET"],
  ] as const)("dropWatches(%p) ends every open watch", async (mode, code) => {
    await using api = await startKubeApiServer();
    const kc = api.kubeConfig();
    const watches = await Promise.all([SECRETS, `/apis/${GIT}/gitrepositories`].map((p) => collectWatch(kc, p)));
    await waitFor("2 open watches", () => api.openWatches === 2);
    expect(api.dropWatches(mode)).toBe(2);
    for (const w of watches) {
      const err = await w.ended;
      if (code === null) expect(err).toBeNull();
      else expect(err).toMatchObject({ code });
    }
    expect(api.openWatches).toBe(0);
  });
});
