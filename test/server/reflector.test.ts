/**
 * fluxhook's reflector (server/kube/reflector.ts) through the real client, on answers kube-apiserver
 * gives that the cluster tier met: a 429 on a watch while its watch cache initialises, and an
 * empty metadata list whose items are null.
 */
import { describe, expect, test } from "bun:test";
import { createKubeClient } from "../../server/kube/client";
import type { WatchSink } from "../../server/kube/port";
import { createLogger } from "../../server/runtime/log";
import { startKubeApiServer } from "../kube";
import { RECEIVER } from "../support/kinds";
import { waitFor } from "../support/wait";

const RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/receivers";

function recordingSink() {
  const names: string[] = [];
  let lists = 0;
  const sink: WatchSink = {
    listPage: (items) => {
      lists++;
      for (const o of items) names.push((o as { metadata: { name: string } }).metadata.name);
    },
    listEnd: () => {},
    upsert: (o) => names.push((o as { metadata: { name: string } }).metadata.name),
    remove: () => {},
  };
  return { sink, names, lists: () => lists };
}

function client(api: Awaited<ReturnType<typeof startKubeApiServer>>) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", encoding: "json", write: (l) => lines.push(JSON.parse(l)) });
  const kube = createKubeClient({
    kubeConfig: api.kubeConfig(),
    log,
    tuning: { watchBackoff: { baseMs: 10, capMs: 100 } },
  });
  return { kube, lines };
}

const receiver = (name: string) => ({
  apiVersion: RECEIVER,
  kind: "Receiver",
  metadata: { name, namespace: "default" },
  spec: { type: "generic" },
});

describe("the reflector on kube-apiserver's answers", () => {
  test("a 429 on the watch waits Retry-After and watches again from the same version, without re-listing or an error", async () => {
    await using api = await startKubeApiServer();
    api.faults.add({ path: RECEIVERS, watch: true, times: 2, respond: { status: 429, retryAfterSeconds: 0 } });
    const { kube, lines } = client(api);
    const recorded = recordingSink();
    const informer = kube.watchReceivers(undefined, recorded.sink);
    await waitFor("a third watch of Receivers", () => api.count({ path: RECEIVERS, watch: true }) >= 3);
    api.store.create(receiver("after"));
    await waitFor('the Receiver "after" recorded', () => recorded.names.includes("after"));
    informer.stop();
    expect(recorded.lists()).toBe(1);
    expect(api.count({ path: RECEIVERS, watch: false })).toBe(1);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
    expect(lines.filter((l) => /asked to wait/.test(String(l.msg))).length).toBe(2);
  });

  test("an empty PartialObjectMetadataList (items: null) is an empty list, and the watch starts", async () => {
    await using api = await startKubeApiServer();
    const { kube, lines } = client(api);
    const recorded = recordingSink();
    const informer = kube.watchSecretMetadata("empty", recorded.sink);
    await waitFor("the informer synced", () => informer.synced);
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "later", namespace: "empty" } });
    await waitFor('the Receiver "later" recorded', () => recorded.names.includes("later"));
    informer.stop();
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
  });
});
