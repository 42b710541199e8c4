/**
 * wait-for against receivers that test its bounds, run as the runner runs the bundle: a status
 * query that cannot change (fluxhook without a cluster) ends the wait at once; a status query that
 * never answers cannot stretch the wait past wait-timeout-seconds; a delivery with hundreds of
 * targets is waited for, and one with more than wait-for follows is refused naming that bound, not
 * Flux.
 */
import { describe, expect, test } from "bun:test";
import { MAX_WAITED_TARGETS } from "../../action/wait";
import { STATUS_QUERY_NO_CLUSTER, type QueriedTarget } from "../../shared";
import { waitFor } from "../support/stack";
import { runAction, startAction, startReceiver, type ReceivedRequest } from "./harness";

const TOKEN = "wait-bounds-token";
const REQUESTED_AT = "2026-12-01T00:00:00.000000000Z";
const targets = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    kind: "GitRepository",
    namespace: "flux-system",
    name: `repository-with-a-longer-name-${String(i).padStart(4, "0")}`,
    requestedAt: REQUESTED_AT,
  }));

/** A fluxhook look-alike whose delivery annotated `annotated`, and whose queries `status` answers. */
function lookAlike(
  annotated: readonly QueriedTarget[],
  status: (req: ReceivedRequest) => Response | Promise<Response>,
) {
  return startReceiver({
    respond: (req) =>
      req.path.endsWith("/status")
        ? status(req)
        : Response.json({
            status: 200,
            reason: `${annotated.length} of ${annotated.length} targets annotated`,
            targets: annotated.map((t) => ({ ...t, outcome: "annotated" })),
          }),
  });
}

/** Every queried target handled, Ready, complete, at `revision`. */
const allDone = (req: ReceivedRequest, revision = "main@sha1:0123456789abcdef0123456789abcdef01234567") => {
  const query = JSON.parse(new TextDecoder().decode(req.body)) as { targets: QueriedTarget[] };
  return Response.json({
    status: 200,
    reason: "done",
    targets: query.targets.map((t) => ({
      ...t,
      found: true,
      handled: true,
      ready: { status: "True", reason: "Succeeded", message: "stored artifact" },
      revision,
      complete: true,
    })),
  });
};

const wait = (url: string, extra: Record<string, string> = {}) =>
  runAction({ inputs: { token: TOKEN, address: url, receiver: "webapp", "wait-for": "ready", ...extra } });

describe("wait-for's bounds", () => {
  test("a 503 no retry changes (fluxhook without a cluster) fails at once, with the reason", async () => {
    await using receiver = lookAlike(targets(1), () =>
      Response.json({ status: 503, reason: STATUS_QUERY_NO_CLUSTER }, { status: 503 }),
    );
    const run = await wait(receiver.url);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(`::error::the status query cannot be answered: HTTP 503 (${STATUS_QUERY_NO_CLUSTER})`);
    expect(receiver.requests.map((r) => r.path.endsWith("/status"))).toEqual([false, true]);
  });

  test("a status query that never answers cannot stretch a 2 s wait to the 10 s request timeout", async () => {
    await using receiver = lookAlike(targets(1), () => new Promise<Response>(() => {}));
    const started = Date.now();
    const run = await wait(receiver.url, { "wait-timeout-seconds": "2", "timeout-seconds": "10" });
    const elapsedMs = Date.now() - started;
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain("::error::Timed out after 2 s waiting for Flux");
    // The delivery, the start of Node and the wait itself; well short of one 10 s query.
    expect(elapsedMs).toBeLessThan(8_000);
  });

  test("one wait-timeout-seconds for the whole wait, however many receivers wait (16, at most 4 queries at once)", async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    await using receiver = lookAlike(targets(1), async (req) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await Bun.sleep(50);
      inFlight--;
      const query = JSON.parse(new TextDecoder().decode(req.body)) as { targets: QueriedTarget[] };
      return Response.json({
        status: 200,
        reason: "not yet",
        targets: query.targets.map((t) => ({ ...t, found: true, handled: false })),
      });
    });
    const names = Array.from({ length: 16 }, (_, i) => `webapp-${i}`);
    const started = Date.now();
    const run = await runAction({
      inputs: {
        token: TOKEN,
        address: receiver.url,
        receiver: names.join("\n"),
        "wait-for": "reconciled",
        "wait-timeout-seconds": "2",
      },
    });
    const elapsedMs = Date.now() - started;
    expect(run.exitCode).toBe(1);
    // Every receiver was asked, each timed out on the one deadline, and in far less than four 2 s waits in turn.
    const queried = new Set(receiver.requests.filter((r) => r.path.endsWith("/status")).map((r) => r.path));
    expect(queried.size).toBe(16);
    for (const name of names) expect(run.stdout).toContain(`flux-system/${name}: Timed out after 2 s waiting for Flux`);
    expect(elapsedMs).toBeLessThan(6_000);
    expect(mostInFlight).toBeLessThanOrEqual(4);
  });

  test("a status answer cut short (it stalls past the request timeout) is asked again, not taken for an oversized one", async () => {
    await using receiver = lookAlike(targets(1), (req) => {
      const queries = receiver.requests.filter((r) => r.path.endsWith("/status")).length;
      if (queries > 1) return allDone(req);
      // The first answer: a 200 whose body starts, then stalls for longer than the 1 s timeout.
      return new Response(
        new ReadableStream({
          start: async (body) => {
            body.enqueue(new TextEncoder().encode("{"));
            await Bun.sleep(3_000);
            body.close();
          },
        }),
        { status: 200, headers: { "content-type": "application/json" } },
      );
    });
    const run = await wait(receiver.url, { "wait-timeout-seconds": "20", "timeout-seconds": "1" });
    expect(run.stdout).toContain("Poll 1: the status query did not answer: its answer was cut off");
    expect(run.stdout).toContain("Flux is Ready at main@sha1:0123456789abcdef0123456789abcdef01234567");
    expect(run.exitCode).toBe(0);
  });

  test("hundreds of targets (an answer beyond the 64 KiB read without wait-for) are waited for", async () => {
    const many = targets(600);
    await using receiver = lookAlike(many, allDone);
    const run = await wait(receiver.url);
    expect(run.stdout).toContain("Flux is Ready at main@sha1:0123456789abcdef0123456789abcdef01234567");
    expect(run.exitCode).toBe(0);
    // One query per 100 targets.
    expect(receiver.requests.filter((r) => r.path.endsWith("/status"))).toHaveLength(6);
  });

  test("a revision without Flux's shape sets no output, with a warning (a workflow may splice it into a script)", async () => {
    const crafted = 'main$(id)";echo pwned;"@sha1:0123456789abcdef0123456789abcdef01234567';
    await using receiver = lookAlike(targets(1), (req) => allDone(req, crafted));
    const run = await wait(receiver.url);
    expect(run.exitCode).toBe(0);
    expect(run.outputs.revision).toBeUndefined();
    expect(run.stdout).toContain("::warning::The `revision` output is not set");
  });

  test("more targets than wait-for follows: refused, naming its bound, not Flux", async () => {
    await using receiver = lookAlike(targets(MAX_WAITED_TARGETS + 1), allDone);
    const run = await wait(receiver.url);
    expect(run.exitCode).toBe(1);
    const error = run.stdout.split("\n").find((l) => l.startsWith("::error::"));
    expect(error).toBe(
      `::error::wait-for: ready follows at most ${MAX_WAITED_TARGETS} targets; this delivery annotated ${MAX_WAITED_TARGETS + 1}.`,
    );
  });
});

describe("progress lines with several receivers", () => {
  test("each receiver's poll lines are written while the wait still runs, named by receiver", async () => {
    let released = false;
    await using receiver = lookAlike(targets(1), (req) =>
      released ? allDone(req) : Response.json({ status: 503, reason: "Receiver is not Ready" }, { status: 503 }),
    );
    const running = startAction({
      inputs: { token: TOKEN, address: receiver.url, receiver: "alpha\nbeta", "wait-for": "reconciled" },
    });
    // Both receivers' first poll lines arrive before either wait has ended.
    await waitFor("a poll line from each receiver", () =>
      ["flux-system/alpha: Poll 1:", "flux-system/beta: Poll 1:"].every((line) => running.stdoutSoFar().includes(line)),
    );
    expect(running.stdoutSoFar()).not.toContain("Flux reconciled");
    released = true;
    const run = await running.finished;
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain("Flux reconciled for flux-system/alpha");
    expect(run.stdout).toContain("Flux reconciled for flux-system/beta");
  });
});
