/**
 * @module action/wait
 * `wait-for`: after a delivery, poll fluxhook's status query (shared/status-query.ts) until Flux
 * handled the request (`reconciled`), or until every target and the Kustomizations and
 * HelmReleases that use it are Ready at the source's new revision (`ready`).
 *
 *   - A target or consumer whose Ready turns False on this request fails the wait at once with
 *     Flux's own reason and message.
 *   - Time running out fails it too, naming the first object still behind and where it is.
 *   - `ready` never succeeds on an incomplete answer (a target without `complete: true`: more
 *     consumers than listed, a list that failed, or a server that does not say): it keeps
 *     waiting, and at the deadline names the source whose users it could not see.
 *   - Polls back off (shared/backoff.ts, 2 s doubling to 15 s); no pause and no query outlasts the
 *     deadline. 429, 5xx, network errors and answers cut short are polled through; any other
 *     refusal, an answer longer than the bounds, and a 503 that says there is no cluster to read
 *     end the wait at once with the reason, since asking again cannot change it.
 *
 * A Kustomization counts when Ready=True with `lastAppliedRevision` equal to the source's
 * revision, and fails when Ready=False with `lastAttemptedRevision` equal to it (so a failure left
 * over from an older revision is waited through). A HelmRelease applies a chart version, not the
 * source's revision: it counts when Ready=True (and fails on Ready=False) once the source has the
 * new revision.
 *
 * The judging is pure (`judge`); the loop's clock, sleep, randomness and transport are injected.
 */
import {
  annotatedTargets,
  MAX_DELIVERY_TARGET_BYTES,
  MAX_STATUS_ANSWER_BYTES,
  MAX_STATUS_QUERY_TARGETS,
  STATUS_QUERY_NO_CLUSTER,
  backoffDelayMs,
  type Backoff,
  type ConditionState,
  type ConsumerState,
  parseStatusAnswer,
  type QueriedTarget,
  type StatusAnswer,
  type TargetState,
} from "../shared";
import { inert } from "./inert";
import type { SendResult, WaitFor } from "./vocabulary";

/** Pauses between polls: 1-2 s, 2-4 s, ... at most 15 s (Flux's controllers take seconds to minutes). */
export const POLL_BACKOFF: Backoff = { baseMs: 2000, capMs: 15_000 };

/**
 * Targets wait-for follows: ten queries of MAX_STATUS_QUERY_TARGETS a poll. A Receiver's resources
 * are a handful; a selector matching more than this many objects is waited for by other means.
 */
export const MAX_WAITED_TARGETS = 10 * MAX_STATUS_QUERY_TARGETS;

/** How much of the delivery's 200 answer is read when waiting: its list of MAX_WAITED_TARGETS targets. */
export const MAX_DELIVERY_ANSWER_BYTES = 1024 + MAX_WAITED_TARGETS * MAX_DELIVERY_TARGET_BYTES;

/** What a delivery's answer gives wait-for to follow. */
export type Followed =
  | { readonly kind: "targets"; readonly targets: readonly QueriedTarget[] }
  /** The receiver annotated nothing, so nothing can change. */
  | { readonly kind: "nothing" }
  /** wait-for cannot follow this answer; `message` says why. */
  | { readonly kind: "refused"; readonly message: string };

/** What to follow after a delivery the receiver accepted with `answer` (read up to MAX_DELIVERY_ANSWER_BYTES). */
export function toFollow(answer: Extract<SendResult, { kind: "response" }>, mode: Exclude<WaitFor, "none">): Followed {
  if (answer.bodyCut)
    return {
      kind: "refused",
      message:
        `wait-for: ${mode} cannot list what to wait for: the receiver's answer to the delivery was cut off before ` +
        "its end (it stalled past timeout-seconds, or the connection was reset).",
    };
  if (answer.bodyTruncated)
    return {
      kind: "refused",
      message:
        `wait-for: ${mode} cannot list what to wait for: the receiver's answer to the delivery is longer than the ` +
        `${MAX_DELIVERY_ANSWER_BYTES} bytes that ${MAX_WAITED_TARGETS} targets take, the most wait-for follows.`,
    };
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    body = undefined;
  }
  const targets = annotatedTargets(body);
  if (targets && targets.length > MAX_WAITED_TARGETS)
    return {
      kind: "refused",
      message: `wait-for: ${mode} follows at most ${MAX_WAITED_TARGETS} targets; this delivery annotated ${targets.length}.`,
    };
  if (!targets)
    return {
      kind: "refused",
      message:
        `wait-for: ${mode} needs fluxhook's status query, and this receiver's answer lists no targets with ` +
        "their requestedAt (Flux's notification-controller answers without a body): use wait-for: none with it.",
    };
  return targets.length === 0 ? { kind: "nothing" } : { kind: "targets", targets };
}

export type Judgement =
  | { readonly state: "done"; readonly revision: string | undefined }
  | { readonly state: "waiting"; readonly behind: string }
  | { readonly state: "failed"; readonly message: string };

// Every string of an answer is the server's: shown only as one inert line (action/inert.ts).
const label = (object: { kind: string; namespace: string; name: string }) =>
  inert(`${object.kind} ${object.namespace}/${object.name}`);
const says = (condition: ConditionState | undefined) =>
  condition ? inert(`${condition.reason}: ${condition.message}`) : "no Ready condition yet";
const named = (revision: string | undefined, otherwise: string) =>
  revision === undefined ? otherwise : inert(revision);

function judgeConsumer(consumer: ConsumerState, revision: string | undefined): Judgement | undefined {
  const status = consumer.ready?.status;
  if (consumer.kind === "Kustomization") {
    if (status === "True" && revision !== undefined && consumer.appliedRevision === revision) return undefined;
    if (status === "False" && revision !== undefined && consumer.attemptedRevision === revision)
      return {
        state: "failed",
        message: `${label(consumer)} failed to apply ${named(revision, "")}: ${says(consumer.ready)}`,
      };
    return {
      state: "waiting",
      behind: `${label(consumer)} has not applied ${named(revision, "the new revision")} yet (applied: ${named(consumer.appliedRevision, "none")}; ${says(consumer.ready)})`,
    };
  }
  if (status === "True") return undefined;
  if (status === "False")
    return { state: "failed", message: `${label(consumer)} is not Ready: ${says(consumer.ready)}` };
  return { state: "waiting", behind: `${label(consumer)} is not Ready yet (${says(consumer.ready)})` };
}

/** What an incomplete answer left out, for a message that names it. */
function unseen(target: TargetState): string {
  const why = target.consumersTruncated
    ? "it uses more of them than the answer lists"
    : target.consumersError !== undefined
      ? `listing them failed: ${inert(target.consumersError)}`
      : "the answer does not say it is complete";
  return `the status query could not see every Kustomization and HelmRelease that uses it (${why}), so none can be reported Ready`;
}

function judgeTarget(target: TargetState, mode: Exclude<WaitFor, "none">): Judgement {
  if (target.error !== undefined)
    return { state: "waiting", behind: `${label(target)} could not be read: ${inert(target.error)}` };
  if (!target.found) return { state: "failed", message: `${label(target)} no longer exists` };
  if (!target.handled)
    return {
      state: "waiting",
      behind: `${label(target)} has not handled the request yet (requestedAt ${inert(target.requestedAt)}; last handled: ${named(target.lastHandledReconcileAt, "never")})`,
    };
  const status = target.ready?.status;
  if (status === "False") return { state: "failed", message: `${label(target)} is not Ready: ${says(target.ready)}` };
  if (mode === "reconciled") return { state: "done", revision: target.revision };
  if (status !== "True")
    return { state: "waiting", behind: `${label(target)} is not Ready yet (${says(target.ready)})` };
  for (const consumer of target.consumers ?? []) {
    const verdict = judgeConsumer(consumer, target.revision);
    if (verdict) return verdict;
  }
  if (target.complete !== true) return { state: "waiting", behind: `${label(target)}: ${unseen(target)}` };
  return { state: "done", revision: target.revision };
}

/** The whole answer: failed if any target failed, else waiting on the first behind, else done. */
export function judge(answer: StatusAnswer, mode: Exclude<WaitFor, "none">): Judgement {
  const verdicts = answer.targets.map((t) => judgeTarget(t, mode));
  const failed = verdicts.find((v) => v.state === "failed");
  if (failed) return failed;
  const waiting = verdicts.find((v) => v.state === "waiting");
  if (waiting) return waiting;
  const revision = verdicts.map((v) => (v.state === "done" ? v.revision : undefined)).find((r) => r !== undefined);
  return { state: "done", revision };
}

/** The chain for the job summary: each target, then each of its consumers. */
export function chainRows(answer: StatusAnswer): string[][] {
  const rows: string[][] = [["Object", "Revision", "Ready"]];
  const ready = (condition: ConditionState | undefined) =>
    condition ? inert(`${condition.status}: ${condition.message || condition.reason}`) : "unknown";
  for (const target of answer.targets) {
    rows.push([label(target), named(target.revision, ""), target.found ? ready(target.ready) : "not found"]);
    for (const consumer of target.consumers ?? [])
      rows.push([`→ ${label(consumer)}`, named(consumer.appliedRevision, ""), ready(consumer.ready)]);
    if (target.consumersTruncated) rows.push(["→ …", "", "more consumers than the answer lists"]);
  }
  return rows;
}

export type WaitResult =
  | { readonly ok: true; readonly revision: string | undefined; readonly answer: StatusAnswer; readonly polls: number }
  | { readonly ok: false; readonly message: string; readonly answer: StatusAnswer | undefined; readonly polls: number };

export interface WaitDeps {
  /**
   * Sends one query for these targets (signed as a delivery is), reading up to
   * MAX_STATUS_ANSWER_BYTES of its answer, giving up after `timeoutMs` (what is left of the wait);
   * undefined when it could not be sent within that time (queries of other waits held every slot).
   */
  readonly query: (targets: readonly QueriedTarget[], timeoutMs: number) => Promise<SendResult | undefined>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly random: () => number;
  readonly log: (line: string) => void;
}

type Poll =
  | { kind: "answer"; answer: StatusAnswer }
  | { kind: "retry"; why: string }
  | { kind: "refused"; why: string }
  /** The deadline came before every query was sent. */
  | { kind: "late" };

const reasonOf = (body: string) => {
  try {
    const reason = (JSON.parse(body) as { reason?: unknown }).reason;
    return inert(typeof reason === "string" ? reason.slice(0, 200) : body.slice(0, 200));
  } catch {
    return inert(body.slice(0, 200));
  }
};

/** A refusal that asking again cannot change: fluxhook serves Receivers from files, with no cluster to read. */
const permanent = (result: { status: number; body: string }) =>
  result.status === 501 || (result.status === 503 && reasonOf(result.body) === STATUS_QUERY_NO_CLUSTER);

/** One query per MAX_STATUS_QUERY_TARGETS targets, each given what is left until `deadline`. */
async function pollOnce(targets: readonly QueriedTarget[], deadline: number, deps: WaitDeps): Promise<Poll> {
  const parts: StatusAnswer[] = [];
  for (let i = 0; i < targets.length; i += MAX_STATUS_QUERY_TARGETS) {
    const left = deadline - deps.now();
    if (left <= 0) return { kind: "late" };
    const result = await deps.query(targets.slice(i, i + MAX_STATUS_QUERY_TARGETS), left);
    if (result === undefined) return { kind: "late" };
    if (result.kind === "error") return { kind: "retry", why: inert(`${result.error.code}: ${result.error.message}`) };
    if (permanent(result))
      return {
        kind: "refused",
        why: `the status query cannot be answered: HTTP ${result.status} (${reasonOf(result.body)})`,
      };
    if (result.status === 429 || result.status >= 500)
      return { kind: "retry", why: `HTTP ${result.status} (${reasonOf(result.body)})` };
    if (result.status === 404)
      return {
        kind: "refused",
        why: "the receiver has no status query at this path (HTTP 404): wait-for needs fluxhook's receiver server",
      };
    if (result.status !== 200)
      return { kind: "refused", why: `the status query was refused: HTTP ${result.status} (${reasonOf(result.body)})` };
    // Another query may get all of an answer cut short; one longer than the bounds stays so.
    if (result.bodyCut)
      return {
        kind: "retry",
        why: "its answer was cut off before its end (it stalled past timeout-seconds, or the connection was reset)",
      };
    if (result.bodyTruncated)
      return {
        kind: "refused",
        why: `the status query's answer was longer than the ${MAX_STATUS_ANSWER_BYTES} bytes its bounds allow (shared/status-query.ts): is the receiver fluxhook, of a version that speaks this action's status query?`,
      };
    let body: unknown;
    try {
      body = JSON.parse(result.body);
    } catch {
      body = undefined;
    }
    const answer = parseStatusAnswer(body);
    if (!answer) return { kind: "refused", why: "the status query's answer is not a status answer" };
    parts.push(answer);
  }
  return {
    kind: "answer",
    answer: { status: 200, reason: parts.map((p) => p.reason).join("; "), targets: parts.flatMap((p) => p.targets) },
  };
}

/**
 * Polls until the judgement is final or the deadline: `timeoutMs` from now, or `deadline` when
 * several waits share one (wait-all.ts: wait-timeout-seconds bounds the whole step's wait).
 */
export async function waitForFlux(
  targets: readonly QueriedTarget[],
  mode: Exclude<WaitFor, "none">,
  timeoutMs: number,
  deps: WaitDeps,
  deadline: number = deps.now() + timeoutMs,
): Promise<WaitResult> {
  let last: StatusAnswer | undefined;
  let behind = "no answer from the status query yet";
  const timedOut = (polls: number): WaitResult => ({
    ok: false,
    message: `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for Flux (wait-for: ${mode}): ${behind}`,
    answer: last,
    polls,
  });
  for (let poll = 1; ; poll++) {
    const result = await pollOnce(targets, deadline, deps);
    if (result.kind === "refused") return { ok: false, message: result.why, answer: last, polls: poll };
    // A poll the deadline itself cut short says nothing new: the last judgement stands.
    if (result.kind === "retry") {
      if (last === undefined || deps.now() < deadline) behind = `the status query did not answer: ${result.why}`;
    } else if (result.kind === "late") return timedOut(poll - 1);
    else {
      last = result.answer;
      const verdict = judge(result.answer, mode);
      if (verdict.state === "done") return { ok: true, revision: verdict.revision, answer: result.answer, polls: poll };
      if (verdict.state === "failed") return { ok: false, message: verdict.message, answer: last, polls: poll };
      behind = verdict.behind;
    }
    const left = deadline - deps.now();
    if (left <= 0) return timedOut(poll);
    const delay = Math.min(backoffDelayMs(POLL_BACKOFF, poll, deps.random()), left);
    deps.log(`Poll ${poll}: ${behind}; next in ${(delay / 1000).toFixed(1)} s.`);
    await deps.sleep(delay);
  }
}
