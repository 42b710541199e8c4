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

/** Deadline of one Kubernetes API call made while answering a delivery (GET, LIST, PATCH). */
export const KUBE_CALL_TIMEOUT_MS = 10_000;
