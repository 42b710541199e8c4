/**
 * @module server/providers/generic-oidc
 * `generic-oidc` (Flux 1.9): the sender proves who it is with an OIDC ID token from an issuer the
 * Receiver lists in `oidcProviders`, in Flux's order and words
 * (notification-controller internal/server/receiver_oidc.go, receiver_claims.go):
 *
 *   1. `Authorization: Bearer <token>`;
 *   2. the token's `iss`, read without verification, picks the provider with that exact
 *      `issuerURL` (nothing is trusted before step 3);
 *   3. the token is verified against that issuer (discovery and keys cached, server/jwt/oidc.ts):
 *      signature, `iss`, `aud` = the provider's `audience`, expiry;
 *   4. the provider's CEL `variables` are evaluated in order into `vars.<name>`, then every
 *      `validations` expression over `claims` and `vars`; the messages of those that return false
 *      are joined: `token validation failed: wrong repo; wrong environment`.
 *
 * The body is untouched; filters also see the verified claims as `claims`.
 */
import { Header } from "../../shared";
import { evaluate, evaluateBool } from "../cel";
import { refuse, accept, type Validator } from "./types";

const BEARER = "Bearer ";

/** The `iss` of a JWT, unverified: only used to choose which issuer verifies it. */
export function unverifiedIssuer(token: string): { ok: true; iss: string } | { ok: false; error: string } {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, error: "token is not a JWT" };
  let payload: unknown;
  try {
    if (!/^[A-Za-z0-9_-]*$/.test(parts[1]!)) throw new Error("illegal base64 data");
    payload = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  } catch (err) {
    return { ok: false, error: `failed to parse token payload: ${(err as Error).message}` };
  }
  const iss = typeof payload === "object" && payload !== null ? (payload as { iss?: unknown }).iss : undefined;
  if (typeof iss !== "string" || iss === "") return { ok: false, error: "token is missing the 'iss' claim" };
  return { ok: true, iss };
}

export const validateGenericOidc: Validator = async (request, { compiled, auth, meter }) => {
  if (compiled.oidcProviders.length === 0) return refuse("generic-oidc receiver has no oidcProviders configured");
  const authorization = request.headers.get(Header.authorization) ?? "";
  if (!authorization.startsWith(BEARER)) return refuse("the Authorization header is missing or malformed");
  const token = authorization.slice(BEARER.length).trim();
  if (token === "") return refuse("the Authorization header is missing a bearer token");

  const issuer = unverifiedIssuer(token);
  if (!issuer.ok) return refuse(`failed to parse bearer token: ${issuer.error}`);
  const provider = compiled.oidcProviders.find((p) => p.issuerURL === issuer.iss);
  if (!provider) return refuse(`no oidcProvider configured for issuer ${JSON.stringify(issuer.iss)}`);

  const verified = await auth.oidc.verify(token, provider);
  if (!verified.ok) return refuse(verified.reason);
  const claims = verified.claims;

  // The claims come from a trusted issuer, but a token can still carry large claims: the
  // delivery's cost bound, shared with its filters, applies.
  const vars: Record<string, unknown> = {};
  for (const v of provider.variables) {
    const r = evaluate(v.program, { claims, vars }, meter);
    if (!r.ok) return refuse(`failed to evaluate variable ${JSON.stringify(v.name)}: ${r.error}`);
    vars[v.name] = r.value;
  }
  const failures: string[] = [];
  for (const v of provider.validations) {
    const r = evaluateBool(v.program, { claims, vars }, meter);
    if (!r.ok) return refuse(`failed to evaluate validation: ${r.error}`);
    if (!r.value) failures.push(v.message);
  }
  if (failures.length > 0) return refuse(`token validation failed: ${failures.join("; ")}`);
  return { ...accept(request), claims };
};
