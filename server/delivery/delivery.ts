/**
 * @module server/delivery/delivery
 * One webhook delivery, from request to outcome, in Flux's order of checks:
 *
 *   wrong method 405 · body over the cap 413 · unknown path 404 · suspended or not Ready 503 ·
 *   validation failed 400 · filters cannot read the body (JSON that is not an object) 500 ·
 *   a target failed 500 (after every target was tried; a filter error is a target's failure) ·
 *   else 200.
 *
 * The outcome always carries a short reason, sent back as JSON: "my receiver does not fire" is
 * the most common complaint about Flux receivers, whose answers have no body at all. Reasons
 * never contain a token, a signature or a Secret's name.
 */
import { Header, RECEIVER_TYPES } from "../../shared";
import { keyString } from "../api/receiver";
import type { ReceiverIndex, ServingEntry } from "../receivers/index";
import type { DeliveryGuards } from "./protect/guards";
import type { AuthServices } from "../jwt";
import { CREDENTIALS, VALIDATORS, type Credential } from "../providers";
import { deliveryFilters, parsesRequest } from "../targets/filters";
import { bodyBytesBound, readBody, tooLarge } from "./body";
import { failureBudgetSpent, outcome, tooMany, UNKNOWN_PATH, type DeliveryOutcome } from "../outcome/outcomes";
import type { BodyReading } from "./protect/guards";
import { CelMeter } from "../cel";
import { annotateTargets, type AnnotateDeps, type TargetOutcome } from "../targets/annotate";
import { BODY_READ_TIMEOUT_MS, MAX_BODY_BYTES } from "../limits";

export interface DeliveryDeps extends AnnotateDeps {
  readonly index: ReceiverIndex;
  /** Token verification for gcr and generic-oidc. */
  readonly auth: AuthServices;
  /** Targets are only logged; answers say so. */
  readonly dryRun?: boolean;
  readonly maxBodyBytes?: number;
  readonly bodyTimeoutMs?: number;
  /** Rate limits, concurrency caps, duplicate and replay detection. */
  readonly guards: DeliveryGuards;
}

/** The types of one credential (providers' CREDENTIALS table). */
const typesWith = (credential: Credential): ReadonlySet<string> =>
  new Set(RECEIVER_TYPES.filter((t) => CREDENTIALS[t] === credential));

/** Types whose signature covers the body, the only ones a replay window can judge. */
const BODY_SIGNED_TYPES = typesWith("body-signature");

/**
 * Types whose only credential is the URL (as in Flux). Their delivery ids are not used for
 * duplicate detection: anyone with the URL could send a predictable id (a `Ce-Id`) ahead of the
 * genuine delivery and make it a "duplicate" that annotates nothing.
 */
const URL_ONLY_TYPES = typesWith("url-only");

/** Headers senders put their delivery id in: GitHub, GitLab, Bitbucket, CloudEvents. */
const DELIVERY_ID_HEADERS = [Header.githubDelivery, Header.gitlabEventUuid, Header.bitbucketRequestUuid, Header.ceId];

/** Headers that name the event, whatever the receiver type; for logs and Events of refusals. */
const EVENT_HEADERS = [Header.githubEvent, Header.gitlabEvent, Header.bitbucketEvent, Header.ceType];

/**
 * The first of `names` present, made safe to log, remember and show: sender-controlled text is
 * cut to 100 characters and anything unprintable replaced, so it cannot forge log lines.
 */
function firstHeader(headers: Headers, names: readonly string[]): string | undefined {
  for (const h of names) {
    const v = headers.get(h);
    if (v) return v.slice(0, 100).replace(/[^\x20-\x7e]/g, "?");
  }
  return undefined;
}

/** The sender's delivery id. */
export const deliveryId = (headers: Headers) => firstHeader(headers, DELIVERY_ID_HEADERS);

/** The event a request claims to be (a refused one has no validated event). */
const declaredEvent = (headers: Headers) => firstHeader(headers, EVENT_HEADERS);

/**
 * Path plus query of `request.url`: Flux matches RequestURI, so `?x` or a trailing `/` does not
 * match. Bun's url is absolute, or only the path when the Host header is empty or not a host.
 */
export function requestTarget(url: string): string {
  if (url.startsWith("/")) return url;
  const scheme = url.indexOf("://");
  const start = scheme < 0 ? -1 : url.indexOf("/", scheme + 3);
  return start < 0 ? "/" : url.slice(start);
}

/**
 * Handles one request to /hook/*. What needs no body (405, 413, 404, 503, and 429 at admission)
 * is answered synchronously: a flood of guesses then costs no promise, no await, no microtask.
 */
export function handleDelivery(
  request: Request,
  deps: DeliveryDeps,
  /** requestTarget(request.url), when the caller has it already (Bun builds `url` on every read). */
  target = requestTarget(request.url),
): DeliveryOutcome | Promise<DeliveryOutcome> {
  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  if (request.method !== "POST")
    return outcome("method-not-allowed", `method ${request.method} is not allowed: receivers take POST`);

  // Unknown paths are answered without reading the body or even the headers: a flood of guesses
  // costs a map lookup. Flux reads the body first, so an oversized body to an unknown path is a
  // 413 there and a 404 here: the answer that tells a sender with a wrong URL what is wrong.
  const entry = deps.index.lookup(target);
  if (!entry) return UNKNOWN_PATH;
  // A declared oversize body is refused before anything else about the receiver, as Flux does.
  const bodyBytes = bodyBytesBound(request.headers, limit);
  const known = { receiver: entry.key, receiverType: entry.spec?.type };
  if (bodyBytes > limit) return outcome("too-large", tooLarge(limit).reason, known);
  if (entry.unavailable !== undefined) return outcome("unavailable", entry.unavailable, known);

  const receiverKey = keyString(entry.key);
  // A type whose URL is its only credential cannot tell its sender from whoever else has the URL:
  // once its deliveries spent the failure budget, bodies are not read until it refills (a signed
  // type must read the body to tell a forgery, and keeps its real sender's budget apart).
  if (URL_ONLY_TYPES.has(entry.spec!.type)) {
    const left = deps.guards.failureBudgetLeft(receiverKey);
    if (!left.ok) return tooMany(failureBudgetSpent(), left, known);
  }
  // The admission's reading calls the body read off on eviction or at the body deadline.
  const admission = deps.guards.admit(receiverKey, bodyBytes, deps.bodyTimeoutMs ?? BODY_READ_TIMEOUT_MS);
  if (!admission.ok) return tooMany(admission.reason, admission, known);
  return validateAndAnnotate(request, entry, deps, known, receiverKey, limit, admission.reading).finally(
    admission.release,
  );
}

async function validateAndAnnotate(
  request: Request,
  entry: ServingEntry,
  deps: DeliveryDeps,
  known: Pick<DeliveryOutcome, "receiver" | "receiverType">,
  receiverKey: string,
  limit: number,
  reading: BodyReading,
): Promise<DeliveryOutcome> {
  const guards = deps.guards;
  const timeoutMs = deps.bodyTimeoutMs ?? BODY_READ_TIMEOUT_MS;
  const body = await readBody(request, limit, reading, timeoutMs);
  reading.done();
  if (!body.ok) {
    // An oversized or stalled body is a failed delivery too: it spends the same budget.
    const budget = guards.failedValidation(receiverKey);
    if (!budget.ok) return tooMany(failureBudgetSpent(body.reason), budget, known);
    return outcome(body.kind, body.reason, known);
  }

  // One CEL budget for the whole delivery: OIDC expressions and filters share it.
  const meter = new CelMeter();
  const validate = VALIDATORS[entry.spec.type];
  const verdict = await validate(
    { headers: request.headers, body: body.body },
    { spec: entry.spec, secret: entry.secret, compiled: entry.compiled, auth: deps.auth, meter },
  );
  if (!verdict.ok) {
    const event = declaredEvent(request.headers);
    const budget = guards.failedValidation(receiverKey);
    if (!budget.ok) return tooMany(failureBudgetSpent(verdict.reason), budget, { ...known, event });
    return outcome("rejected", verdict.reason, { ...known, event });
  }
  const event = verdict.event;

  const id = deliveryId(request.headers);
  // The replay window's SHA-256 of a signed body, when the window is on.
  const digest = BODY_SIGNED_TYPES.has(entry.spec.type) ? guards.bodyDigest(body.body) : undefined;
  // The id with the body's hash: a duplicate is the same id and the same body, so an id sent
  // ahead with another body (the genuine one is unknown to whoever guesses the id) suppresses nothing.
  // A fast non-cryptographic hash is enough (a SHA-256 was 6 µs of each delivery): only senders
  // that passed this Receiver's authentication get here, and they could send any delivery anyway.
  // The replay digest serves when there is one, so no body is hashed twice.
  const duplicateKey =
    id !== undefined && !URL_ONLY_TYPES.has(entry.spec.type)
      ? `${id}\n${digest ?? Bun.hash(body.body).toString(36)}`
      : undefined;
  if (guards.isDuplicate(receiverKey, duplicateKey))
    return outcome("duplicate", `duplicate delivery ${JSON.stringify(id)}: already handled, nothing annotated`, {
      ...known,
      event,
      targets: [],
    });
  if (guards.isReplay(receiverKey, digest))
    return outcome("replayed", "this signed body was already delivered within the replay window", { ...known, event });
  const budget = guards.validDelivery(receiverKey);
  if (!budget.ok) return tooMany("too many deliveries for this receiver; retry later", budget, { ...known, event });

  const parses = parsesRequest(entry.compiled, verdict);
  // A parsed `req` lives until the targets are annotated: only a few deliveries hold one at once.
  const release = parses ? await guards.parsedBodies.acquire() : undefined;
  let targets: readonly TargetOutcome[];
  try {
    // For a type whose URL is its only credential, every request is as authentic as the next: once
    // its deliveries have spent the failure budget (filters that ran out of budget or could not
    // read the body among them), the body is not parsed again until the budget refills. Asked
    // once the slot is held, as the deliveries queued for it may have spent the budget meanwhile.
    if (parses && URL_ONLY_TYPES.has(entry.spec.type)) {
      const left = guards.failureBudgetLeft(receiverKey);
      if (!left.ok) return tooMany(failureBudgetSpent("filters"), left, { ...known, event });
    }
    const filters = deliveryFilters(entry.compiled, verdict, meter);
    if (!filters.ok) {
      // A body the filters cannot read, or that spent the CEL budget, is a failed delivery.
      guards.failedValidation(receiverKey);
      return outcome(filters.status === 400 ? "rejected" : "failed", filters.error, { ...known, event });
    }
    targets = await annotateTargets(entry, deps, filters.filters);
  } finally {
    release?.();
  }
  // Filters that spent the delivery's CEL budget: the body's doing, so it spends the failure budget.
  if (meter.exceeded) guards.failedValidation(receiverKey);
  const failed = targets.filter((t) => t.outcome === "failed").length;
  const annotated = targets.filter((t) => t.outcome === "annotated").length;
  const summary = `${annotated} of ${targets.length} target${targets.length === 1 ? "" : "s"} annotated${deps.dryRun ? " (dry run: nothing was written)" : ""}`;
  if (failed > 0)
    return outcome("failed", `${failed} target${failed === 1 ? "" : "s"} failed; ${summary}`, {
      ...known,
      event,
      targets,
    });
  guards.succeeded(receiverKey, duplicateKey, digest);
  return outcome(annotated > 0 ? "accepted" : "nothing-annotated", summary, { ...known, event, targets });
}
