/**
 * A stalled body at the default settings, against Bun's idle timer. Bun closes a silent connection
 * at a tick of its socket sweep, which runs every 4 s, and body bytes do not reset that timer: with
 * IDLE_TIMEOUT_SECONDS (10) the close comes at the third tick after the request began, 8 to 12 s
 * later whichever the sweep's phase. The body timeout must answer before the earliest of these.
 * Requests started half a second apart cover every phase of the sweep, so one of them always meets
 * the earliest close, whatever other sockets of this process set the phase.
 */
import { expect, test } from "bun:test";
import { BODY_READ_TIMEOUT_MS } from "../../server/limits";
import { GIT } from "../support/kinds";
import { type StalledBody, stalledBody } from "../support/stalled-body";
import { startStack, waitFor } from "../support/stack";

/** Bun's sweep interval (uSockets' LIBUS_TIMEOUT_GRANULARITY), covered in steps of PHASE_STEP_MS. */
const SWEEP_MS = 4_000;
const PHASE_STEP_MS = 500;

test("at the default settings, a stalled body gets its 408 before Bun's idle timer closes the connection, at every phase of the sweep", async () => {
  await using stack = await startStack();
  const path = await stack.readyReceiver("slow-default", "app", {
    type: "github",
    token: "t",
    targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
  });
  const conns: StalledBody[] = [];
  try {
    for (let phase = 0; phase < SWEEP_MS; phase += PHASE_STEP_MS) {
      conns.push(stalledBody(stack.fluxhook.receiverUrl, path, 1024));
      await Bun.sleep(PHASE_STEP_MS);
    }
    await waitFor(
      "every stalled request answered or closed",
      () => conns.every((c) => c.status !== undefined || c.closed),
      20_000,
    );
    expect(conns.map((c) => c.status)).toEqual(conns.map(() => 408));
    const refusals = stack.logs.filter(
      (l) =>
        l.msg === "delivery refused" &&
        l.reason === `request body not received within ${BODY_READ_TIMEOUT_MS / 1000} s`,
    );
    expect(refusals.length).toBe(conns.length);
  } finally {
    for (const c of conns) c.close();
  }
}, 30_000);
