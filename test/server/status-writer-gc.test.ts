/**
 * The reconciler runs a full garbage collection after every FULL_GC_EVERY_STATUS_WRITES status
 * writes that land (server/limits.ts says why): a start-up that marks thousands of Receivers Ready
 * runs a few; failed writes do not count.
 */
import { expect, test } from "bun:test";
import { RECEIVER_FINALIZER, type ObjectKey } from "../../server/api/receiver";
import { replaceAll, type KubeResult } from "../../server/kube/port";
import { FULL_GC_EVERY_STATUS_WRITES } from "../../server/limits";
import { reconcilerRig } from "../support/reconciler";
import { waitFor } from "../support/stack";

test("a full collection after every FULL_GC_EVERY_STATUS_WRITES landed writes, not after failed ones", async () => {
  let collections = 0;
  let landed = 0;
  let refused = 0;
  let version = 1;
  const { secrets, receivers, reconciler } = reconcilerRig({
    writer: {
      kube: {
        patchReceiverFinalizers: async (): Promise<KubeResult<string>> => {
          throw new Error("the Receivers of this test carry Flux's finalizer already");
        },
        patchReceiverStatus: async (key: ObjectKey): Promise<KubeResult<string>> => {
          // Every Receiver named "fail-…" is refused for good (404: deleted meanwhile).
          if (key.name.startsWith("fail-")) {
            refused++;
            return { ok: false, reason: "not found", status: 404 };
          }
          landed++;
          return { ok: true, value: String(++version) };
        },
      },
      canWrite: () => true,
      backoff: { baseMs: 1, capMs: 1 },
      collectGarbage: () => collections++,
    },
  });
  const receiver = (name: string) => ({
    metadata: {
      name,
      namespace: "ns",
      generation: 1,
      uid: name,
      resourceVersion: "1",
      finalizers: [RECEIVER_FINALIZER],
    },
    spec: { type: "generic", secretRef: { name: "token" }, resources: [{ kind: "GitRepository", name: "app" }] },
  });
  const writes = 2 * FULL_GC_EVERY_STATUS_WRITES + 1;
  replaceAll(secrets.sink, [{ metadata: { name: "token", namespace: "ns" }, data: { token: "dA==" } }]);
  replaceAll(receivers.sink, [
    ...Array.from({ length: writes }, (_, i) => receiver(`r-${i}`)),
    ...Array.from({ length: FULL_GC_EVERY_STATUS_WRITES }, (_, i) => receiver(`fail-${i}`)),
  ]);
  await waitFor("every write", () => landed === writes && refused === FULL_GC_EVERY_STATUS_WRITES);
  expect(collections).toBe(2);
  reconciler.stop();
});
