/**
 * @module server/api/status
 * The Receiver status fluxhook writes, worded exactly as Flux's controller words it
 * (internal/controller/receiver_controller.go), so `flux get receivers`, kstatus and dashboards
 * read it the same way.
 */
import type { Condition, ReceiverStatus } from "./receiver";

export const ConditionType = { ready: "Ready", stalled: "Stalled", reconciling: "Reconciling" } as const;

export const Reason = {
  succeeded: "Succeeded",
  tokenNotFound: "TokenNotFound",
  validationFailed: "ValidationFailed",
  invalidCEL: "InvalidCELExpression",
  progressingWithRetry: "ProgressingWithRetry",
  /** The Event reason of a failed reconciliation (meta.FailedReason). */
  failed: "Failed",
} as const;

/** What the reconciler decided about one Receiver generation. */
export type Readiness =
  | { kind: "ready"; path: string }
  | { kind: "token-not-found"; message: string }
  | { kind: "terminal"; reason: string; message: string }
  /** Flux leaves a suspended Receiver's conditions alone (see decidedStatus). */
  | { kind: "suspended" };

/** The Reconciling condition's message while Flux retries (MarkReconciling in receiver_controller.go). */
export const RECONCILING_MESSAGE = "Reconciliation in progress";

export function readyMessage(path: string): string {
  return `Receiver initialized for path: ${path}`;
}

/** Flux's markTerminal prefix: the message of the log line, and of the conditions before the error. */
export const TERMINAL_PREFIX = "Reconciliation failed terminally due to configuration error";

export function terminalMessage(err: string): string {
  return `${TERMINAL_PREFIX}: ${err}`;
}

/**
 * The status to write for this readiness, keeping lastTransitionTime from the current status when
 * a condition's status did not change (as Kubernetes' meta.SetStatusCondition does).
 */
export function desiredStatus(
  readiness: Readiness,
  generation: number,
  current: ReceiverStatus | undefined,
  now: string,
  requestedAt?: string,
): ReceiverStatus {
  // Every reconcile answers the object's reconcile request, whatever its outcome (Flux's patch
  // helper records it in the same write).
  const handled = requestedAt ?? current?.lastHandledReconcileAt;
  const status = decidedStatus(readiness, generation, current, now);
  return handled === undefined ? status : { ...status, lastHandledReconcileAt: handled };
}

/**
 * The longest condition message the Receiver CRD accepts (metav1.Condition's maxLength, in
 * characters): a longer one makes the whole status write a 422, retried for ever. Messages quote
 * the spec (a CEL error repeats its expression), so they are cut here.
 */
export const CONDITION_MESSAGE_MAX_CHARS = 32_768;

/** `message` within CONDITION_MESSAGE_MAX_CHARS characters (code points, as the schema counts them). */
function conditionMessage(message: string): string {
  if (message.length <= CONDITION_MESSAGE_MAX_CHARS) return message;
  const points = Array.from(message);
  return points.length <= CONDITION_MESSAGE_MAX_CHARS
    ? message
    : `${points.slice(0, CONDITION_MESSAGE_MAX_CHARS - 1).join("")}…`;
}

function decidedStatus(
  readiness: Readiness,
  generation: number,
  current: ReceiverStatus | undefined,
  now: string,
): ReceiverStatus {
  const previous = new Map((current?.conditions ?? []).map((c) => [c.type, c]));
  const condition = (type: string, status: Condition["status"], reason: string, message: string): Condition => {
    const before = previous.get(type);
    return {
      type,
      status,
      reason,
      message: conditionMessage(message),
      observedGeneration: generation,
      lastTransitionTime:
        before && before.status === status && before.lastTransitionTime ? before.lastTransitionTime : now,
    };
  };
  switch (readiness.kind) {
    case "ready":
      return {
        observedGeneration: generation,
        webhookPath: readiness.path,
        conditions: [condition(ConditionType.ready, "True", Reason.succeeded, readyMessage(readiness.path))],
      };
    case "token-not-found":
      // Flux retries with backoff and marks Reconciling with ProgressingWithRetry; observedGeneration
      // only advances on success.
      // and removes webhookPath (omitempty: a Receiver without a path has no field, never "").
      return {
        ...(current?.observedGeneration !== undefined ? { observedGeneration: current.observedGeneration } : {}),
        conditions: [
          condition(ConditionType.ready, "False", Reason.tokenNotFound, readiness.message),
          condition(ConditionType.reconciling, "True", Reason.progressingWithRetry, RECONCILING_MESSAGE),
        ],
      };
    case "terminal":
      // A configuration error will not fix itself: Stalled, and observedGeneration pinned to this
      // generation so tools know the controller has seen it.
      return {
        observedGeneration: generation,
        ...(current?.webhookPath ? { webhookPath: current.webhookPath } : {}),
        conditions: [
          condition(ConditionType.ready, "False", readiness.reason, terminalMessage(readiness.message)),
          condition(ConditionType.stalled, "True", readiness.reason, terminalMessage(readiness.message)),
        ],
      };
    case "suspended": {
      // Flux returns before reconciling, and its deferred patch still runs: conditions as they
      // are, but while Ready is True observedGeneration follows the generation (and Reconciling
      // goes), so kstatus does not report a suspended Receiver as in progress.
      const { lastHandledReconcileAt: _, ...kept } = current ?? {};
      const conditions = current?.conditions ?? [];
      if (!conditions.some((c) => c.type === ConditionType.ready && c.status === "True")) return kept;
      return {
        ...kept,
        observedGeneration: generation,
        conditions: conditions.filter((c) => c.type !== ConditionType.reconciling),
      };
    }
  }
}

/** True when two statuses say the same thing (timestamps aside), so no write is needed. */
export function sameStatus(a: ReceiverStatus | undefined, b: ReceiverStatus): boolean {
  const key = (s: ReceiverStatus) =>
    JSON.stringify([
      s.observedGeneration ?? null,
      s.webhookPath ?? "",
      s.lastHandledReconcileAt ?? null,
      [...(s.conditions ?? [])]
        .map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration ?? null])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    ]);
  // No status at all says what an empty one says (a suspended Receiver never reconciled).
  return key(a ?? {}) === key(b);
}

/** A Kubernetes Event about a Receiver's reconciliation, as Flux's controller records it. */
export interface ReconcileEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

/** Flux's Normal Event on success. Its "next run in <interval>" is left out: fluxhook watches, it does not poll. */
export const SUCCEEDED_MESSAGE = "Reconciliation finished";

/**
 * The Event a status change records, when its Ready condition changed: Normal `Succeeded` on
 * Ready, Warning `<reason>` (InvalidCELExpression, ValidationFailed) on a terminal error, Warning
 * `Failed` with the error on any other failure (an unreadable token), as Flux records them.
 */
export function transitionEvent(
  before: ReceiverStatus | undefined,
  after: ReceiverStatus,
  readiness: Readiness,
): ReconcileEvent | undefined {
  const ready = (s: ReceiverStatus | undefined) => s?.conditions?.find((c) => c.type === ConditionType.ready);
  const [was, now] = [ready(before), ready(after)];
  if (!now || (was && was.status === now.status && was.reason === now.reason && was.message === now.message))
    return undefined;
  switch (readiness.kind) {
    case "ready":
      return { type: "Normal", reason: Reason.succeeded, message: SUCCEEDED_MESSAGE };
    case "terminal":
      return { type: "Warning", reason: readiness.reason, message: now.message };
    case "token-not-found":
      return { type: "Warning", reason: Reason.failed, message: readiness.message };
    case "suspended":
      return undefined;
  }
}
