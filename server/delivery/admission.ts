/**
 * @module server/delivery/admission
 * The one admission path of a hook: every delivery (`/hook/<digest>`) and every status query
 * (`/hook/<digest>/status`) goes through it before its own work, in Flux's order of checks:
 *
 *   wrong method 405 · unknown path 404 · declared body over the cap 413 · not Ready 503 ·
 *   (a status query) no cluster to read 503 · a URL-only type past its failure budget 429 ·
 *   no slot in flight 429 · body over the cap 413, late 408, unreadable 400 ·
 *   the type's authentication failed: 400 for a delivery (as in Flux), 401 for a query.
 *
 * `admit` answers what needs no body synchronously (a flood of guesses costs no promise, no
 * await, no microtask); `authenticate` reads the body within its cap and deadline and runs the
 * type's check (its record in providers/). Every refusal from the body on spends the Receiver's
 * failure budget, and once the budget is spent the answer is 429: a flood of forgeries is
 * bounded, and its log lines with it (outcome/outcomes.ts logs 429s at debug).
 */
import { Header } from "../../shared";
import { keyString } from "../api/receiver";
import { CelMeter } from "../cel";
import { BODY_READ_TIMEOUT_MS } from "../limits";
import {
  failureBudgetSpent,
  outcome,
  tooMany,
  UNKNOWN_PATH,
  type Outcome,
  type OutcomeDetails,
  type OutcomeKind,
} from "../outcome/outcomes";
import { PROVIDERS, typesWith, type DeliveryRequest, type Provider, type ValidatorContext } from "../providers";
import type { ServingEntry, ReceiverIndex } from "../receivers/index";
import type { AuthServices } from "../jwt";
import { bodyBytesBound, readBody, tooLarge } from "./body";
import type { BodyReading, DeliveryGuards } from "./protect/guards";

export interface AdmissionDeps {
  readonly index: ReceiverIndex;
  /** Token verification for gcr and generic-oidc. */
  readonly auth: AuthServices;
  /** Rate limits, concurrency caps, duplicate and replay detection. */
  readonly guards: DeliveryGuards;
  readonly bodyTimeoutMs?: number;
}

/** What a kind of hook request (a delivery, a status query) brings to the shared path. */
export interface HookRequest<Verdict extends { readonly ok: boolean }> {
  /** The method refusal's reason: `method GET is not allowed: ${takesPost}`. */
  readonly takesPost: string;
  readonly maxBodyBytes: number;
  /** Why this kind of request cannot be served at all now (a query without a cluster), else undefined. */
  readonly cannotServe?: () => string | undefined;
  /** The type's check of the request's credential (for a delivery, its payload too). */
  authenticate(provider: Provider, request: DeliveryRequest, context: ValidatorContext): Verdict | Promise<Verdict>;
  /** How a failed authentication ends. */
  readonly refusedAs: OutcomeKind;
}

/** A request admitted to its Receiver: it holds a slot, released once its answer is ready. */
export interface Admitted {
  readonly entry: ServingEntry;
  readonly provider: Provider;
  /** The outcome's receiver and type, for every answer from here on. */
  readonly known: OutcomeDetails<never>;
  /** keyString(entry.key): the guards' key. */
  readonly receiverKey: string;
  /** Calls the body read off on eviction or at the body deadline; `done()` once the body is in. */
  readonly reading: BodyReading;
  readonly release: () => void;
}

/** An authenticated request: its exact body, the verdict of its type's check, and its CEL budget. */
export interface Authenticated<Verdict> {
  readonly body: Uint8Array;
  readonly verdict: Verdict;
  /** One CEL budget per request: OIDC expressions and a delivery's filters share it. */
  readonly meter: CelMeter;
}

/**
 * Types whose only credential is the URL (as in Flux): nothing tells their sender from whoever
 * else has the URL, so once their requests spent the failure budget, bodies are not read until it
 * refills (a signed type must read the body to tell a forgery, and keeps its sender's budget apart).
 */
export const URL_ONLY_TYPES = typesWith("url-only");

/** Headers that name the event, whatever the receiver type; for logs and Events of refusals. */
const EVENT_HEADERS = [Header.githubEvent, Header.gitlabEvent, Header.bitbucketEvent, Header.ceType];

/**
 * The first of `names` present, made safe to log, remember and show: sender-controlled text is
 * cut to 100 characters and anything unprintable replaced, so it cannot forge log lines.
 */
export function firstHeader(headers: Headers, names: readonly string[]): string | undefined {
  for (const h of names) {
    const v = headers.get(h);
    if (v) return v.slice(0, 100).replace(/[^\x20-\x7e]/g, "?");
  }
  return undefined;
}

/** The event a request claims to be (a refused one has no validated event). */
const declaredEvent = (headers: Headers) => firstHeader(headers, EVENT_HEADERS);

/**
 * Method, lookup, declared size, availability and a slot: everything judged before the body.
 * `hookPath` is the Receiver path the request names as requested (undefined: none).
 */
export function admit<Verdict extends { readonly ok: boolean }>(
  request: Request,
  deps: AdmissionDeps,
  hookPath: string | undefined,
  kind: HookRequest<Verdict>,
): Outcome<never> | Admitted {
  if (request.method !== "POST")
    return outcome("method-not-allowed", `method ${request.method} is not allowed: ${kind.takesPost}`);
  // Unknown paths are answered without reading the body or even the headers: a flood of guesses
  // costs a map lookup. Flux reads the body first, so an oversized body to an unknown path is a
  // 413 there and a 404 here: the answer that tells a sender with a wrong URL what is wrong.
  const entry = hookPath === undefined ? undefined : deps.index.lookup(hookPath);
  if (!entry) return UNKNOWN_PATH;
  // A declared oversize body is refused before anything else about the receiver, as Flux does.
  const bodyBytes = bodyBytesBound(request.headers, kind.maxBodyBytes);
  const known = { receiver: entry.key, receiverType: entry.spec?.type };
  if (bodyBytes > kind.maxBodyBytes) return outcome("too-large", tooLarge(kind.maxBodyBytes).reason, known);
  if (entry.unavailable !== undefined) return outcome("unavailable", entry.unavailable, known);
  const cannotServe = kind.cannotServe?.();
  if (cannotServe !== undefined) return outcome("unavailable", cannotServe, known);

  const receiverKey = keyString(entry.key);
  if (URL_ONLY_TYPES.has(entry.spec.type)) {
    const left = deps.guards.failureBudgetLeft(receiverKey);
    if (!left.ok) return tooMany(failureBudgetSpent(), left, known);
  }
  const admission = deps.guards.admit(receiverKey, bodyBytes, deps.bodyTimeoutMs ?? BODY_READ_TIMEOUT_MS);
  if (!admission.ok) return tooMany(admission.reason, admission, known);
  return {
    entry,
    provider: PROVIDERS[entry.spec.type],
    known,
    receiverKey,
    reading: admission.reading,
    release: admission.release,
  };
}

/**
 * A refusal that spends the Receiver's failure budget: `kind` while the budget lasts, else a 429
 * that names what failed.
 */
export function failed<Target>(
  deps: Pick<AdmissionDeps, "guards">,
  admitted: Pick<Admitted, "receiverKey">,
  kind: OutcomeKind,
  reason: string,
  details: OutcomeDetails<Target>,
): Outcome<Target> {
  const budget = deps.guards.failedValidation(admitted.receiverKey);
  if (!budget.ok) return tooMany(failureBudgetSpent(reason), budget, details);
  return outcome(kind, reason, details);
}

/** The body, within the cap and the deadline, then the type's authentication. */
export async function authenticate<Verdict extends { readonly ok: true } | { readonly ok: false; reason: string }>(
  request: Request,
  admitted: Admitted,
  deps: AdmissionDeps,
  kind: HookRequest<Verdict>,
): Promise<Outcome<never> | Authenticated<Extract<Verdict, { ok: true }>>> {
  const timeoutMs = deps.bodyTimeoutMs ?? BODY_READ_TIMEOUT_MS;
  const body = await readBody(request, kind.maxBodyBytes, admitted.reading, timeoutMs);
  admitted.reading.done();
  // An oversized or stalled body is a failed request too: it spends the same budget.
  if (!body.ok) return failed(deps, admitted, body.kind, body.reason, admitted.known);

  const { entry } = admitted;
  const meter = new CelMeter();
  const verdict = await kind.authenticate(
    admitted.provider,
    { headers: request.headers, body: body.body },
    { spec: entry.spec, secret: entry.secret, compiled: entry.compiled, auth: deps.auth, meter },
  );
  if (!verdict.ok) {
    const event = declaredEvent(request.headers);
    return failed(deps, admitted, kind.refusedAs, verdict.reason, { ...admitted.known, event });
  }
  return { body: body.body, verdict: verdict as Extract<Verdict, { ok: true }>, meter };
}
