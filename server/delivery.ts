/**
 * @module server/delivery
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
import { Header } from "../shared";
import type { ObjectKey } from "./receivers/api";
import type { ReceiverIndex } from "./receivers/index";
import type { AuthServices } from "./jwt";
import { VALIDATORS } from "./providers";
import { deliveryFilters } from "./targets/filters";
import { declaredTooLarge, readBody, tooLarge } from "./body";
import { annotateTargets, type AnnotateDeps, type TargetOutcome } from "./targets/annotate";
import { MAX_BODY_BYTES } from "./limits";

export interface DeliveryOutcome {
  readonly status: number;
  readonly reason: string;
  /** Set once the path matched a receiver. */
  readonly receiver?: ObjectKey;
  readonly receiverType?: string;
  readonly event?: string;
  readonly targets?: readonly TargetOutcome[];
}

export interface DeliveryDeps extends AnnotateDeps {
  readonly index: ReceiverIndex;
  /** Token verification for gcr and generic-oidc. */
  readonly auth: AuthServices;
  /** Targets are only logged; answers say so. */
  readonly dryRun?: boolean;
  readonly maxBodyBytes?: number;
}

/** Path plus query exactly as requested: Flux matches RequestURI, so `?x` or a trailing `/` does not match. */
export function requestTarget(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  return start < 0 ? "/" : url.slice(start);
}

/** Headers that name the event, whatever the receiver type; for logs and Events of refusals. */
const EVENT_HEADERS = [Header.githubEvent, Header.gitlabEvent, Header.bitbucketEvent, Header.ceType];

/** The event a refused request claims to be, made safe to log (printable, bounded). */
export function declaredEvent(headers: Headers): string | undefined {
  for (const h of EVENT_HEADERS) {
    const v = headers.get(h);
    if (v) return v.slice(0, 100).replace(/[^\x20-\x7e]/g, "?");
  }
  return undefined;
}

export async function handleDelivery(request: Request, deps: DeliveryDeps): Promise<DeliveryOutcome> {
  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  if (request.method !== "POST") return { status: 405, reason: `method ${request.method} is not allowed: receivers take POST` };
  // A declared oversize body is refused before anything else, as Flux reads the body first.
  if (declaredTooLarge(request.headers, limit)) return { status: 413, reason: tooLarge(limit).reason };

  // Unknown paths are answered without reading the body: a flood of guesses costs a map lookup.
  const entry = deps.index.lookup(requestTarget(request.url));
  if (!entry) return { status: 404, reason: "no receiver at this path" };
  const known = { receiver: entry.key, receiverType: entry.spec?.type };
  if (entry.unavailable !== undefined) return { ...known, status: 503, reason: entry.unavailable };

  const body = await readBody(request, limit);
  if (!body.ok) return { ...known, status: body.status, reason: body.reason };

  const validate = VALIDATORS[entry.spec.type];
  const verdict = await validate(
    { headers: request.headers, body: body.body },
    { spec: entry.spec, secret: entry.secret, compiled: entry.compiled, auth: deps.auth },
  );
  if (!verdict.ok) return { ...known, event: declaredEvent(request.headers), status: 400, reason: verdict.reason };

  const filters = deliveryFilters(entry.compiled, verdict);
  if (!filters.ok) return { ...known, event: verdict.event, status: 500, reason: filters.error };
  const targets = await annotateTargets(entry, deps, filters.filters);
  const event = verdict.event;
  const failed = targets.filter((t) => t.outcome === "failed").length;
  const annotated = targets.filter((t) => t.outcome === "annotated").length;
  const summary = `${annotated} of ${targets.length} target${targets.length === 1 ? "" : "s"} annotated${deps.dryRun ? " (dry run: nothing was written)" : ""}`;
  if (failed > 0) return { ...known, event, targets, status: 500, reason: `${failed} target${failed === 1 ? "" : "s"} failed; ${summary}` };
  return { ...known, event, targets, status: 200, reason: summary };
}
