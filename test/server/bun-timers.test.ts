/**
 * A stalled body at the default settings, against Bun's idle timer. Bun closes a silent
 * connection at a tick of its socket sweep, which runs every 4 s: with IDLE_TIMEOUT_SECONDS (10)
 * the third tick after the last bytes came, 8 to 12 s later, whichever the sweep's phase. The
 * body timeout (BODY_READ_TIMEOUT_MS, 9 s) answers first only when the sweep started with this
 * test's own server, as it does in a process where no other socket is open. So npm test runs this
 * file in a process of its own, not among the files `bun test --parallel` runs side by side: there
 * other sockets keep the sweep at any phase, and the idle close may come first (from 8 s).
 */
import { expect, test } from "bun:test";
import { BODY_READ_TIMEOUT_MS } from "../../server/limits";
import { GIT } from "../support/kinds";
import { stalledBody } from "../support/stalled-body";
import { startStack, waitFor } from "../support/stack";

test("at the default settings, a stalled body gets its 408 before Bun's idle timer closes the connection", async () => {
  await using stack = await startStack();
  const path = await stack.readyReceiver("slow-default", "app", {
    type: "github",
    token: "t",
    targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
  });
  const conn = stalledBody(stack.fluxhook.receiverUrl, path, 1024);
  try {
    expect(await waitFor("an answer", () => conn.status, 20_000)).toBe(408);
    expect(
      stack.logs.some(
        (l) =>
          l.msg === "delivery refused" &&
          l.reason === `request body not received within ${BODY_READ_TIMEOUT_MS / 1000} s`,
      ),
    ).toBe(true);
  } finally {
    conn.close();
  }
}, 30_000);
