/**
 * The status writer runs a full garbage collection after every FULL_GC_EVERY_STATUS_WRITES writes
 * that land (server/limits.ts says why): a start-up that marks thousands of Receivers Ready runs
 * a few; failed writes do not count.
 */
import { expect, test } from "bun:test";
import type { ObjectKey, ReceiverStatus } from "../../server/api/receiver";
import type { KubeResult } from "../../server/kube/port";
import { FULL_GC_EVERY_STATUS_WRITES } from "../../server/limits";
import { silentLogger } from "../../server/runtime/log";
import { StatusWriter } from "../../server/receivers/status-writer";
import { waitFor } from "../support/stack";

test("a full collection after every FULL_GC_EVERY_STATUS_WRITES landed writes, not after failed ones", async () => {
  let collections = 0;
  let landed = 0;
  let version = 1;
  const status: ReceiverStatus = { conditions: [{ type: "Ready", status: "True", reason: "Succeeded", message: "" }] };
  const writer = new StatusWriter({
    patch: {
      patchReceiverStatus: async (key: ObjectKey): Promise<KubeResult<string>> => {
        // Every Receiver named "fail-…" is refused for good (404: deleted meanwhile).
        if (key.name.startsWith("fail-")) return { ok: false, reason: "not found", status: 404 };
        landed++;
        return { ok: true, value: String(++version) };
      },
    },
    backoff: { baseMs: 1, capMs: 1 },
    canWrite: () => true,
    subject: (k) => ({
      key: { namespace: "ns", name: k.slice(3) },
      desired: status,
      current: undefined,
      readiness: { kind: "ready", path: "/hook/x" },
    }),
    resourceVersionOf: () => "1",
    log: silentLogger,
    collectGarbage: () => collections++,
  });
  const writes = 2 * FULL_GC_EVERY_STATUS_WRITES + 1;
  for (let i = 0; i < writes; i++) writer.queue(`ns/r-${i}`);
  for (let i = 0; i < FULL_GC_EVERY_STATUS_WRITES; i++) writer.queue(`ns/fail-${i}`);
  await waitFor("every write", () => landed === writes);
  await waitFor("the queue to drain", () => collections === 2);
  expect(collections).toBe(2);
  writer.stop();
});
