/**
 * A cluster without notification-controller has no Receiver CRD: fluxhook says so once, naming the
 * kustomize component that installs it, and starts serving as soon as the CRD appears.
 */
import { expect, test } from "bun:test";
import { BUILTIN_KINDS, startKubeApiServer } from "../kube";
import { createLogger } from "../../server/runtime/log";
import { createKubeClient } from "../../server/kube/client";
import { startFluxhook } from "../../server/server";
import { NO_RECEIVER_CRD } from "../../server/sources/cluster";
import { TEST_CONFIG, waitFor } from "../support/stack";

const isReceiver = (k: { group: string; kind: string }) =>
  k.group === "notification.toolkit.fluxcd.io" && k.kind === "Receiver";

test("no notification.toolkit.fluxcd.io/v1 Receivers in discovery: one error naming deploy/components/crd", async () => {
  await using api = await startKubeApiServer({ builtinKinds: BUILTIN_KINDS.filter((k) => !isReceiver(k)) });
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", encoding: "json", write: (line) => logs.push(JSON.parse(line)) });
  const tuning = { watchBackoff: { baseMs: 5, capMs: 10 } };
  await using fluxhook = await startFluxhook({
    config: TEST_CONFIG,
    log,
    kube: createKubeClient({ kubeConfig: api.kubeConfig(), log, tuning }),
    tuning,
  });
  await waitFor("the missing-CRD error", () => logs.some((l) => l.msg === NO_RECEIVER_CRD));
  // The Receiver list keeps failing (and is retried), but the explanation is given once.
  await waitFor(
    "three failed Receiver lists",
    () => logs.filter((l) => l.msg === "receivers: list failed, re-listing").length >= 3,
  );
  expect(logs.filter((l) => l.msg === NO_RECEIVER_CRD)).toEqual([
    expect.objectContaining({ level: "error", msg: expect.stringContaining("deploy/components/crd") }),
  ]);
  expect(fluxhook.ready()).toBe(false);
  // Installing the CRD is enough: the next list succeeds and the replica becomes ready.
  api.registerKind(BUILTIN_KINDS.find(isReceiver)!);
  await waitFor("ready once the CRD is installed", () => fluxhook.ready());
});

test("with the CRD installed, the missing-CRD error is not logged", async () => {
  await using api = await startKubeApiServer();
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", encoding: "json", write: (line) => logs.push(JSON.parse(line)) });
  await using fluxhook = await startFluxhook({
    config: TEST_CONFIG,
    log,
    kube: createKubeClient({ kubeConfig: api.kubeConfig(), log }),
  });
  await waitFor("ready", () => fluxhook.ready());
  await waitFor("the discovery answer", () => logs.some((l) => l.msg === "discovery: Receivers are served"));
  expect(logs.some((l) => l.msg === NO_RECEIVER_CRD)).toBe(false);
});
