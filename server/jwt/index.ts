/**
 * @module server/jwt
 * Bearer-token verification for the two receiver types that take signed tokens: `gcr` (Google ID
 * tokens from Pub/Sub) and `generic-oidc` (any OIDC issuer a Receiver names). Both need the
 * network (discovery documents, key sets) and both cache what they fetch; they are built once at
 * the edge (server.ts) and handed to the validators, which stay free of I/O setup.
 */
import { GoogleIdTokens, GOOGLE_JWKS_URL } from "./google";
import { KeySets, type KeySetOptions } from "./keys";
import { OidcIssuers } from "./oidc";

export type { TokenCheck } from "./types";
export { GoogleIdTokens, GOOGLE_ISSUERS, GOOGLE_JWKS_URL, type GoogleIdTokenExpectation } from "./google";
export { OidcIssuers, NBF_LEEWAY_SECONDS, issuerUrlProblem, type OidcProviderRef } from "./oidc";
export { KeySets, type KeySetOptions } from "./keys";

export interface AuthServices {
  readonly google: Pick<GoogleIdTokens, "verify">;
  readonly oidc: Pick<OidcIssuers, "verify">;
}

export interface AuthOptions extends KeySetOptions {
  /** Where Google's ID-token keys are published; only tests change it. */
  readonly gcrJwksUrl?: string;
}

export function createAuthServices(options: AuthOptions = {}): AuthServices {
  const keys = new KeySets(options);
  return {
    google: new GoogleIdTokens(keys, options.gcrJwksUrl ?? GOOGLE_JWKS_URL),
    oidc: new OidcIssuers(keys, options),
  };
}
