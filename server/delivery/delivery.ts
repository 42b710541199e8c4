/**
 * @module server/delivery/delivery
 * One webhook delivery, from request to outcome, in Flux's order of checks: the admission every
 * hook request shares (delivery/admission.ts: method 405, unknown path 404, body over the cap 413,
 * suspended or not Ready 503, no slot 429, validation failed 400), then
 *
 *   a duplicate delivery id 200 · a replay within --replay-window 409 · the valid-delivery budget
 *   429 · filters cannot read the body (JSON that is not an object) 500 · a target failed 500
 *   (after every target was tried; a filter error is a target's failure) · else 200.
 *
 * The outcome always carries a short reason, sent back as JSON: "my receiver does not fire" is
 * the most common complaint about Flux receivers, whose answers have no body at all. Reasons
 * never contain a token, a signature or a Secret's name.
 */
import { Header, type ReceiverType } from "../../shared";
import { parsesRequest, deliveryFilters } from "../targets/filters";
import { failureBudgetSpent, isOutcome, outcome, tooMany, type DeliveryOutcome } from "../outcome/outcomes";
import { typesWith, type Validation } from "../providers";
import type { AnnotateDeps } from "../targets/annotate";
import { handleTargets, summarise, type HandledTargets } from "../targets/route";
import { MAX_BODY_BYTES } from "../limits";
import {
  admit,
  authenticate,
  firstHeader,
  URL_ONLY_TYPES,
  type AdmissionDeps,
  type Admitted,
  type Authenticated,
  type HookRequest,
} from "./admission";
import type { DeliveryGuards } from "./protect/guards";

export interface DeliveryDeps extends AnnotateDeps, AdmissionDeps {
  /** Targets are only logged; answers say so. */
  readonly dryRun?: boolean;
  readonly maxBodyBytes?: number;
}

/** Types whose signature covers the body, the only ones a replay window can judge. */
const BODY_SIGNED_TYPES = typesWith("body-signature");

/** Headers senders put their delivery id in: GitHub, GitLab, Bitbucket, CloudEvents. */
const DELIVERY_ID_HEADERS = [Header.githubDelivery, Header.gitlabEventUuid, Header.bitbucketRequestUuid, Header.ceId];

/** The sender's delivery id. */
export const deliveryId = (headers: Headers) => firstHeader(headers, DELIVERY_ID_HEADERS);

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

/** A delivery on the admission path: its authentication is the type's validator, as in Flux. */
const deliveryRequest = (maxBodyBytes: number): HookRequest<Validation> => ({
  takesPost: "receivers take POST",
  maxBodyBytes,
  authenticate: (provider, request, context) => provider.validate(request, context),
  refusedAs: "rejected",
});
const DELIVERY = deliveryRequest(MAX_BODY_BYTES);

/**
 * Handles one request to /hook/*. What needs no body (405, 404, 413, 503, and 429 at admission)
 * is answered synchronously (delivery/admission.ts).
 */
export function handleDelivery(
  request: Request,
  deps: DeliveryDeps,
  /** requestTarget(request.url), when the caller has it already (Bun builds `url` on every read). */
  target = requestTarget(request.url),
): DeliveryOutcome | Promise<DeliveryOutcome> {
  const kind = deps.maxBodyBytes === undefined ? DELIVERY : deliveryRequest(deps.maxBodyBytes);
  const admitted = admit(request, deps, target, kind);
  if (isOutcome(admitted)) return admitted;
  return deliver(request, admitted, deps, kind).finally(admitted.release);
}

/** An admitted delivery: authenticated by its type, then its targets asked to reconcile. */
async function deliver(
  request: Request,
  admitted: Admitted,
  deps: DeliveryDeps,
  kind: HookRequest<Validation>,
): Promise<DeliveryOutcome> {
  const authenticated = await authenticate(request, admitted, deps, kind);
  if (isOutcome(authenticated)) return authenticated;
  const { entry, known, receiverKey } = admitted;
  const { body, verdict } = authenticated;
  const guards = deps.guards;
  const event = verdict.event;

  const id = deliveryId(request.headers);
  const { digest, duplicateKey } = repeatKeys(entry.spec.type, id, body, guards);
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

  const handled = await filterAndHandleTargets(admitted, deps, authenticated);
  if (isOutcome(handled)) return handled;
  const targets = handled.targets;
  const failed = targets.filter((t) => t.outcome === "failed").length;
  const annotated = targets.filter((t) => t.outcome === "annotated").length;
  const summary = summarise(handled, deps.dryRun);
  if (failed > 0)
    return outcome("failed", `${failed} target${failed === 1 ? "" : "s"} failed; ${summary}`, {
      ...known,
      event,
      targets,
    });
  guards.succeeded(receiverKey, duplicateKey, digest);
  return outcome(annotated > 0 ? "accepted" : "nothing-annotated", summary, { ...known, event, targets });
}

/**
 * The keys that tell a delivery seen before: the replay window's SHA-256 of a signed body (when
 * the window is on), and the duplicate key, the sender's delivery id with the body's hash.
 */
function repeatKeys(
  type: ReceiverType,
  id: string | undefined,
  body: Uint8Array,
  guards: DeliveryGuards,
): { digest: string | undefined; duplicateKey: string | undefined } {
  const digest = BODY_SIGNED_TYPES.has(type) ? guards.bodyDigest(body) : undefined;
  // A duplicate is the same id and the same body, so an id sent ahead with another body (the
  // genuine one is unknown to whoever guesses the id) suppresses nothing. A fast non-cryptographic
  // hash is enough (a SHA-256 costs 6 µs of each delivery): only senders that passed this
  // Receiver's authentication get here, and they could send any delivery anyway. The replay
  // digest serves when there is one, so no body is hashed twice.
  const duplicateKey =
    id !== undefined && !URL_ONLY_TYPES.has(type) ? `${id}\n${digest ?? Bun.hash(body).toString(36)}` : undefined;
  return { digest, duplicateKey };
}

/**
 * The delivery's filters built from its body, then its targets handled through them; a parsed
 * `req` lives until the targets are annotated, so only a few deliveries hold one at once.
 */
async function filterAndHandleTargets(
  admitted: Admitted,
  deps: DeliveryDeps,
  { verdict, meter }: Authenticated<Extract<Validation, { ok: true }>>,
): Promise<HandledTargets | DeliveryOutcome> {
  const { entry, known, receiverKey } = admitted;
  const guards = deps.guards;
  const event = verdict.event;
  const parses = parsesRequest(entry.compiled, verdict);
  const release = parses ? await guards.parsedBodies.acquire() : undefined;
  let handled: HandledTargets;
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
    handled = await handleTargets(entry, deps, filters.filters, verdict);
  } finally {
    release?.();
  }
  // Filters that spent the delivery's CEL budget: the body's doing, so it spends the failure budget.
  if (meter.exceeded) guards.failedValidation(receiverKey);
  return handled;
}
