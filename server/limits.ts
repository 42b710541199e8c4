/**
 * @module server/limits
 * Every limit of the webhook endpoint, named, with its unit and the reason for its value.
 */
import type { Backoff } from "../shared";

/**
 * Largest request body accepted, 3 MiB: Flux's `maxRequestSizeBytes` (notification-controller
 * internal/server/limits.go). GitHub push payloads are capped at 25 MB but the ones Flux users
 * send are a few KiB to a few hundred KiB; 3 MiB keeps drop-in compatibility. Enforced while
 * reading, so an oversized or endless body is never buffered.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * Longest Secret `token` a Receiver is served with, in bytes. Flux's documentation makes tokens of
 * 64 hex characters (a SHA-256 of random bytes), and gitlab and harbor senders put the token in a
 * header, which proxies cap at a few KiB: 4 KiB is 64 times Flux's and still fits one header.
 * Every signature check hashes the token first (an HMAC key longer than 64 bytes is hashed), so a
 * 1 MiB token made each forged-signature check 18 times dearer, 429s included (they are answered
 * after the check); at 4 KiB it costs what a 64-byte one does (13-19 µs per 7 KB body, measured
 * side by side). A Receiver whose token is longer is TokenNotFound and never served.
 */
export const MAX_TOKEN_BYTES = 4096;

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
 * well above a delivery's own worst case (its target PATCHes give up within PATCH_RETRY_BUDGET_MS, 8 s).
 */
export const SHUTDOWN_GRACE_MS = 25_000;

/**
 * Deadline of one Kubernetes API call (GET, LIST, PATCH, status, Events, Lease). A healthy API
 * server answers these in milliseconds; 5 s leaves a delivery time to answer within GitHub's
 * 10 s delivery timeout even when one call hangs.
 */
export const KUBE_CALL_TIMEOUT_MS = 5_000;

/**
 * Objects per page when listing Receivers and Secrets' metadata: a page at a time, each read into
 * fluxhook's records before the next, bounds what is in memory at once (bench/README.md, "lists
 * paged"), and 10,000 Receivers are no slower to list in pages of 100.
 */
export const LIST_PAGE_SIZE = 100;

/**
 * How often discovery is asked again about a kind routing watches that the API server did not
 * serve (its controller not installed): once a minute finds a Flux component installed later
 * without polling an absent API group.
 */
export const UNSERVED_KIND_DISCOVERY_INTERVAL_MS = 60_000;

/**
 * At the first sync, a namespace's Secrets are read with a paged LIST (LIST_PAGE_SIZE) instead
 * of one GET each when at least SECRET_LIST_MIN_READS of them are to be read and they are at
 * least SECRET_LIST_MIN_SHARE of the Secrets the metadata watch shows there. 10,000 Receivers
 * with a Secret each made 10,000 GETs at start-up, and the garbage of those requests stayed in
 * the allocator (bench/README.md, scenario 6); a page costs one request for a hundred. The share
 * keeps the data of other Secrets (TLS keys, Helm releases of up to 1 MiB) away: a namespace
 * where they are more than a quarter is read Secret by Secret, and the data of an unreferenced
 * Secret in a page is dropped with the page.
 */
export const SECRET_LIST_MIN_READS = 10;
export const SECRET_LIST_MIN_SHARE = 0.75;

/** Namespaces whose Secrets are listed at once (a page of 100 Secrets each in memory). */
export const SECRET_LIST_CONCURRENCY = 4;

/**
 * A full garbage collection after every this many status writes. Each write brings a finalizer
 * write, an Event and two watch events; their garbage lives long enough to be promoted, and JSC
 * ran no full collection while 10,000 Receivers were marked Ready (its heap 40 -> 84 MB). One
 * collection per 1,000 writes (~140 ms each there) held that start-up's peak RSS 20-40 MiB lower
 * and the RSS it kept afterwards ~40 MiB lower (bench/README.md, scenario 6); when Receivers
 * change one at a time it runs almost never.
 */
export const FULL_GC_EVERY_STATUS_WRITES = 1_000;

/**
 * A target's PATCH is retried on 409, 429 and 5xx: at most PATCH_MAX_ATTEMPTS attempts, backoff
 * from PATCH_RETRY_BASE_MS doubling (jittered), all within PATCH_RETRY_BUDGET_MS so the delivery
 * still answers within GitHub's 10 s.
 */
export const PATCH_MAX_ATTEMPTS = 5;
export const PATCH_RETRY_BASE_MS = 100;
export const PATCH_RETRY_BUDGET_MS = 8_000;

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

// Abuse limits (server/delivery/protect/guards.ts). The defaults are far above what a real sender does
// (GitHub sends one delivery per push or publish), so only a flood meets them.

/**
 * Valid deliveries per second and burst, per receiver (flags --receiver-rate-limit/--receiver-rate-burst):
 * off by default (rate 0), an opt-in. Measured at 50/s, burst 500, it answered 9,477 of a
 * 10,000-delivery burst with 429, and 99 % of a sustained valid load. GitHub never retries a failed
 * delivery and GitLab disables a hook that keeps failing, so a refused valid delivery is a lost
 * reconcile; coalescing (targets/coalesce.ts) already bounds what valid deliveries cost the API
 * server, and abuse is met with cost bounds (JSON bounds, CEL costs, caps in flight) instead.
 */
export const DEFAULT_VALID_RATE = 0;
export const DEFAULT_VALID_BURST = 500;

/**
 * Deliveries that failed validation, per second and burst, per receiver (flags
 * --receiver-failure-rate-limit/--receiver-failure-burst). A misconfigured sender retrying a bad
 * signature stays far below; a forged flood is answered 429 without touching the valid budget.
 */
export const DEFAULT_FAILED_RATE = 10;
export const DEFAULT_FAILED_BURST = 100;

/**
 * Deliveries in flight at once on one replica (flag --max-concurrent-deliveries). Each holds a
 * body of up to 3 MiB and a few API calls; 1024 bounds that to a few GiB only in the worst case
 * of every body at the cap, and is far above what coalesced bursts need.
 */
export const DEFAULT_MAX_CONCURRENT_DELIVERIES = 1024;

/** In-flight deliveries per receiver: one flooded receiver cannot take every global slot. */
export const MAX_CONCURRENT_PER_RECEIVER = 256;

/**
 * Body bytes the deliveries in flight may bring, by their declared length (the cap for chunked
 * ones). A body is held while it is checked and its targets annotated, and parsed for filters, so
 * 64 MiB of bodies stays within the Deployment's 512 MiB limit beside 10,000 Receivers' state.
 * It fits 21 bodies at the 3 MiB cap, and about a thousand typical GitHub pushes (< 64 KiB).
 * Senders whose bodies are still arriving are evicted first (delivery/protect/guards.ts), so this bound
 * cannot be held by slow senders.
 */
export const MAX_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

/**
 * Successful delivery ids remembered for duplicate detection: per receiver, so one receiver's
 * deliveries never push out another's (one cache shared by all would let one flood evict them), for at most
 * DELIVERY_ID_RECEIVERS receivers at once (the least recently delivered forgotten first).
 * GitHub lets a user redeliver for 3 days, so ids live that long unless pushed out; a receiver
 * that gets more than 100 deliveries in 3 days may annotate a late redelivery once more, a
 * harmless extra reconcile. Each entry is the id (at most 100 characters) and a 64-bit hash of the
 * body, and an expiry: 50,000 at most, under 10 MB.
 */
export const DELIVERY_IDS_PER_RECEIVER = 100;
export const DELIVERY_ID_RECEIVERS = 500;
export const DELIVERY_ID_TTL_MS = 3 * 24 * 60 * 60 * 1000;

/** Body digests remembered for --replay-window: ~150 bytes each (a base64 sha256 and the receiver), ~7.5 MB at the cap. */
export const REPLAY_CAPACITY = 50_000;

/**
 * Time allowed to receive a whole body once the headers are in. A sender slower than this is
 * holding a socket, not delivering. Flux's ReadTimeout allows 30 s, but Bun's idle timer
 * (IDLE_TIMEOUT_SECONDS), which body bytes do not reset, closes the connection at a tick of a 4 s
 * sweep, 8 to 12 s after the request began: this fires before the earliest of them, so a slow
 * sender gets a 408 with a reason, never a reset.
 */
export const BODY_READ_TIMEOUT_MS = 7_000;

/**
 * Bun's idleTimeout: once a request's headers are in, the time before Bun closes its connection
 * (a body still arriving, whose bytes do not reset it, or a kept-alive connection between
 * requests), at a tick of its 4 s socket sweep, so 8 to 12 s. Headers that never finish are closed
 * by Bun's own header timeout, the same 8 to 12 s whatever this is, as Flux's ReadHeaderTimeout
 * (10 s). Bun's default too.
 */
export const IDLE_TIMEOUT_SECONDS = 10;

/**
 * Deepest nesting of a JSON body that is parsed (by a validator or for CEL's `req`). Real
 * webhook payloads stay below 10 levels (@octokit/webhooks-examples: 8); Go's encoding/json,
 * which Flux uses, stops at 10,000. A body nested 1.5 million levels deep is refused (400) by a
 * pass over its bytes (server/providers/json-bounds.ts) before any parse.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Most values (strings, keys, numbers, literals, arrays, objects) in a JSON body that is parsed.
 * Parsing costs about 130 bytes of heap per value, whatever the body's byte size: a million empty
 * arrays fit in 3 MiB and cost ~130 MB. The densest real payloads (@octokit/webhooks-examples)
 * hold one value per 14 bytes, ~225,000 at the 3 MiB body cap, so 250,000 refuses only what no
 * sender sends, and bounds one parse to ~33 MB.
 */
export const MAX_JSON_VALUES = 250_000;

/**
 * Largest OIDC discovery document or JWKS read (issuers and Google's keys). Real ones are a few
 * KiB (Google's JWKS: 1.3 KiB; Dex's discovery: 1.5 KiB); a 300 MB document read whole takes
 * 712 MB of RSS (1 GB for a key set). The read stops, and the fetch fails, past this.
 */
export const OIDC_MAX_DOCUMENT_BYTES = 1024 * 1024;

/** Redirects followed for discovery and keys: Go's http.Client default, which go-oidc uses. */
export const OIDC_MAX_REDIRECTS = 10;

/**
 * After a failed discovery or key-set fetch, requests naming that issuer (or key set) fail at once
 * for this long instead of each fetching again: jose caches only successes, so while an issuer is
 * down or unreachable (gcr in an air-gapped cluster) a forged token costs no fetch.
 */
export const OIDC_FETCH_RETRY_MS = 5_000;

/**
 * Longest text of a delivery's outcome (its reason, each target's reason, its event) that reaches
 * an answer, a log line, an Event or /deliveries. Reasons quote what the sender sent (an event
 * type, a content type, an issuer): echoed whole, a 3 MiB cdevents `context.type` makes 365 MB
 * of logs and a 63 MB /deliveries from 130 requests. Cut at one place (outcome/outcome-text.ts),
 * so no output holds more than this many characters of sender text.
 */
export const MAX_OUTCOME_TEXT_CHARS = 200;

/**
 * How long a routed delivery waits for the source index's first lists (a Receiver with
 * `fluxhook.io/route-by` just served, or a replica just started): 10,000 GitRepositories are listed
 * in about a second, and 5 s leaves the delivery time to annotate within GitHub's 10 s. Past it the
 * delivery fails (500, "not indexed yet; retry") rather than guess.
 */
export const SOURCE_INDEX_WAIT_MS = 5_000;

/**
 * Characters of the repository (and refs) a routed delivery's answer quotes: sender text, from
 * whoever holds a URL-only type's URL. 100 names nearly every repository whole (GitHub's longest
 * `owner/name` is 140 and is cut) and leaves room in an outcome's 200 characters
 * (MAX_OUTCOME_TEXT_CHARS) for the counts and the ref.
 */
export const MAX_REPOSITORY_DISPLAY_CHARS = 100;

/**
 * Deliveries holding a parsed body for their filters (CEL's `req`) at once; the others wait their
 * turn. A parse within the JSON bounds costs up to ~33 MB of heap and is kept while the targets
 * are annotated, so 4 bound parsed bodies to ~130 MB beside the raw bytes in flight
 * (MAX_BODY_BYTES_IN_FLIGHT). The parses of validators (registries, nexus, gcr, cdevents) are
 * synchronous and dropped at once, so they run one at a time by construction.
 */
export const MAX_PARSED_BODIES = 4;

// Status queries (shared/status-query.ts, server/delivery/status-query.ts). A query is polled by
// one sender after a delivery; these bound what one query can make fluxhook read and answer.

/**
 * Targets one query may name: the wire contract's bound (the sender splits beyond it). A
 * delivery's targets are a Receiver's resources, rarely more than a handful; a selector matching
 * a hundred objects still fits one query.
 */
export { MAX_STATUS_QUERY_TARGETS } from "../shared";

/**
 * Largest query body: 100 targets of a kind, a namespace and a name of up to 253 characters each
 * and a requestedAt fit in 96 KiB. Anything larger is not a query.
 */
export const MAX_STATUS_QUERY_BYTES = 96 * 1024;

/**
 * Kustomizations (and, separately, HelmReleases) read in a source's namespace to find those that
 * use it: each is projected at once (api/observed.ts), so memory stays a few hundred bytes per
 * object. Flux's largest users have a few hundred per namespace; beyond this the answer says it
 * is truncated rather than paging through a namespace for every poll.
 */
export const MAX_CONSUMERS_SCANNED = 2_000;

/**
 * Consumers one answer lists, over all its targets, and the characters of its texts (a Ready
 * message, a name, any other text: a reason, a revision, lastHandledReconcileAt, an error): the
 * wire contract's bounds, from which the sender computes how much of an answer it reads
 * (MAX_STATUS_ANSWER_BYTES). More consumers are flagged truncated, longer texts cut.
 */
export {
  MAX_CONDITION_MESSAGE_CHARS,
  MAX_STATUS_ANSWER_CONSUMERS,
  MAX_STATUS_NAME_CHARS,
  MAX_STATUS_TEXT_CHARS,
} from "../shared";

/**
 * Status queries per Receiver, per second and burst, always on and apart from the deliveries'
 * budgets: a query reads the cluster, and a URL-only Receiver's URL is all it takes to send one,
 * so without a bound the API requests queries cost grow with the rate they are sent at (16
 * connections made 10,934 API requests a second). `wait-for` polls every 2 to 15 s with one query
 * per 100 targets: a burst of 30 is three polls of 1,000 targets, 2 a second several senders at
 * once. Past it the answer is 429 with Retry-After, which the sender polls through.
 */
export const STATUS_QUERY_RATE = 2;
export const STATUS_QUERY_BURST = 30;

/**
 * How long a list of a namespace's Kustomizations (or HelmReleases) read for status queries
 * serves the queries that follow: one LIST per namespace and kind per interval, shared by the
 * queries in flight too, whatever their rate. `wait-for` pauses at least 1 s between polls
 * (action/wait.ts POLL_BACKOFF), so each of its polls reads lists made after its previous poll was
 * answered: a sender never sees the same list twice. Targets themselves are read per query.
 */
export const STATUS_LIST_TTL_MS = 1_000;

/**
 * Consumer lists kept at once (a namespace and a kind each, a few hundred bytes per object listed,
 * MAX_CONSUMERS_SCANNED at most): the least recently read is dropped first.
 */
export const STATUS_LISTS_KEPT = 64;

/**
 * A status query's reads of the cluster, all together: each API call has its own deadline
 * (KUBE_CALL_TIMEOUT_MS), but a query makes several in turn (its targets, then each page of the
 * consumer lists), and with a slow API server one query took 35 s. Past it the query is answered
 * 504, and the sender asks again.
 */
export const STATUS_QUERY_DEADLINE_MS = 8_000;

/**
 * The JSON of a status query body, checked before it is parsed: a query of MAX_STATUS_QUERY_TARGETS
 * targets nests 3 levels deep and holds about 900 values; a body within MAX_STATUS_QUERY_BYTES could
 * hold 48,000 (4.7 ms of CPU to parse, for an unauthenticated sender of a URL-only type).
 */
export const STATUS_QUERY_JSON_DEPTH = 8;
export const STATUS_QUERY_JSON_VALUES = 2_048;

/**
 * The timeouts and bounds above that tests shorten, in one object: the server and the Kubernetes
 * client take a `Partial<Tuning>` and fill the rest from here, so the defaults are these
 * constants and nothing else.
 */
export const DEFAULT_TUNING = {
  /** Re-list delays after a watch error: fast for a blip, capped so an outage is polled gently. */
  watchBackoff: { baseMs: 200, capMs: 30_000 } as Backoff,
  /** Retry delays of a failed Secret read: quick for a blip, gentle for missing RBAC. */
  secretReadBackoff: { baseMs: 500, capMs: 30_000 } as Backoff,
  /** Retry delays of a failed status write: it is retried until it lands. */
  statusWriteBackoff: { baseMs: 500, capMs: 60_000 } as Backoff,
  callTimeoutMs: KUBE_CALL_TIMEOUT_MS,
  patchBudgetMs: PATCH_RETRY_BUDGET_MS,
  listPageSize: LIST_PAGE_SIZE,
  bodyTimeoutMs: BODY_READ_TIMEOUT_MS,
  idleTimeoutSeconds: IDLE_TIMEOUT_SECONDS,
  bodyBytesInFlight: MAX_BODY_BYTES_IN_FLIGHT,
  sourceIndexWaitMs: SOURCE_INDEX_WAIT_MS,
  unservedKindDiscoveryMs: UNSERVED_KIND_DISCOVERY_INTERVAL_MS,
  statusQueryDeadlineMs: STATUS_QUERY_DEADLINE_MS,
};

export type Tuning = Readonly<typeof DEFAULT_TUNING>;

/** `partial` over the defaults. */
export const tuningOf = (partial: Partial<Tuning> = {}): Tuning => ({ ...DEFAULT_TUNING, ...partial });
