/**
 * @module server/jwt/oidc
 * ID tokens of any OIDC issuer named in a `generic-oidc` Receiver, verified as go-oidc's
 * `Provider.Verifier(ClientID: audience).Verify` does for Flux 1.9: the issuer's discovery
 * document gives the JWKS address and the accepted algorithms; the signature, `iss`, `aud` and
 * `exp` are checked.
 *
 * Unlike Flux, which runs discovery on every request, the discovery document is cached per issuer
 * (OIDC_DISCOVERY_TTL_MS; concurrent requests share one fetch, and a failed fetch is not retried
 * for OIDC_DISCOVERY_RETRY_MS) and the keys are cached per JWKS address (server/jwt/keys.ts), so
 * a delivery costs no fetch in the steady state.
 */
import { jwtVerify, type JWSAlgorithm } from "jose";
import { OIDC_DISCOVERY_TTL_MS, OIDC_FETCH_TIMEOUT_MS } from "../limits";
import { describeJoseError, type KeySets } from "./keys";
import type { TokenCheck } from "./types";

/**
 * After a failed discovery, requests naming that issuer fail at once for this long instead of
 * each fetching again: an issuer that is down is not hammered by every delivery.
 */
export const OIDC_DISCOVERY_RETRY_MS = 5_000;

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

export interface OidcIssuerOptions {
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

export class OidcIssuers {
  readonly #keys: KeySets;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  /** Discovery documents fetched so far (for tests and metrics). */
  discoveries = 0;

  constructor(keys: KeySets, options: OidcIssuerOptions = {}) {
    this.#keys = keys;
    this.#now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
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
      const { payload } = await jwtVerify(token, this.#keys.get(discovery.jwksUri), {
        issuer: provider.issuerURL,
        audience: provider.audience,
        algorithms: discovery.algorithms,
        requiredClaims: ["exp"],
      });
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
      if ("error" in cached && now - cached.at < OIDC_DISCOVERY_RETRY_MS) return cached.error;
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
    this.discoveries++;
    const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    let doc: Record<string, unknown>;
    try {
      const res = await this.#fetch(url, { signal: AbortSignal.timeout(OIDC_FETCH_TIMEOUT_MS), redirect: "manual" });
      if (res.status !== 200) {
        await res.body?.cancel();
        return `discovery answered ${res.status}`;
      }
      doc = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      return `discovery failed: ${(err as Error).message ?? String(err)}`;
    }
    if (typeof doc !== "object" || doc === null) return "discovery document is not a JSON object";
    // go-oidc refuses a document for another issuer: the token's `iss` is checked against ours.
    if (doc.issuer !== issuer) {
      return `issuer URL provided to client (${JSON.stringify(issuer)}) did not match the issuer URL returned by provider (${JSON.stringify(doc.issuer)})`;
    }
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
