/**
 * @module server/jwt/google
 * Google-signed OIDC ID tokens, as Pub/Sub push subscriptions send them to `gcr` receivers
 * (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions). The checks are those of
 * Flux 1.9 (google.golang.org/api/idtoken.Validate plus its own): an RS256 signature by one of
 * Google's published keys, `aud` equal to the Secret's `audience`, an unexpired token, `iss` one
 * of Google's two issuer spellings, `email` equal to the Secret's `email`, `email_verified` true.
 *
 * Refusals never quote the expected email or audience: they come from the receiver's Secret and
 * the sender is not authenticated yet.
 */
import { jwtVerify } from "jose";
import { describeJoseError, type KeySets } from "./keys";
import type { TokenCheck } from "./types";

/** Where Google publishes the keys that sign its ID tokens. */
export const GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs";

/** Both spellings Google uses for `iss` in ID tokens. */
export const GOOGLE_ISSUERS = ["accounts.google.com", "https://accounts.google.com"] as const;

/** Clock skew tolerated on exp/iat/nbf, as google.golang.org/api/idtoken allows. */
const CLOCK_SKEW_SECONDS = 10;

export interface GoogleIdTokenExpectation {
  readonly audience: string;
  readonly email: string;
}

export class GoogleIdTokens {
  readonly #keys: KeySets;
  readonly #jwksUrl: string;

  constructor(keys: KeySets, jwksUrl: string = GOOGLE_JWKS_URL) {
    this.#keys = keys;
    this.#jwksUrl = jwksUrl;
  }

  async verify(token: string, expected: GoogleIdTokenExpectation): Promise<TokenCheck> {
    let claims: Record<string, unknown>;
    try {
      const verified = await jwtVerify(token, this.#keys.get(this.#jwksUrl), {
        audience: expected.audience,
        algorithms: ["RS256"],
        requiredClaims: ["exp"],
        clockTolerance: CLOCK_SKEW_SECONDS,
      });
      claims = verified.payload;
    } catch (err) {
      return { ok: false, reason: `invalid ID token: ${describeJoseError(err)}` };
    }
    const iss = claims.iss;
    if (typeof iss !== "string" || !(GOOGLE_ISSUERS as readonly string[]).includes(iss)) {
      return {
        ok: false,
        reason: `token issuer is ${JSON.stringify(iss ?? "")}, want 'accounts.google.com' or 'https://accounts.google.com'`,
      };
    }
    if (claims.email !== expected.email)
      return { ok: false, reason: "token email does not match the receiver's email" };
    if (claims.email_verified !== true) return { ok: false, reason: "token email is not verified" };
    return { ok: true, claims };
  }
}
