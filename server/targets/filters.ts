/**
 * @module server/targets/filters
 * The CEL filters of one delivery (notification-controller receiver_resource_filter.go): the
 * effective filter of `resources[i]` is `spec.resourceFilter` AND `resources[i].filter`,
 * evaluated in that order and stopping at the first false. Each sees
 *
 *   - `res`: the target's `apiVersion`, `kind` and `metadata` (Flux's PartialObjectMetadata);
 *   - `req`: the validated payload, parsed once per delivery and only when a filter exists and
 *     the Content-Type (comma-split) includes exactly `application/json`; `{}` otherwise;
 *   - `claims`: the verified token's claims (generic-oidc only).
 *
 * All evaluations of a delivery share one CelMeter, so the bound is per request.
 */
import type { PartialObject } from "../kube/port";
import { evaluateBool, type CelMeter, type CelProgram } from "../cel";
import { SCAN_STEPS_PER_CHAR } from "../cel/costs";
import { firstJsonValue } from "../providers/json-decode";

export type FilterVerdict = { ok: true; accept: boolean } | { ok: false; error: string };
export type TargetFilter = (res: PartialObject) => FilterVerdict;

export interface DeliveryFilters {
  /** The effective filter of `resources[i]`, or undefined when it has none (accept all). */
  forResource(i: number): TargetFilter | undefined;
}

export const NO_FILTERS: DeliveryFilters = { forResource: () => undefined };

/** Flux's isJSONContent: any comma-separated media type equal to application/json. */
export function isJsonContent(contentType: string): boolean {
  for (const part of contentType.split(",")) {
    const type = part.split(";", 1)[0]!.trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(type)) break; // mime.ParseMediaType fails
    if (type === "application/json") return true;
  }
  return false;
}

/** A generation's compiled filters (receivers/prepare.ts compiles them). */
export interface CompiledFilters {
  readonly resourceFilter: CelProgram | undefined;
  /** `resources[i].filter`, aligned with `spec.resources`. */
  readonly resourceFilters: readonly (CelProgram | undefined)[];
}

/** True when deliveryFilters will parse the payload for `req` (a filter exists and the body is JSON). */
export function parsesRequest(compiled: CompiledFilters, input: FilterInput): boolean {
  return (
    (compiled.resourceFilter !== undefined || compiled.resourceFilters.some(Boolean)) &&
    isJsonContent(input.payloadType)
  );
}

export interface FilterInput {
  readonly payload: Uint8Array;
  readonly payloadType: string;
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * CEL's `req`: a JSON body as an object (its parse paid from the filters' budget, as a scan of the
 * body: server/cel/costs.ts), `{}` for another content type; or why it cannot be built.
 */
function requestObject(
  input: FilterInput,
  meter: CelMeter,
): { ok: true; req: unknown } | { ok: false; status: 400 | 500; error: string } {
  if (!isJsonContent(input.payloadType)) return { ok: true, req: {} };
  const spent = meter.spend(Math.ceil(input.payload.byteLength * SCAN_STEPS_PER_CHAR), "parsing the request body");
  if (spent) return { ok: false, status: 500, error: spent };
  const decoded = meter.measure(() => firstJsonValue(input.payload));
  if (!decoded.ok)
    return {
      ok: false,
      status: decoded.tooCostly ? 400 : 500,
      error: `failed to parse request body as JSON: ${decoded.error}`,
    };
  if (Array.isArray(decoded.value) || (decoded.value !== null && typeof decoded.value !== "object")) {
    const kind = Array.isArray(decoded.value) ? "array" : typeof decoded.value;
    return {
      ok: false,
      status: 500,
      error: `failed to parse request body as JSON: cannot unmarshal ${kind} into a JSON object`,
    };
  }
  return { ok: true, req: decoded.value ?? {} };
}

/**
 * The filters of one delivery, or the reason `req` cannot be built: 500 for a JSON body that is
 * not a JSON object (as Flux answers) or a spent budget, 400 for a body past the JSON bounds
 * (server/providers/json-bounds.ts), which is never parsed.
 */
export function deliveryFilters(
  compiled: CompiledFilters,
  input: FilterInput,
  /** The delivery's CEL budget, shared with its OIDC expressions (made by the delivery). */
  meter: CelMeter,
): { ok: true; filters: DeliveryFilters } | { ok: false; status: 400 | 500; error: string } {
  const top = compiled.resourceFilter;
  if (!top && !compiled.resourceFilters.some(Boolean)) return { ok: true, filters: NO_FILTERS };

  const parsed = requestObject(input, meter);
  if (!parsed.ok) return parsed;
  const req = parsed.req;
  const claims = input.claims;

  const make =
    (programs: { name: string; program: CelProgram }[]): TargetFilter =>
    (res) => {
      // A plain JSON copy: CEL sees what Flux's json.Marshal of the object would give.
      const bindings: Record<string, unknown> = { res: JSON.parse(JSON.stringify(res)), req };
      if (claims) bindings.claims = claims;
      for (const { name, program } of programs) {
        const r = evaluateBool(program, bindings, meter);
        if (!r.ok) return { ok: false, error: `${name}: ${r.error}` };
        if (!r.value) return { ok: true, accept: false };
      }
      return { ok: true, accept: true };
    };

  const cache = new Map<number, TargetFilter | undefined>();
  const forResource = (i: number) => {
    if (!cache.has(i)) {
      const own = compiled.resourceFilters[i];
      const programs = [
        ...(top ? [{ name: "resourceFilter", program: top }] : []),
        ...(own ? [{ name: `resources[${i}].filter`, program: own }] : []),
      ];
      cache.set(i, programs.length > 0 ? make(programs) : undefined);
    }
    return cache.get(i);
  };
  return { ok: true, filters: { forResource } };
}
