/**
 * action/wait.ts: judging a status answer (table-driven), and the polling loop with a fake clock,
 * sleep and transport (no network, no wall-clock time).
 */
import { describe, expect, test } from "bun:test";
import {
  MAX_DELIVERY_ANSWER_BYTES,
  MAX_WAITED_TARGETS,
  POLL_BACKOFF,
  chainRows,
  judge,
  toFollow,
  waitForFlux,
  type WaitDeps,
} from "../../action/wait";
import {
  MAX_STATUS_ANSWER_BYTES,
  MAX_STATUS_QUERY_TARGETS,
  STATUS_QUERY_NO_CLUSTER,
  type ConsumerState,
  type QueriedTarget,
  type StatusAnswer,
  type TargetState,
} from "../../shared";
import type { SendResult } from "../../action/vocabulary";

const REV = "main@sha1:abc";
const ready = (status: "True" | "False" | "Unknown", message = "m", reason = "R") => ({ status, reason, message });
const source = (over: Partial<TargetState> = {}): TargetState => ({
  kind: "GitRepository",
  namespace: "flux-system",
  name: "app",
  requestedAt: "t1",
  found: true,
  handled: true,
  ready: ready("True", `stored artifact for revision '${REV}'`),
  revision: REV,
  consumers: [],
  complete: true,
  ...over,
});
const ks = (over: Partial<ConsumerState> = {}): ConsumerState => ({
  kind: "Kustomization",
  namespace: "flux-system",
  name: "apps",
  appliedRevision: REV,
  attemptedRevision: REV,
  ready: ready("True", `Applied revision: ${REV}`),
  ...over,
});
const answer = (...targets: TargetState[]): StatusAnswer => ({ status: 200, reason: "", targets });

describe("judge", () => {
  test.each<[string, StatusAnswer, "reconciled" | "ready", ReturnType<typeof judge>]>([
    ["handled and Ready, no consumers", answer(source()), "ready", { state: "done", revision: REV }],
    [
      "not handled yet",
      answer(source({ handled: false, lastHandledReconcileAt: "t0" })),
      "reconciled",
      {
        state: "waiting",
        behind: expect.stringContaining("GitRepository flux-system/app has not handled the request yet"),
      },
    ],
    [
      "reconciled ignores consumers",
      answer(source({ consumers: [ks({ appliedRevision: "old" })] })),
      "reconciled",
      { state: "done", revision: REV },
    ],
    [
      "a target Ready=False fails with Flux's message",
      answer(source({ ready: ready("False", "failed to checkout 'main': auth required", "GitOperationFailed") })),
      "reconciled",
      {
        state: "failed",
        message:
          "GitRepository flux-system/app is not Ready: GitOperationFailed: failed to checkout 'main': auth required",
      },
    ],
    [
      "a Kustomization not at the revision yet",
      answer(source({ consumers: [ks({ appliedRevision: "main@sha1:old", attemptedRevision: "main@sha1:old" })] })),
      "ready",
      {
        state: "waiting",
        behind: expect.stringContaining(
          `Kustomization flux-system/apps has not applied ${REV} yet (applied: main@sha1:old`,
        ),
      },
    ],
    [
      "a Kustomization failing at an older revision is waited through",
      answer(source({ consumers: [ks({ appliedRevision: "old", attemptedRevision: "old", ready: ready("False") })] })),
      "ready",
      { state: "waiting", behind: expect.any(String) },
    ],
    [
      "a Kustomization failing at the revision fails with its message",
      answer(
        source({
          consumers: [
            ks({ appliedRevision: "old", ready: ready("False", "Deployment/x dry-run failed", "BuildFailed") }),
          ],
        }),
      ),
      "ready",
      {
        state: "failed",
        message: `Kustomization flux-system/apps failed to apply ${REV}: BuildFailed: Deployment/x dry-run failed`,
      },
    ],
    [
      "a HelmRelease is judged by Ready",
      answer(
        source({
          consumers: [
            ks(),
            { kind: "HelmRelease", namespace: "flux-system", name: "web", ready: ready("Unknown", "installing") },
          ],
        }),
      ),
      "ready",
      { state: "waiting", behind: "HelmRelease flux-system/web is not Ready yet (R: installing)" },
    ],
    [
      "consumers past the answer's list: waits, naming what it could not see",
      answer(source({ consumers: [ks()], consumersTruncated: true, complete: undefined })),
      "ready",
      {
        state: "waiting",
        behind:
          "GitRepository flux-system/app: the status query could not see every Kustomization and HelmRelease that uses it (it uses more of them than the answer lists), so none can be reported Ready",
      },
    ],
    [
      "a consumer list that failed: waits, naming the failure",
      answer(source({ consumersError: "HelmRelease in flux-system: 403 forbidden", complete: undefined })),
      "ready",
      { state: "waiting", behind: expect.stringContaining("(listing them failed: HelmRelease in flux-system: 403") },
    ],
    [
      "an answer that does not say it is complete counts as incomplete",
      answer(source({ complete: undefined })),
      "ready",
      { state: "waiting", behind: expect.stringContaining("(the answer does not say it is complete)") },
    ],
    [
      "a consumer listed as failed still fails an incomplete answer",
      answer(source({ consumers: [ks({ ready: ready("False", "boom", "BuildFailed") })], consumersTruncated: true })),
      "ready",
      { state: "failed", message: expect.stringContaining("Kustomization flux-system/apps failed to apply") },
    ],
    [
      "reconciled judges no consumers, so needs no complete list",
      answer(source({ consumersTruncated: true, complete: undefined })),
      "reconciled",
      { state: "done", revision: REV },
    ],
    [
      "a deleted target fails",
      answer(source({ found: false })),
      "reconciled",
      { state: "failed", message: "GitRepository flux-system/app no longer exists" },
    ],
    [
      "a failure anywhere wins over a target still behind",
      answer(source({ handled: false }), source({ name: "b", ready: ready("False") })),
      "reconciled",
      { state: "failed", message: expect.stringContaining("GitRepository flux-system/b") },
    ],
  ])("%s", (_name, a, mode, want) => {
    expect(judge(a, mode)).toEqual(want);
  });

  test("the chain: the source, then its consumers", () => {
    expect(chainRows(answer(source({ consumers: [ks()] })))).toEqual([
      ["Object", "Revision", "Ready"],
      ["GitRepository flux-system/app", REV, `True: stored artifact for revision '${REV}'`],
      ["→ Kustomization flux-system/apps", REV, `True: Applied revision: ${REV}`],
    ]);
  });
});

/**
 * A fake clock and transport: each query answers the next scripted result after `takesMs(timeout)`
 * of the fake clock (0 by default; a stalled server takes the whole timeout it was given, or the
 * 10 s per request of the action's default when it was given none); sleeping advances time.
 */
function harness(script: (n: number) => SendResult | undefined, takesMs: (timeoutMs: number) => number = () => 0) {
  let now = 0;
  const sleeps: number[] = [];
  const batches: number[] = [];
  const timeouts: number[] = [];
  let n = 0;
  const deps: WaitDeps = {
    query: async (targets, timeoutMs) => {
      batches.push(targets.length);
      timeouts.push(timeoutMs);
      now += takesMs(timeoutMs ?? 10_000);
      return script(n++);
    },
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    now: () => now,
    random: () => 0.5,
    log: () => {},
  };
  return { deps, sleeps, batches, timeouts, now: () => now };
}
const ok = (a: StatusAnswer): SendResult => ({
  kind: "response",
  status: 200,
  headers: {},
  body: JSON.stringify(a),
  bodyTruncated: false,
});
const status = (code: number, reason: string): SendResult => ({
  kind: "response",
  status: code,
  headers: {},
  body: JSON.stringify({ status: code, reason }),
  bodyTruncated: false,
});
const T = [{ kind: "GitRepository", namespace: "flux-system", name: "app", requestedAt: "t1" }];

describe("waitForFlux", () => {
  test("polls with backoff until done", async () => {
    const h = harness((n) => ok(answer(source({ handled: n >= 3 }))));
    const result = await waitForFlux(T, "ready", 300_000, h.deps);
    expect(result).toMatchObject({ ok: true, revision: REV, polls: 4 });
    expect(h.sleeps).toEqual([1500, 3000, 6000]);
    expect(POLL_BACKOFF.capMs).toBe(15_000);
  });

  test("times out at the deadline, naming the object behind", async () => {
    const h = harness(() => ok(answer(source({ handled: false }))));
    const result = await waitForFlux(T, "reconciled", 20_000, h.deps);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toStartWith(
      "Timed out after 20 s waiting for Flux (wait-for: reconciled): GitRepository flux-system/app has not handled the request yet",
    );
    // Never sleeps past the deadline.
    expect(h.sleeps.reduce((a, b) => a + b, 0)).toBe(20_000);
  });

  test("a deadline shared by several waits ends this one there; the message names wait-timeout-seconds", async () => {
    const h = harness(() => ok(answer(source({ handled: false }))));
    const result = await waitForFlux(T, "reconciled", 20_000, h.deps, 8_000);
    expect(result).toMatchObject({ ok: false, message: expect.stringContaining("Timed out after 20 s") });
    expect(h.now()).toBe(8_000);
  });

  test("a last poll the deadline cuts short ends the wait on the last judgement, not on 'did not answer'", async () => {
    // The first poll judges; the next one starts with the time left and is cut by the deadline.
    const h = harness(
      (n) =>
        n === 0
          ? ok(answer(source({ handled: false })))
          : { kind: "error", error: { category: "timeout", code: "TimeoutError", message: "t", retryable: true } },
      // The first answers at once; the second takes all the time it is given.
      (timeoutMs) => (timeoutMs < 3_000 ? timeoutMs : 0),
    );
    const result = await waitForFlux(T, "reconciled", 3_000, h.deps);
    expect(h.timeouts).toEqual([3_000, 1_500]);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toStartWith(
      "Timed out after 3 s waiting for Flux (wait-for: reconciled): GitRepository flux-system/app has not handled the request yet",
    );
  });

  test("a query not sent before the deadline (other waits held every slot) ends the wait on the last judgement", async () => {
    const h = harness((n) => (n === 0 ? ok(answer(source({ handled: false }))) : undefined));
    const result = await waitForFlux(T, "reconciled", 20_000, h.deps);
    expect(result).toMatchObject({ ok: false, polls: 1 });
    expect(!result.ok && result.message).toStartWith(
      "Timed out after 20 s waiting for Flux (wait-for: reconciled): GitRepository flux-system/app has not handled the request yet",
    );
  });

  test("429, 5xx and network errors are polled through; other refusals end the wait", async () => {
    const h = harness((n) =>
      n === 0
        ? status(503, "receiver is not Ready")
        : n === 1
          ? { kind: "error", error: { category: "refused", code: "ECONNREFUSED", message: "refused", retryable: true } }
          : ok(answer(source())),
    );
    expect(await waitForFlux(T, "ready", 60_000, h.deps)).toMatchObject({ ok: true, polls: 3 });
    const refused = harness(() => status(401, "signature mismatch (X-Hub-Signature-256)"));
    expect(await waitForFlux(T, "ready", 60_000, refused.deps)).toMatchObject({
      ok: false,
      polls: 1,
      message: "the status query was refused: HTTP 401 (signature mismatch (X-Hub-Signature-256))",
    });
    const flux = harness(() => status(404, ""));
    expect(await waitForFlux(T, "ready", 60_000, flux.deps)).toMatchObject({
      ok: false,
      message: expect.stringContaining("needs fluxhook"),
    });
  });

  test("many targets are asked in batches of the query's bound", async () => {
    const many = Array.from({ length: MAX_STATUS_QUERY_TARGETS * 4 + 20 }, (_, i) => ({ ...T[0]!, name: `t${i}` }));
    const h = harness(() => ok(answer(source())));
    await waitForFlux(many, "reconciled", 60_000, h.deps);
    expect(h.batches).toEqual([100, 100, 100, 100, 20]);
  });

  test("a stalled server: no query outlasts the wait, so a 5 s wait ends at 5 s", async () => {
    const stalled = harness(
      () => ({ kind: "error", error: { category: "timeout", code: "TimeoutError", message: "t", retryable: true } }),
      (timeoutMs) => timeoutMs,
    );
    const result = await waitForFlux(T, "reconciled", 5_000, stalled.deps);
    expect(result).toMatchObject({ ok: false, message: expect.stringContaining("Timed out after 5 s") });
    expect(stalled.now()).toBe(5_000);
    expect(stalled.timeouts[0]).toBe(5_000);
  });

  test("an answer cut short (a stall past the timeout, a reset) is asked again", async () => {
    const h = harness((n) =>
      n === 0 ? { ...ok(answer(source())), body: "{", bodyTruncated: true, bodyCut: true } : ok(answer(source())),
    );
    expect(await waitForFlux(T, "ready", 60_000, h.deps)).toMatchObject({ ok: true, polls: 2 });
  });

  test("answers cut short until the deadline: the message is the timeout's, saying why", async () => {
    const h = harness(() => ({ ...ok(answer(source())), body: '{"status":2', bodyTruncated: true, bodyCut: true }));
    const result = await waitForFlux(T, "ready", 10_000, h.deps);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toStartWith(
      "Timed out after 10 s waiting for Flux (wait-for: ready): the status query did not answer: its answer was cut off",
    );
  });

  test("an answer longer than the contract's bounds is refused, naming the bound, not Flux", async () => {
    const h = harness(() => ({ ...ok(answer(source())), bodyTruncated: true }));
    const result = await waitForFlux(T, "ready", 60_000, h.deps);
    expect(result).toMatchObject({ ok: false, polls: 1 });
    expect(!result.ok && result.message).toContain(`longer than the ${MAX_STATUS_ANSWER_BYTES} bytes its bounds allow`);
    expect(!result.ok && result.message).not.toContain("Flux");
  });

  test("a 503 that no retry changes (no cluster) ends the wait at once; a Receiver not Ready is polled through", async () => {
    const noCluster = harness(() => status(503, STATUS_QUERY_NO_CLUSTER));
    expect(await waitForFlux(T, "ready", 300_000, noCluster.deps)).toEqual({
      ok: false,
      polls: 1,
      answer: undefined,
      message: `the status query cannot be answered: HTTP 503 (${STATUS_QUERY_NO_CLUSTER})`,
    });
    const notReady = harness((n) => (n < 2 ? status(503, "Receiver is not Ready") : ok(answer(source()))));
    expect(await waitForFlux(T, "ready", 300_000, notReady.deps)).toMatchObject({ ok: true, polls: 3 });
  });
});

describe("toFollow: what a delivery's answer gives wait-for to follow", () => {
  const delivered = (
    body: string,
    bodyTruncated = false,
    bodyCut = false,
  ): Extract<SendResult, { kind: "response" }> => ({
    kind: "response",
    status: 200,
    headers: {},
    body,
    bodyTruncated,
    bodyCut,
  });
  const annotated = (n: number) =>
    JSON.stringify({
      status: 200,
      reason: `${n} of ${n} targets annotated`,
      targets: Array.from({ length: n }, (_, i) => ({ ...T[0], name: `app-${i}`, outcome: "annotated" })),
    });

  test.each<[string, ReturnType<typeof delivered>, ReturnType<typeof toFollow>]>([
    [
      "fluxhook's answer: its targets with their requestedAt",
      delivered(annotated(1)),
      { kind: "targets", targets: [{ ...(T[0] as QueriedTarget), name: "app-0" }] },
    ],
    ["nothing annotated", delivered(annotated(0)), { kind: "nothing" }],
    [
      "Flux's notification-controller: no body",
      delivered(""),
      { kind: "refused", message: expect.stringContaining("wait-for: ready needs fluxhook's status query") },
    ],
    [
      "more targets than wait-for follows",
      delivered(annotated(MAX_WAITED_TARGETS + 1)),
      {
        kind: "refused",
        message: `wait-for: ready follows at most ${MAX_WAITED_TARGETS} targets; this delivery annotated ${MAX_WAITED_TARGETS + 1}.`,
      },
    ],
    [
      "an answer cut at the read bound",
      delivered(annotated(1).slice(0, 20), true),
      { kind: "refused", message: expect.stringContaining(`longer than the ${MAX_DELIVERY_ANSWER_BYTES} bytes`) },
    ],
    [
      "an answer cut short (a stall or a reset), not blamed on its length",
      delivered(annotated(1).slice(0, 20), true, true),
      { kind: "refused", message: expect.stringContaining("was cut off before its end") },
    ],
  ])("%s", (_name, answer, followed) => {
    expect(toFollow(answer, "ready")).toEqual(followed);
  });
});
