/**
 * A Receiver's watch events mostly repeat what is known (our own status and finalizer writes):
 * what did not change is kept from before (api/receiver.ts sharedWith), and an unchanged decision
 * keeps its index entry, so long-lived parts are not replaced by equal copies.
 */
import { describe, expect, test } from "bun:test";
import { readReceiver, sharedWith, type ReceiverObject } from "../../server/api/receiver";
import { replaceAll } from "../../server/kube/port";
import { reconcilerRig } from "../support/reconciler";

const object = (over: { rv?: string; generation?: number; spec?: object; status?: object; finalizers?: string[] }) => ({
  metadata: {
    name: "r",
    namespace: "ns",
    uid: "u",
    generation: over.generation ?? 1,
    resourceVersion: over.rv ?? "1",
    finalizers: over.finalizers ?? [],
  },
  spec: over.spec ?? { type: "generic", secretRef: { name: "s" }, resources: [{ kind: "GitRepository", name: "app" }] },
  ...(over.status ? { status: over.status } : {}),
});
const read = (o: unknown) => readReceiver(o) as ReceiverObject;
const ready = { conditions: [{ type: "Ready", status: "True", reason: "Succeeded", message: "ok" }] };

describe("sharedWith", () => {
  const before = read(object({ status: ready }));
  test.each([
    ["a new resourceVersion only", object({ rv: "2", status: ready }), ["spec", "status", "finalizers", "key"], []],
    [
      "a finalizer added",
      object({ rv: "2", status: ready, finalizers: ["f"] }),
      ["spec", "status", "key"],
      ["finalizers"],
    ],
    [
      "a status written",
      object({ rv: "2", status: { ...ready, webhookPath: "/hook/x" } }),
      ["spec", "key"],
      ["status"],
    ],
    [
      "a spec changed",
      object({ rv: "2", generation: 2, status: ready, spec: { ...object({}).spec, events: ["push"] } }),
      ["status", "key"],
      ["spec"],
    ],
  ] as const)("%s: equal parts are before's, changed ones after's", (_, next, kept, changed) => {
    const after = read(next);
    const shared = sharedWith(before, after);
    expect(shared).toEqual(after);
    for (const part of kept) expect(shared[part]).toBe(before[part] as never);
    for (const part of changed) expect(shared[part]).toBe(after[part] as never);
    expect(shared.resourceVersion).toBe("2");
  });
});

test("a watch event that changes nothing the decision uses keeps the Receiver's index entry", () => {
  const { index, secrets, receivers } = reconcilerRig();
  replaceAll(secrets.sink, [
    { kind: "Secret", metadata: { name: "s", namespace: "ns", resourceVersion: "1" }, data: { token: "dA==" } },
  ]);
  replaceAll(receivers.sink, [object({})]);
  const entry = [...index.entries()][0];
  expect(entry).toBeDefined();
  receivers.sink.upsert(object({ rv: "2", status: ready, finalizers: ["finalizers.fluxcd.io"] }));
  expect([...index.entries()][0]).toBe(entry!);
  // A change the decision uses replaces it.
  receivers.sink.upsert(object({ rv: "3", generation: 2, spec: { ...object({}).spec, events: ["push"] } }));
  expect([...index.entries()][0]).not.toBe(entry!);
  expect([...index.entries()][0]!.generation).toBe(2);
});
