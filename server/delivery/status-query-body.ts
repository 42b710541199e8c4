/**
 * @module server/delivery/status-query-body
 * The status query's body (shared/status-query.ts StatusQuery) as an Elysia schema: one
 * definition that checks a query at run time, gives its type, and describes it in the receiver's
 * OpenAPI document (http/openapi.ts). It is checked after the query is authenticated and its JSON
 * parsed within bounds (status-query.ts), never before: an unauthenticated body is not parsed.
 */
import { getSchemaValidator, t } from "elysia";
import { MAX_STATUS_NAME_CHARS, MAX_STATUS_QUERY_TARGETS, type QueriedTarget } from "../../shared";

/** Kubernetes names, kinds and requestedAt values are short printable ASCII; anything else is no target. */
const name = (description: string) =>
  t.String({
    pattern: `^[\\x21-\\x7e]{1,${MAX_STATUS_NAME_CHARS}}$`,
    description,
    error: `must be a non-empty string of at most ${MAX_STATUS_NAME_CHARS} printable characters`,
  });

export const QueriedTargetSchema = t.Object(
  {
    kind: name("The target's kind, as the delivery's answer named it (GitRepository)."),
    namespace: name("The target's namespace."),
    name: name("The target's name."),
    requestedAt: name("The reconcile.fluxcd.io/requestedAt value the delivery wrote, from its answer."),
  },
  { description: "One target of a delivery's 200 answer, with the requestedAt value it wrote." },
);

export const StatusQuerySchema = t.Object(
  {
    targets: t.Array(QueriedTargetSchema, {
      minItems: 1,
      maxItems: MAX_STATUS_QUERY_TARGETS,
      error: `the query needs a non-empty "targets" array of at most ${MAX_STATUS_QUERY_TARGETS} targets`,
    }),
  },
  {
    description: "A status query: the targets a delivery annotated, each with the requestedAt value it wrote.",
    error: 'the query must be a JSON object with a "targets" array',
  },
);

const validator = getSchemaValidator(StatusQuerySchema);

/**
 * The targets of a parsed query body, or why it is no query: the schema's first error, with the
 * field it is about (`targets[0].requestedAt must be …`).
 */
export function queriedTargets(value: unknown): { ok: true; targets: QueriedTarget[] } | { ok: false; reason: string } {
  if (validator.Check(value)) {
    const { targets } = value as { targets: readonly QueriedTarget[] };
    // Only the four fields travel further: anything else the sender put in is dropped here.
    return {
      ok: true,
      targets: targets.map(({ kind, namespace, name, requestedAt }) => ({ kind, namespace, name, requestedAt })),
    };
  }
  const first = validator.Errors(value).First();
  const error = (first?.schema as { error?: string } | undefined)?.error ?? first?.message ?? "not a status query";
  // "/targets/0/requestedAt" names a field of a target; the array's and the object's errors are sentences.
  const field = /^\/targets\/(\d+)\/([a-zA-Z]+)$/.exec(first?.path ?? "");
  return { ok: false, reason: field ? `targets[${field[1]}].${field[2]} ${error}` : error };
}
