/**
 * The finalizer write is conditional on what it was decided on, through the real client against
 * the API test server: a decision made on a stale view never replaces a list another controller
 * (or a person) wrote meanwhile. The stale-empty case is the race a loaded machine showed: our own
 * add's answer came back before its watch event, and a re-run decided on the old, empty list.
 */
import { expect, test } from "bun:test";
import { RECEIVER_API_VERSION, RECEIVER_FINALIZER } from "../../server/api/receiver";
import { createKubeClient } from "../../server/kube/client";
import { createLogger } from "../../server/runtime/log";
import { startKubeApiServer } from "../kube";

const KEY = { namespace: "ns", name: "receiver" };

test.each([
  {
    name: "an absent list, decided on a stale resourceVersion, is refused",
    decidedOn: [] as string[],
    stale: true,
    expected: { ok: false, status: 422, finalizers: ["example.com/keep"] },
  },
  {
    name: "an absent list, decided on the current resourceVersion, gets the finalizer",
    decidedOn: [] as string[],
    stale: false,
    expected: { ok: true, status: undefined, finalizers: [RECEIVER_FINALIZER] },
  },
  {
    name: "a list that changed since the decision is refused",
    decidedOn: ["example.com/old"] as string[],
    stale: true,
    expected: { ok: false, status: 422, finalizers: ["example.com/keep"] },
  },
])("$name", async ({ decidedOn, stale, expected }) => {
  await using api = await startKubeApiServer();
  const created = api.store.create({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { ...KEY, ...(decidedOn.length > 0 ? { finalizers: decidedOn } : {}) },
    spec: { type: "generic", resources: [] },
  }) as unknown as { metadata: { resourceVersion: string } };
  let version = created.metadata.resourceVersion;
  if (stale) {
    api.store.patch(RECEIVER_API_VERSION, "Receiver", KEY.namespace, KEY.name, {
      metadata: { finalizers: ["example.com/keep"] },
    });
  } else
    version = (api.store.get(RECEIVER_API_VERSION, "Receiver", KEY.namespace, KEY.name) as any).metadata
      .resourceVersion;
  const kube = createKubeClient({
    kubeConfig: api.kubeConfig(),
    log: createLogger({ level: "error", encoding: "json", write: () => {} }),
  });
  const result = await kube.patchReceiverFinalizers(KEY, decidedOn, [...decidedOn, RECEIVER_FINALIZER], version);
  const stored = api.store.get(RECEIVER_API_VERSION, "Receiver", KEY.namespace, KEY.name) as any;
  expect({
    ok: result.ok,
    status: result.ok ? undefined : result.status,
    finalizers: stored.metadata.finalizers,
  }).toEqual(expected);
});
