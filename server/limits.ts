/**
 * @module server/limits
 * Every limit of the webhook endpoint, named, with its unit and the reason for its value.
 */

/**
 * Largest request body accepted, 3 MiB: Flux's `maxRequestSizeBytes` (notification-controller
 * internal/server/limits.go). GitHub push payloads are capped at 25 MB but the ones Flux users
 * send are a few KiB to a few hundred KiB; 3 MiB keeps drop-in compatibility. Enforced while
 * reading, so an oversized or endless body is never buffered.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** Header names that go into a status-code log line are capped so a giant header cannot bloat logs. */
export const MAX_LOGGED_HEADER_CHARS = 200;

/**
 * Targets of one delivery annotated at once. A receiver with hundreds of targets must answer
 * well within GitHub's 10 s delivery timeout, without opening hundreds of API connections at once.
 */
export const TARGET_CONCURRENCY = 16;

/**
 * How long a shutdown waits for in-flight deliveries. Kubernetes gives a pod 30 s between
 * SIGTERM and SIGKILL by default; 25 s leaves time to release the Lease and exit cleanly, and is
 * well above a delivery's own worst case (its Kubernetes calls time out after 10 s).
 */
export const SHUTDOWN_GRACE_MS = 25_000;

/** Deadline of one Kubernetes API call made while answering a delivery (GET, LIST, PATCH). */
export const KUBE_CALL_TIMEOUT_MS = 10_000;

/**
 * CEL evaluation steps (AST nodes evaluated, comprehension iterations included) one delivery may
 * spend across all its filters and OIDC expressions. Filters run on attacker-supplied bodies, and
 * a comprehension over a 3 MiB body nested in another is ~10^12 steps: this cuts it off after
 * about 30 ms of CPU. Real filters take tens of steps per target, so even a receiver with
 * thousands of targets stays far below it. (Kubernetes' per-expression CEL cost limit is 10^6 too.)
 */
export const CEL_COST_LIMIT = 1_000_000;

/**
 * Milliseconds of evaluation one delivery may spend in CEL, whatever the step count: a single
 * step can be a builtin over a whole body (`contains` on a 3 MiB string), which the step count
 * does not weigh. Time spent waiting for the API server between evaluations is not counted.
 */
export const CEL_TIME_LIMIT_MS = 100;

/** Deadline of one fetch of an OIDC discovery document or JWKS (issuer and Google keys). */
export const OIDC_FETCH_TIMEOUT_MS = 5_000;

/**
 * How long a discovery document is trusted before it is fetched again. Flux fetches it on every
 * request; issuers change it rarely (key rotation goes through the JWKS, refreshed on an unknown
 * `kid`), so once an hour keeps senders from turning deliveries into fetches.
 */
export const OIDC_DISCOVERY_TTL_MS = 60 * 60 * 1000;

/**
 * Least time between two JWKS fetches for one issuer: a token with an unknown `kid` refreshes the
 * keys, but a flood of forged `kid`s must not turn into a flood of fetches (jose's default).
 */
export const JWKS_COOLDOWN_MS = 30_000;

/** How long fetched keys are used before they are fetched again even without an unknown `kid`. */
export const JWKS_MAX_AGE_MS = 10 * 60 * 1000;
