/**
 * @module server/receivers/prepare
 * What a Receiver generation needs before it can serve, done once per generation (the reconciler
 * caches the result): its CEL expressions compiled, and its OIDC providers checked. In Flux's
 * order and words (internal/controller/receiver_controller.go reconcile, receiver_claims.go):
 *
 *   1. `spec.resourceFilter`, then each `resources[i].filter` (InvalidCELExpression);
 *   2. the OIDC providers' shape: unique issuers, required fields, at least one validation
 *      (ValidationFailed);
 *   3. the OIDC providers' variables and validations (InvalidCELExpression).
 *
 * Filters see `res` and `req`, and `claims` for generic-oidc; OIDC expressions see `claims` and
 * `vars`. Filters and validations must return bool.
 */
import { issuerUrlProblem } from "../jwt/oidc";
import { compile, type CelProgram, type CelVariable } from "../cel";
import type { ReceiverSpec } from "../api/receiver";
import { Reason } from "../api/status";
import type { CompiledOidcProvider } from "../providers/types";

export type { CompiledOidcProvider };

export interface CompiledReceiver {
  readonly resourceFilter: CelProgram | undefined;
  /** `resources[i].filter`, aligned with `spec.resources`. */
  readonly resourceFilters: readonly (CelProgram | undefined)[];
  readonly oidcProviders: readonly CompiledOidcProvider[];
}

export const NOTHING_COMPILED: CompiledReceiver = { resourceFilter: undefined, resourceFilters: [], oidcProviders: [] };
/** A spec with no expression and no OIDC provider (most of them) shares one result: nothing per Receiver. */
const NOTHING_TO_COMPILE: Prepared = { ok: true, compiled: NOTHING_COMPILED };

export type Prepared = { ok: true; compiled: CompiledReceiver } | { ok: false; reason: string; message: string };

const invalidCEL = (message: string): Prepared => ({ ok: false, reason: Reason.invalidCEL, message });
const validationFailed = (message: string): Prepared => ({ ok: false, reason: Reason.validationFailed, message });

/** Go's %q for the strings that appear in these messages. */
const q = (s: string) => JSON.stringify(s);

/** Flux's ValidateOIDCProvidersSpec, for what the CRD schema would have refused. */
function checkOidcProviders(spec: ReceiverSpec): string | undefined {
  const seen = new Set<string>();
  for (const [i, p] of spec.oidcProviders.entries()) {
    if (seen.has(p.issuerURL)) return `oidcProviders[${i}]: duplicate issuerURL ${q(p.issuerURL)}`;
    const problem = issuerUrlProblem(p.issuerURL);
    if (problem) return `oidcProviders[${i}]: issuerURL ${q(p.issuerURL)} ${problem}`;
    seen.add(p.issuerURL);
    if (p.validations.length === 0) {
      return `oidcProviders[${i}] (issuerURL=${q(p.issuerURL)}): at least one validation is required; without validations any caller able to obtain a token from this issuer can trigger the Receiver`;
    }
    for (const [j, v] of p.validations.entries()) {
      if (!v.message)
        return `oidcProviders[${i}] (issuerURL=${q(p.issuerURL)}): validations[${j}]: message is required`;
    }
  }
  return undefined;
}

export function prepareReceiver(spec: ReceiverSpec): Prepared {
  if (
    spec.resourceFilter === undefined &&
    spec.oidcProviders.length === 0 &&
    !spec.resources.some((resource) => resource.filter !== undefined)
  )
    return NOTHING_TO_COMPILE;
  const filterVariables: CelVariable[] = spec.type === "generic-oidc" ? ["res", "req", "claims"] : ["res", "req"];
  const filter = (expression: string | undefined) =>
    expression === undefined ? undefined : compile(expression, { variables: filterVariables, output: "bool" });

  const top = filter(spec.resourceFilter);
  if (top && !top.ok) return invalidCEL(`invalid resourceFilter expression: ${top.error}`);
  const resourceFilters: (CelProgram | undefined)[] = [];
  for (const [i, resource] of spec.resources.entries()) {
    const compiled = filter(resource.filter);
    if (compiled && !compiled.ok) {
      return invalidCEL(
        `invalid filter expression for resources[${i}] (kind=${q(resource.kind)}, name=${q(resource.name)}): ${compiled.error}`,
      );
    }
    resourceFilters.push(compiled?.program);
  }

  const shape = checkOidcProviders(spec);
  if (shape) return validationFailed(shape);
  const oidcProviders: CompiledOidcProvider[] = [];
  for (const [i, p] of spec.oidcProviders.entries()) {
    const where = `oidcProviders[${i}] (issuerURL=${q(p.issuerURL)})`;
    const variables: CompiledOidcProvider["variables"][number][] = [];
    for (const v of p.variables) {
      const c = compile(v.expression, { variables: ["claims", "vars"] });
      if (!c.ok) return invalidCEL(`${where}: invalid expression for variable ${q(v.name)}: ${c.error}`);
      variables.push({ name: v.name, program: c.program });
    }
    const validations: CompiledOidcProvider["validations"][number][] = [];
    for (const v of p.validations) {
      const c = compile(v.expression, { variables: ["claims", "vars"], output: "bool" });
      if (!c.ok) return invalidCEL(`${where}: invalid expression for validation ${q(v.message)}: ${c.error}`);
      validations.push({ message: v.message, program: c.program });
    }
    oidcProviders.push({ issuerURL: p.issuerURL, audience: p.audience, variables, validations });
  }
  return { ok: true, compiled: { resourceFilter: top?.program, resourceFilters, oidcProviders } };
}

/**
 * What compilation depends on: when this is unchanged between two versions of a Receiver, the
 * compiled programs are reused (a Secret change or a status write recompiles nothing).
 */
export function compilationKey(spec: ReceiverSpec): string {
  return JSON.stringify([
    spec.type,
    spec.resourceFilter ?? null,
    spec.resources.map((resource) => [resource.kind, resource.name, resource.filter ?? null]),
    spec.oidcProviders,
  ]);
}
