/**
 * @module server/outcome/outcomes
 * Every way a request to a hook can end, deliveries and status queries alike, named once: its
 * HTTP status, its metric label (`fluxhook_deliveries_total{outcome}` and /deliveries), the
 * reason of the Kubernetes Event on its Receiver, and the level of its log line. Metrics, Events,
 * logs and /deliveries all read this table, so they cannot disagree about what a status meant.
 * An outcome is made only through `outcome()`, which takes its status from the table.
 *
 * This vocabulary sits below the modules that make outcomes (delivery/) and those that report
 * them (observe/), so neither imports the other.
 */
import type { ObjectKey } from "../api/receiver";
import type { LogLevel } from "../config";
import type { TargetOutcome } from "../targets/annotate";

export interface OutcomeInfo {
  readonly status: number;
  readonly metric: string;
  /** The Event on the Receiver; undefined when none is recorded (no Receiver matched). */
  readonly event: { readonly type: "Normal" | "Warning"; readonly reason: string } | undefined;
  /**
   * Refusals of a known receiver are errors its owner wants to see; they are bounded by the
   * failure rate limit. The 429s beyond it, and guesses at unknown paths, would turn a flood into
   * a log flood: they are debug lines, and counted in the metrics.
   */
  readonly log: LogLevel;
}

const warning = (reason: string) => ({ type: "Warning" as const, reason });
const normal = (reason: string) => ({ type: "Normal" as const, reason });
const rejected = warning("DeliveryRejected");

export const OUTCOMES = {
  /** 200, at least one target was asked to reconcile. */
  accepted: { status: 200, metric: "accepted", event: normal("ReconcileRequested"), log: "info" },
  /** 200 without an annotation: filters skipped every target, or nothing matched. */
  "nothing-annotated": { status: 200, metric: "accepted", event: normal("NothingAnnotated"), log: "info" },
  /** 200 for a delivery id already handled: nothing annotated again. */
  duplicate: { status: 200, metric: "accepted", event: normal("DuplicateDelivery"), log: "info" },
  /** 200 to a status query: what each target's controller made of the request. Senders poll: debug. */
  answered: { status: 200, metric: "answered", event: undefined, log: "debug" },
  "method-not-allowed": { status: 405, metric: "method_not_allowed", event: undefined, log: "debug" },
  "unknown-path": { status: 404, metric: "unknown_path", event: undefined, log: "debug" },
  "too-large": { status: 413, metric: "too_large", event: rejected, log: "error" },
  unavailable: { status: 503, metric: "unavailable", event: warning("ReceiverNotReady"), log: "error" },
  /** Validation failed, or the body could not be read (a delivery); a malformed status query. */
  rejected: { status: 400, metric: "rejected", event: rejected, log: "error" },
  /** A status query whose credential failed (a delivery's failed validation is a 400, as in Flux). */
  unauthenticated: { status: 401, metric: "unauthenticated", event: rejected, log: "error" },
  /** A status query naming an object it may not read. */
  forbidden: { status: 403, metric: "forbidden", event: rejected, log: "error" },
  /** The body did not arrive in time, or was called off to make room for newer deliveries. */
  "too-slow": { status: 408, metric: "too_slow", event: rejected, log: "error" },
  /** The same signed body within --replay-window. */
  replayed: { status: 409, metric: "replayed", event: rejected, log: "error" },
  /** A rate limit or an in-flight cap; Retry-After says when to come back. */
  "too-many": { status: 429, metric: "rate_limited", event: rejected, log: "debug" },
  /** Filters could not read the body, or a target failed. */
  failed: { status: 500, metric: "failed", event: warning("ReconcileFailed"), log: "error" },
} as const satisfies Record<string, OutcomeInfo>;

export type OutcomeKind = keyof typeof OUTCOMES;

/** How one request to a hook ended; `Target` is what its answer lists of each target. */
export interface Outcome<Target = TargetOutcome> {
  /** What happened, by name (OUTCOMES gives its status, metric label, Event and log level). */
  readonly kind: OutcomeKind;
  /** OUTCOMES[kind].status, kept beside it for the response. */
  readonly status: number;
  readonly reason: string;
  /** Set once the path matched a receiver. */
  readonly receiver?: ObjectKey;
  readonly receiverType?: string;
  readonly event?: string;
  readonly targets?: readonly Target[];
  /** For 429 answers: the Retry-After header. */
  readonly retryAfterSeconds?: number;
}

/** A delivery's outcome: its targets are the annotations it asked for. */
export type DeliveryOutcome = Outcome<TargetOutcome>;

/** An outcome's receiver, type, event and Retry-After (every field but its kind, status and reason). */
export type OutcomeDetails<Target = TargetOutcome> = Omit<Outcome<Target>, "kind" | "status" | "reason">;

/** An outcome of this kind; its status comes from the table, so the two cannot disagree. */
export const outcome = <Target = TargetOutcome>(
  kind: OutcomeKind,
  reason: string,
  details: OutcomeDetails<Target> = {},
): Outcome<Target> => ({ ...details, kind, status: OUTCOMES[kind].status, reason });

/** A 429: a budget or a cap said no; Retry-After tells the sender when to come back. */
export const tooMany = <Target = TargetOutcome>(
  reason: string,
  refusal: { readonly retryAfterSeconds: number },
  details: OutcomeDetails<Target>,
) => outcome<Target>("too-many", reason, { ...details, retryAfterSeconds: refusal.retryAfterSeconds });

/** Wording of a 429 from the failure budget; `why` is what failed, when a delivery of this request did. */
export const failureBudgetSpent = (why?: string) =>
  `too many failed deliveries for this receiver${why === undefined ? "" : ` (${why})`}; retry later`;

/** The answer to a path that names no Receiver: one frozen value, as a flood of guesses gets it. */
export const UNKNOWN_PATH: Outcome<never> = Object.freeze(outcome<never>("unknown-path", "no receiver at this path"));

/** True when `value` is an outcome (a request's end) rather than the admission or work that goes on. */
export const isOutcome = <Target>(value: object): value is Outcome<Target> => "kind" in value && "status" in value;
