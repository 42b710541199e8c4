/**
 * @module shared/status-query
 * The status query: after a delivery, a sender asks fluxhook whether Flux handled what that
 * delivery requested, and what became of it downstream. Flux's notification-controller has no such
 * query; fluxhook answers it on the receiver listener, at the hook's own secret path:
 *
 *   POST /hook/<digest>/status
 *   Content-Type: application/json
 *   <the receiver type's authentication, computed over this body exactly as for a delivery>
 *
 *   {"targets":[{"kind":"GitRepository","namespace":"flux-system","name":"webapp",
 *                "requestedAt":"2026-12-01T22:54:27.123456789Z"}]}
 *
 * The targets and their `requestedAt` are the ones the delivery's 200 answer listed. The
 * authentication is the delivery's, applied to the query, so that no query's credential is a
 * delivery's and no delivery's a query's:
 *
 *   - github, bitbucket, generic-hmac, nexus: the same HMAC header over the query's body, keyed
 *     with `statusQueryKey(token)` instead of the token;
 *   - gitlab, harbor (whose deliveries carry the token itself): the same header, carrying
 *     `statusQueryTokenHeader(token, body)`, an HMAC of the query under that key, never the token;
 *   - generic-oidc, gcr: the same bearer token as a delivery (an ID token, good for either until
 *     it expires: SECURITY.md);
 *   - the secret URL alone for the types that have nothing else.
 *
 * The answer (200) says, per target, whether its controller handled that request, its Ready
 * condition and revision, and for a source, the Kustomizations and HelmReleases in its namespace
 * that use it (StatusAnswer); and whether it saw all of that (`complete`): a target that does not
 * say so is incomplete, and a sender never reports success from an incomplete answer. Refusals: 401 authentication, 403 a target the Receiver does not
 * name, 400 a malformed query, 404 no receiver at the path, 413 too large, 429 the receiver's
 * failure budget is spent, 503 the receiver is not Ready or there is no cluster to read.
 */
import { createHmac } from "node:crypto";
import { signPayload } from "./signature";
import { WEBHOOK_PATH_PREFIX } from "./webhook-path";

/**
 * The reason of the 503 fluxhook answers when it serves Receivers from files with no cluster:
 * unlike a Receiver that is not Ready yet, no retry changes it, so a sender stops at once.
 */
export const STATUS_QUERY_NO_CLUSTER = "status queries need a cluster to read targets from";

/** Appended to a hook's path: the query's path. A digest is hex, so no Receiver path ends so. */
export const STATUS_QUERY_SUFFIX = "/status";

/**
 * Targets one query may name: a sender with more (a selector matching many objects) splits them
 * into several queries. The server refuses more (server/limits.ts).
 */
export const MAX_STATUS_QUERY_TARGETS = 100;

// The bounds of an answer. The server keeps every field within them; the sender reads an answer
// up to MAX_STATUS_ANSWER_BYTES, which they add up to, and refuses a longer one as out of contract.

/** A kind, a namespace, a name or a requestedAt: the server takes no longer one in a query. */
export const MAX_STATUS_NAME_CHARS = 253;
/**
 * The characters of a Ready message an answer carries (a failed kustomize build's message can be
 * tens of KiB of YAML; its start names the failing object and reason); a longer one is cut, `…` added.
 */
export const MAX_CONDITION_MESSAGE_CHARS = 512;
/** Any other text of an answer: a condition's reason, a revision, lastHandledReconcileAt, an error. */
export const MAX_STATUS_TEXT_CHARS = 1024;
/** Consumers one answer lists, over all its targets; more are flagged `consumersTruncated`. */
export const MAX_STATUS_ANSWER_CONSUMERS = 50;
/** JSON writes one UTF-16 unit as at most 6 bytes (`\u001f`). */
const JSON_BYTES_PER_CHAR = 6;
/** An object's keys, quotes, separators and literals (`"found":true,`), with room to spare. */
const JSON_OBJECT_OVERHEAD_BYTES = 512;
const TEXT_BYTES = JSON_BYTES_PER_CHAR * MAX_STATUS_TEXT_CHARS;
const NAME_BYTES = JSON_BYTES_PER_CHAR * MAX_STATUS_NAME_CHARS;
/** A Ready condition: its status, its reason and its message (cut, with its `…`). */
const CONDITION_BYTES =
  JSON_OBJECT_OVERHEAD_BYTES + TEXT_BYTES + JSON_BYTES_PER_CHAR * (MAX_CONDITION_MESSAGE_CHARS + 1);

/** One TargetState without its consumers: four names, four texts, a condition. */
export const MAX_TARGET_STATE_BYTES = JSON_OBJECT_OVERHEAD_BYTES + 4 * NAME_BYTES + 4 * TEXT_BYTES + CONDITION_BYTES;
/** One ConsumerState: three names, two revisions, a condition. */
export const MAX_CONSUMER_STATE_BYTES = JSON_OBJECT_OVERHEAD_BYTES + 3 * NAME_BYTES + 2 * TEXT_BYTES + CONDITION_BYTES;
/** The largest answer to a query within the bounds: every target, every consumer, the reason. */
export const MAX_STATUS_ANSWER_BYTES =
  JSON_OBJECT_OVERHEAD_BYTES +
  TEXT_BYTES +
  MAX_STATUS_QUERY_TARGETS * MAX_TARGET_STATE_BYTES +
  MAX_STATUS_ANSWER_CONSUMERS * MAX_CONSUMER_STATE_BYTES;
/** One target of a delivery's 200 answer (its names, its outcome and reason, its requestedAt). */
export const MAX_DELIVERY_TARGET_BYTES = JSON_OBJECT_OVERHEAD_BYTES + 4 * NAME_BYTES + TEXT_BYTES;

/** What the query key is derived for: names the purpose, so no other use of the token yields the same key. */
export const STATUS_QUERY_KEY_LABEL = "fluxhook status query v1";

/**
 * The key a query's HMAC is computed with, for the types whose deliveries carry an HMAC: the
 * HMAC-SHA256 of STATUS_QUERY_KEY_LABEL under the Receiver's token. A delivery's HMAC is keyed
 * with the token itself (as GitHub signs; Flux verifies nothing else), a query's with this key:
 * HMACs under two unrelated keys, so a captured query never verifies as a delivery (which would
 * trigger a reconcile) and a captured delivery never as a query, whatever the bodies.
 */
export function statusQueryKey(token: string | Uint8Array): Buffer {
  return createHmac("sha256", token).update(STATUS_QUERY_KEY_LABEL).digest();
}

/**
 * What a status query carries in the token's own header for gitlab (X-Gitlab-Token) and harbor
 * (Authorization), whose deliveries send the token there in clear: `sha256=<hex>`, the HMAC-SHA256
 * of the query's exact body under statusQueryKey(token). A captured query is then no delivery (a
 * delivery needs the token, which no HMAC reveals) and answers only for its own targets and
 * requestedAt, as a signed type's query does; nor does it give away the query key.
 */
export function statusQueryTokenHeader(token: string | Uint8Array, body: string | Uint8Array): string {
  return signPayload("sha256", statusQueryKey(token), body);
}

/** The query's path for a hook path (`/hook/<digest>`), or undefined for anything else. */
export function statusQueryPath(hookPath: string): string | undefined {
  return hookPath.startsWith(WEBHOOK_PATH_PREFIX) ? hookPath + STATUS_QUERY_SUFFIX : undefined;
}

/** One target of a query: an object the delivery annotated, and the value it wrote. */
export interface QueriedTarget {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly requestedAt: string;
}

export interface StatusQuery {
  readonly targets: readonly QueriedTarget[];
}

/** The exact bytes of a query; the signature covers them. */
export function encodeStatusQuery(query: StatusQuery): string {
  return JSON.stringify({
    targets: query.targets.map(({ kind, namespace, name, requestedAt }) => ({ kind, namespace, name, requestedAt })),
  });
}

/** A Flux condition as the answer carries it. */
export interface ConditionState {
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
}

/** A Kustomization or HelmRelease that uses a queried source. */
export interface ConsumerState {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** Kustomization: status.lastAppliedRevision; HelmRelease: the chart version of its latest release. */
  readonly appliedRevision?: string;
  /** status.lastAttemptedRevision: what it last tried, applied or not. */
  readonly attemptedRevision?: string;
  readonly ready?: ConditionState;
}

export interface TargetState {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly requestedAt: string;
  /** False when the object no longer exists. */
  readonly found: boolean;
  /**
   * The controller handled this request: `status.lastHandledReconcileAt` equals `requestedAt`, or
   * a later request that replaced it on the object was handled.
   */
  readonly handled: boolean;
  readonly lastHandledReconcileAt?: string;
  readonly ready?: ConditionState;
  /**
   * A source's `status.artifact.revision`; a Kustomization's lastAppliedRevision, a HelmRelease's
   * lastAttemptedRevision when they are targets themselves.
   */
  readonly revision?: string;
  /** Sources only: the Kustomizations and HelmReleases in its namespace whose sourceRef names it. */
  readonly consumers?: readonly ConsumerState[];
  /** More consumers exist than the answer lists. */
  readonly consumersTruncated?: true;
  /** The consumers could not all be listed (the ones listed are shown). */
  readonly consumersError?: string;
  /** The object could not be read; the rest is unknown. */
  readonly error?: string;
  /**
   * Everything judged about this target was read: the object and, for a source, every
   * Kustomization and HelmRelease of its namespace that uses it (every list page followed, none
   * left out of `consumers`, no list failed). Only `true` counts: a target without it is
   * incomplete, whatever else it says.
   */
  readonly complete?: true;
}

export interface StatusAnswer {
  readonly status: number;
  readonly reason: string;
  readonly targets: readonly TargetState[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function condition(v: unknown): ConditionState | undefined {
  if (!isRecord(v)) return undefined;
  const status = v.status === "True" || v.status === "False" ? v.status : "Unknown";
  return { status, reason: str(v.reason) ?? "", message: str(v.message) ?? "" };
}

/**
 * A 200 answer's body, read defensively (the sender trusts the server's authentication, not its
 * shape): anything missing is undefined, and an answer without a targets array is undefined.
 */
export function parseStatusAnswer(body: unknown): StatusAnswer | undefined {
  if (!isRecord(body) || !Array.isArray(body.targets)) return undefined;
  const targets: TargetState[] = [];
  for (const t of body.targets) {
    if (!isRecord(t)) return undefined;
    const consumers = Array.isArray(t.consumers)
      ? t.consumers.filter(isRecord).map(
          (c): ConsumerState => ({
            kind: str(c.kind) ?? "",
            namespace: str(c.namespace) ?? "",
            name: str(c.name) ?? "",
            appliedRevision: str(c.appliedRevision),
            attemptedRevision: str(c.attemptedRevision),
            ready: condition(c.ready),
          }),
        )
      : undefined;
    targets.push({
      kind: str(t.kind) ?? "",
      namespace: str(t.namespace) ?? "",
      name: str(t.name) ?? "",
      requestedAt: str(t.requestedAt) ?? "",
      found: t.found === true,
      handled: t.handled === true,
      lastHandledReconcileAt: str(t.lastHandledReconcileAt),
      ready: condition(t.ready),
      revision: str(t.revision),
      ...(consumers ? { consumers } : {}),
      ...(t.consumersTruncated === true ? { consumersTruncated: true as const } : {}),
      ...(str(t.consumersError) !== undefined ? { consumersError: str(t.consumersError) } : {}),
      ...(str(t.error) !== undefined ? { error: str(t.error) } : {}),
      ...(t.complete === true ? { complete: true as const } : {}),
    });
  }
  return { status: typeof body.status === "number" ? body.status : 200, reason: str(body.reason) ?? "", targets };
}

/** The targets and requestedAt values of a delivery's 200 answer; undefined when it lists none (Flux's own receiver). */
export function annotatedTargets(body: unknown): QueriedTarget[] | undefined {
  if (!isRecord(body) || !Array.isArray(body.targets)) return undefined;
  const out: QueriedTarget[] = [];
  for (const t of body.targets) {
    if (!isRecord(t) || t.outcome !== "annotated") continue;
    const [kind, namespace, name, requestedAt] = [str(t.kind), str(t.namespace), str(t.name), str(t.requestedAt)];
    if (kind && namespace && name && requestedAt) out.push({ kind, namespace, name, requestedAt });
    else return undefined;
  }
  return out;
}
