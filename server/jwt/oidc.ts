/**
 * @module server/jwt/oidc
 * ID tokens of any OIDC issuer named in a `generic-oidc` Receiver, verified as go-oidc's
 * `Provider.Verifier(ClientID: audience).Verify` does for Flux 1.9: the issuer's discovery
 * document gives the JWKS address and the accepted algorithms; the signature, `iss`, `aud` and
 * `exp` are checked.
 *
 * As go-oidc does, `nbf` may be up to 5 minutes ahead of the clock (clock skew between the issuer
 * and fluxhook), `exp` has no leeway, and redirects are followed for discovery and keys (through
 * server/jwt/fetch.ts, so each hop passes the opt-in address filter).
 *
 * Unlike Flux, which runs discovery on every request, the discovery document is cached per issuer
 * (OIDC_DISCOVERY_TTL_MS; concurrent requests share one fetch, and a failed fetch is not retried
 * for OIDC_FETCH_RETRY_MS) and the keys are cached per JWKS address (server/jwt/keys.ts), so
 * a delivery costs no fetch in the steady state. Reasons name what failed, never the fetched text
 * (the document's `issuer`, a body, a connect error): the answer goes to an unauthenticated sender.
 */
import { jwtVerify, type JWSAlgorithm } from "jose";
import { OIDC_DISCOVERY_TTL_MS, OIDC_FETCH_RETRY_MS } from "../limits";
import { fetchJsonObject, type FetchPolicy } from "./fetch";
import { describeJoseError, type KeySets } from "./keys";
import type { TokenCheck } from "./types";

/** go-oidc's allowedClockSkew, applied to `nbf` only (oidc/verify.go). */
export const NBF_LEEWAY_SECONDS = 5 * 60;

/**
 * undefined when `issuerURL` can name an issuer, else why not: an http(s) URL without query or
 * fragment, since discovery appends `/.well-known/openid-configuration` to it and a `?` or `#`
 * would make the fetched path whatever follows.
 */
export function issuerUrlProblem(issuerURL: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuerURL);
  } catch {
    return "is not a URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "is not an http(s) URL";
  if (issuerURL.includes("?") || issuerURL.includes("#")) return "has a query or a fragment";
  if (url.username || url.password) return "carries credentials";
  return undefined;
}

/** Signature algorithms go-oidc accepts; symmetric ones are never accepted from a JWKS. */
const SUPPORTED_ALGORITHMS = new Set([
  "RS256",
  "RS384",
  "RS512",
  "ES256",
  "ES384",
  "ES512",
  "PS256",
  "PS384",
  "PS512",
  "EdDSA",
]);

/** Issuers whose discovery is cached at once; more are dropped oldest first. */
const MAX_ISSUERS = 256;

interface Discovery {
  readonly jwksUri: string;
  readonly algorithms: string[];
}

type CacheEntry =
  | { readonly at: number; readonly value: Discovery }
  | { readonly at: number; readonly error: string }
  | { readonly at: number; readonly pending: Promise<Discovery | string> };

export interface OidcProviderRef {
  readonly issuerURL: string;
  readonly audience: string;
}

export interface OidcIssuerOptions extends FetchPolicy {
  readonly now?: () => number;
}

export class OidcIssuers {
  readonly #keys: KeySets;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #now: () => number;
  readonly #policy: FetchPolicy;
  /** Discovery documents fetched so far (for tests and metrics). */
  discoveries = 0;

  constructor(keys: KeySets, options: OidcIssuerOptions = {}) {
    this.#keys = keys;
    this.#now = options.now ?? Date.now;
    this.#policy = options;
  }

  async verify(token: string, provider: OidcProviderRef): Promise<TokenCheck> {
    const discovery = await this.#discover(provider.issuerURL);
    if (typeof discovery === "string") {
      return {
        ok: false,
        reason: `failed to initialize OIDC provider for issuer ${JSON.stringify(provider.issuerURL)}: ${discovery}`,
      };
    }
    try {
      const now = this.#now();
      const { payload } = await jwtVerify(token, this.#keys.get(discovery.jwksUri), {
        issuer: provider.issuerURL,
        audience: provider.audience,
        algorithms: discovery.algorithms,
        requiredClaims: ["exp"],
        currentDate: new Date(now),
        // jose applies one tolerance to both; `exp` is checked strictly below.
        clockTolerance: NBF_LEEWAY_SECONDS,
      });
      if (typeof payload.exp !== "number" || now / 1000 > payload.exp)
        return { ok: false, reason: 'failed to verify OIDC token: "exp" claim timestamp check failed' };
      return { ok: true, claims: payload };
    } catch (err) {
      return { ok: false, reason: `failed to verify OIDC token: ${describeJoseError(err)}` };
    }
  }

  /** The issuer's discovery document, from the cache when fresh; a string is the failure. */
  async #discover(issuer: string): Promise<Discovery | string> {
    const now = this.#now();
    const cached = this.#cache.get(issuer);
    if (cached) {
      if ("pending" in cached) return cached.pending;
      if ("value" in cached && now - cached.at < OIDC_DISCOVERY_TTL_MS) return cached.value;
      if ("error" in cached && now - cached.at < OIDC_FETCH_RETRY_MS) return cached.error;
    }
    const pending = this.#fetchDiscovery(issuer);
    this.#remember(issuer, { at: now, pending });
    const result = await pending;
    this.#remember(
      issuer,
      typeof result === "string" ? { at: this.#now(), error: result } : { at: this.#now(), value: result },
    );
    return result;
  }

  #remember(issuer: string, entry: CacheEntry) {
    this.#cache.delete(issuer);
    if (this.#cache.size >= MAX_ISSUERS) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(issuer, entry);
  }

  async #fetchDiscovery(issuer: string): Promise<Discovery | string> {
    const problem = issuerUrlProblem(issuer);
    if (problem) return `the issuer URL ${problem}`;
    this.discoveries++;
    const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const fetched = await fetchJsonObject(url, "discovery", this.#policy);
    if (!fetched.ok) return fetched.reason;
    const doc = fetched.value;
    // go-oidc refuses a document for another issuer: the token's `iss` is checked against ours.
    if (doc.issuer !== issuer) return "the discovery document names another issuer than the issuer URL";
    if (typeof doc.jwks_uri !== "string" || !/^https?:\/\//.test(doc.jwks_uri))
      return "discovery document has no jwks_uri";
    const advertised = Array.isArray(doc.id_token_signing_alg_values_supported)
      ? doc.id_token_signing_alg_values_supported
      : [];
    const algorithms = advertised.filter(
      (a): a is JWSAlgorithm => typeof a === "string" && SUPPORTED_ALGORITHMS.has(a),
    );
    return { jwksUri: doc.jwks_uri, algorithms: algorithms.length > 0 ? algorithms : ["RS256"] };
  }
}
