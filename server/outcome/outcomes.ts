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

/** The requests to a hook: a delivery (`/hook/<digest>`) and a status query (`/hook/<digest>/status`). */
export type HookRequestKind = "delivery" | "status query";

export interface OutcomeInfo {
  readonly status: number;
  /** What it means, for the receiver's OpenAPI description (http/openapi.ts). */
  readonly summary: string;
  /** The requests that can end so. */
  readonly requests: readonly HookRequestKind[];
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
const delivery = ["delivery"] as const;
const query = ["status query"] as const;
const both = ["delivery", "status query"] as const;

export const OUTCOMES = {
  accepted: {
    status: 200,
    summary: "At least one target was asked to reconcile.",
    requests: delivery,
    metric: "accepted",
    event: normal("ReconcileRequested"),
    log: "info",
  },
  "nothing-annotated": {
    status: 200,
    summary: "Nothing to annotate: the filters skipped every target, or no object matched.",
    requests: delivery,
    metric: "accepted",
    event: normal("NothingAnnotated"),
    log: "info",
  },
  duplicate: {
    status: 200,
    summary: "A delivery id already handled, with the same body: nothing annotated again.",
    requests: delivery,
    metric: "accepted",
    event: normal("DuplicateDelivery"),
    log: "info",
  },
  // Senders poll the status query: its answers are debug lines.
  answered: {
    status: 200,
    summary: "What each target's controller made of the request, and of the sources, their consumers.",
    requests: query,
    metric: "answered",
    event: undefined,
    log: "debug",
  },
  "method-not-allowed": {
    status: 405,
    summary: "Only POST is served (the Allow header says so).",
    requests: both,
    metric: "method_not_allowed",
    event: undefined,
    log: "debug",
  },
  "unknown-path": {
    status: 404,
    summary: "No Receiver at this path, as requested (no dot segment or other spelling is normalised).",
    requests: both,
    metric: "unknown_path",
    event: undefined,
    log: "debug",
  },
  "too-large": {
    status: 413,
    summary: "The body is larger than the cap (3 MiB for a delivery, 96 KiB for a status query).",
    requests: both,
    metric: "too_large",
    event: rejected,
    log: "error",
  },
  unavailable: {
    status: 503,
    summary: "The Receiver is suspended or not Ready, or a status query has no cluster to read.",
    requests: both,
    metric: "unavailable",
    event: warning("ReceiverNotReady"),
    log: "error",
  },
  rejected: {
    status: 400,
    summary: "A delivery failed its type's validation, or its body could not be read; a malformed status query.",
    requests: both,
    metric: "rejected",
    event: rejected,
    log: "error",
  },
  // A delivery's failed validation is a 400, as in Flux.
  unauthenticated: {
    status: 401,
    summary: "The status query's credential failed (the delivery's, applied to the query).",
    requests: query,
    metric: "unauthenticated",
    event: rejected,
    log: "error",
  },
  forbidden: {
    status: 403,
    summary: "The status query names an object it may not read.",
    requests: query,
    metric: "forbidden",
    event: rejected,
    log: "error",
  },
  "too-slow": {
    status: 408,
    summary: "The body did not arrive in time, or was called off to make room for newer requests.",
    requests: both,
    metric: "too_slow",
    event: rejected,
    log: "error",
  },
  replayed: {
    status: 409,
    summary: "The same signed body within --replay-window.",
    requests: delivery,
    metric: "replayed",
    event: rejected,
    log: "error",
  },
  "too-many": {
    status: 429,
    summary: "A rate limit or an in-flight cap; Retry-After says when to come back.",
    requests: both,
    metric: "rate_limited",
    event: rejected,
    log: "debug",
  },
  "timed-out": {
    status: 504,
    summary: "The cluster did not answer the status query's reads within their deadline (8 s); asking again may.",
    requests: query,
    metric: "timed_out",
    event: undefined,
    log: "error",
  },
  // Nothing reaches the client; the status (nginx's) is the log line's and the metrics'.
  "client-gone": {
    status: 499,
    summary: "The client closed the connection before the status query was answered.",
    requests: [],
    metric: "client_gone",
    event: undefined,
    log: "debug",
  },
  failed: {
    status: 500,
    summary: "The filters could not read the body, or a target failed (every target was tried).",
    requests: delivery,
    metric: "failed",
    event: warning("ReconcileFailed"),
    log: "error",
  },
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
