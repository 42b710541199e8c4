/**
 * @module server/http/openapi
 * The OpenAPI description of the receiver's answers, built from what makes them: the outcomes
 * table (outcome/outcomes.ts: every status each request can get, and what it means), the status
 * query's body schema (delivery/status-query-body.ts) and the answers' schemas below, each checked
 * against the wire contract's types at compile time. `npm run build:openapi` writes it to
 * server/http/openapi.json, which a test keeps equal to this and checks real answers against; the
 * health listener serves it at /openapi.json. A committed file, not a route of the receiver app:
 * the receiver listener serves only hooks, and a reviewer sees a change of the contract as a diff.
 */
import { t, type Static, type TSchema } from "elysia";
import {
  MAX_CONDITION_MESSAGE_CHARS,
  MAX_STATUS_NAME_CHARS,
  MAX_STATUS_QUERY_TARGETS,
  MAX_STATUS_TEXT_CHARS,
  STATUS_QUERY_SUFFIX,
  WEBHOOK_PATH_PREFIX,
  type ConditionState,
  type ConsumerState,
  type StatusAnswer,
  type TargetState,
} from "../../shared";
import { MAX_BODY_BYTES, MAX_OUTCOME_TEXT_CHARS, MAX_STATUS_QUERY_BYTES } from "../limits";
import { OUTCOMES, type HookRequestKind } from "../outcome/outcomes";
import type { TargetOutcome } from "../targets/annotate";
import { StatusQuerySchema } from "../delivery/status-query-body";

const name = (description: string) => t.String({ maxLength: MAX_STATUS_NAME_CHARS, description });
const text = (description: string) => t.String({ maxLength: MAX_STATUS_TEXT_CHARS, description });

const ConditionSchema = t.Object(
  {
    status: t.Union([t.Literal("True"), t.Literal("False"), t.Literal("Unknown")]),
    reason: text("The condition's reason."),
    message: t.String({
      maxLength: MAX_CONDITION_MESSAGE_CHARS + 1,
      description: `The condition's message; a longer one is cut to ${MAX_CONDITION_MESSAGE_CHARS} characters and \`…\`.`,
    }),
  },
  { description: "The object's Ready condition." },
);

const ConsumerSchema = t.Object(
  {
    kind: name("Kustomization or HelmRelease."),
    namespace: name("The consumer's namespace, the source's."),
    name: name("The consumer's name."),
    appliedRevision: t.Optional(
      text("Kustomization: status.lastAppliedRevision; HelmRelease: the chart version of its latest release."),
    ),
    attemptedRevision: t.Optional(text("status.lastAttemptedRevision: what it last tried, applied or not.")),
    ready: t.Optional(ConditionSchema),
  },
  { description: "A Kustomization or HelmRelease whose source is the target." },
);

const TargetStateSchema = t.Object(
  {
    kind: name("The target's kind, as queried."),
    namespace: name("The target's namespace, as queried."),
    name: name("The target's name, as queried."),
    requestedAt: name("The requestedAt value queried."),
    found: t.Boolean({ description: "False when the object does not exist." }),
    handled: t.Boolean({
      description: "Its controller handled this request, or a later one that replaced it on the object.",
    }),
    lastHandledReconcileAt: t.Optional(text("status.lastHandledReconcileAt.")),
    ready: t.Optional(ConditionSchema),
    revision: t.Optional(text("A source's artifact revision; a consumer's applied (or attempted) revision.")),
    consumers: t.Optional(t.Array(ConsumerSchema, { description: "Sources only: the objects that use it." })),
    consumersTruncated: t.Optional(t.Literal(true, { description: "More consumers exist than are listed." })),
    consumersError: t.Optional(text("Why the consumers could not all be listed.")),
    error: t.Optional(text("Why the object could not be read.")),
    complete: t.Optional(
      t.Literal(true, {
        description:
          "Everything judged about the target was read: the object and, for a source, every consumer. Without it the target is incomplete.",
      }),
    ),
  },
  { description: "One queried target's state." },
);

const StatusAnswerSchema = t.Object({
  status: t.Literal(200),
  reason: t.String({ description: "How many targets handled the request." }),
  targets: t.Array(TargetStateSchema, { maxItems: MAX_STATUS_QUERY_TARGETS }),
});

const TargetOutcomeSchema = t.Object(
  {
    kind: t.String(),
    namespace: t.String(),
    name: t.String({
      description: "The object's name; `*` for a selector that matched nothing or could not be listed.",
    }),
    outcome: t.Union([t.Literal("annotated"), t.Literal("failed"), t.Literal("skipped")]),
    reason: t.Optional(t.String({ maxLength: MAX_OUTCOME_TEXT_CHARS })),
    requestedAt: t.Optional(
      t.String({ description: "An annotated target: the value written, which a status query asks about." }),
    ),
  },
  { description: "One target of the delivery, and what became of it." },
);

const DeliveryAnswerSchema = t.Object({
  status: t.Integer(),
  reason: t.String({ maxLength: MAX_OUTCOME_TEXT_CHARS }),
  targets: t.Optional(t.Array(TargetOutcomeSchema)),
});

const RefusalSchema = t.Object({
  status: t.Integer(),
  reason: t.String({ description: "Which check failed, never a secret." }),
});

// The schemas describe the wire contract's types: what a schema admits is a value of the type, with
// the same fields. A change to either side is a compile error here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Describes<Schema, Type> = [Schema] extends [Type] ? Same<keyof Schema, keyof Type> : false;
const agree = <T extends true>(_: T[]) => _;
agree<Describes<Static<typeof ConditionSchema>, ConditionState>>([]);
agree<Describes<Static<typeof ConsumerSchema>, ConsumerState>>([]);
agree<Describes<Static<typeof TargetStateSchema>, TargetState>>([]);
agree<Describes<Static<typeof StatusAnswerSchema>, StatusAnswer>>([]);
agree<Describes<Static<typeof TargetOutcomeSchema>, TargetOutcome>>([]);

/** The schema of the answer a request of `kind` gets with `status`. */
export function answerSchema(kind: HookRequestKind, status: number): TSchema {
  if (status === 200) return kind === "delivery" ? DeliveryAnswerSchema : StatusAnswerSchema;
  // A delivery whose target failed lists every target's outcome.
  if (status === 500 && kind === "delivery") return DeliveryAnswerSchema;
  return RefusalSchema;
}

/** The responses of one route, one per status its request can end with, worded by the outcomes table. */
function responses(kind: HookRequestKind) {
  const byStatus = new Map<number, string[]>();
  for (const info of Object.values(OUTCOMES))
    if ((info.requests as readonly HookRequestKind[]).includes(kind))
      byStatus.set(info.status, [...(byStatus.get(info.status) ?? []), info.summary]);
  const headers = (status: number) =>
    status === 429
      ? { "Retry-After": { description: "Seconds to wait before asking again.", schema: { type: "integer" } } }
      : status === 405
        ? { Allow: { description: "POST", schema: { type: "string" } } }
        : undefined;
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, summaries]) => [
        String(status),
        {
          description: summaries.join(" "),
          ...(headers(status) ? { headers: headers(status) } : {}),
          content: { "application/json": { schema: answerSchema(kind, status) } },
        },
      ]),
  );
}

const digest = {
  name: "digest",
  in: "path",
  required: true,
  description:
    "sha256(token + name + namespace) in lowercase hex, as Flux computes it: the Receiver's secret path. Served only as requested: no other spelling names the Receiver.",
  schema: { type: "string" },
};

/** The receiver listener's OpenAPI 3.1 document (plain JSON: the schemas are JSON Schema). */
export function receiverOpenApi(): Record<string, unknown> {
  const document = {
    openapi: "3.1.0",
    info: {
      title: "fluxhook receiver",
      version: "1",
      description:
        "Flux-compatible webhook Receivers (notification.toolkit.fluxcd.io/v1) on --receiverAddr, and the status query fluxhook adds. Every answer is a small JSON document with its status and a reason; the paths, statuses and credentials of deliveries are Flux's.",
    },
    paths: {
      [`${WEBHOOK_PATH_PREFIX}{digest}`]: {
        post: {
          operationId: "deliver",
          summary: "Deliver a webhook: the Receiver's targets are asked to reconcile.",
          description:
            "The body is the sender's payload, authenticated as the Receiver's type requires (an HMAC header over the exact bytes, a token header, an ID token, or the secret URL alone), then the Receiver's targets get reconcile.fluxcd.io/requestedAt.",
          parameters: [digest],
          requestBody: {
            required: true,
            description: `The sender's payload, at most ${MAX_BODY_BYTES} bytes, in the form the Receiver's type takes.`,
            content: { "*/*": { schema: {} } },
          },
          responses: responses("delivery"),
        },
      },
      [`${WEBHOOK_PATH_PREFIX}{digest}${STATUS_QUERY_SUFFIX}`]: {
        post: {
          operationId: "queryStatus",
          summary: "Ask what Flux made of a delivery's reconcile requests.",
          description:
            "Authenticated as the Receiver's deliveries are (signed types sign the query with statusQueryKey(token); gitlab and harbor send statusQueryTokenHeader(token, body) in the token's header, never the token; see shared/status-query.ts). Reads, never writes.",
          parameters: [digest],
          requestBody: {
            required: true,
            description: `At most ${MAX_STATUS_QUERY_BYTES} bytes.`,
            content: { "application/json": { schema: StatusQuerySchema } },
          },
          responses: responses("status query"),
        },
      },
    },
  };
  // JSON Schema is what is published: TypeBox's markers (symbol keys) are not JSON, and Elysia's
  // error messages (a schema's `error` text; a property named `error` is an object) are dropped.
  return JSON.parse(JSON.stringify(document), (key, value) =>
    key === "error" && typeof value === "string" ? undefined : value,
  );
}
