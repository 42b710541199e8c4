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
} as const;

/** What the controller decided about one Receiver generation. */
export type Readiness =
  | { kind: "ready"; path: string }
  | { kind: "token-not-found"; message: string }
  | { kind: "terminal"; reason: string; message: string };

export function readyMessage(path: string): string {
  return `Receiver initialized for path: ${path}`;
}

export function terminalMessage(err: string): string {
  return `Reconciliation failed terminally due to configuration error: ${err}`;
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
      message,
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
      return {
        ...(current?.observedGeneration !== undefined ? { observedGeneration: current.observedGeneration } : {}),
        webhookPath: "",
        conditions: [
          condition(ConditionType.ready, "False", Reason.tokenNotFound, readiness.message),
          condition(ConditionType.reconciling, "True", Reason.progressingWithRetry, readiness.message),
        ],
      };
    case "terminal":
      // A configuration error will not fix itself: Stalled, and observedGeneration pinned to this
      // generation so tools know the controller has seen it.
      return {
        observedGeneration: generation,
        webhookPath: current?.webhookPath ?? "",
        conditions: [
          condition(ConditionType.ready, "False", readiness.reason, terminalMessage(readiness.message)),
          condition(ConditionType.stalled, "True", readiness.reason, terminalMessage(readiness.message)),
        ],
      };
  }
}

/** True when two statuses say the same thing (timestamps aside), so no write is needed. */
export function sameStatus(a: ReceiverStatus | undefined, b: ReceiverStatus): boolean {
  if (!a) return false;
  const key = (s: ReceiverStatus) =>
    JSON.stringify([
      s.observedGeneration ?? null,
      s.webhookPath ?? "",
      s.lastHandledReconcileAt ?? null,
      [...(s.conditions ?? [])]
        .map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration ?? null])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    ]);
  return key(a) === key(b);
}
