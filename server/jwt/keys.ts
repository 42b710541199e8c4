/**
 * @module server/jwt/keys
 * Signing keys published as JSON Web Key Sets, fetched and cached per URL with jose's remote key
 * set: the keys are fetched on first use, kept for JWKS_MAX_AGE_MS, and fetched again early when a
 * token names a `kid` the cache does not have (key rotation), at most once per JWKS_COOLDOWN_MS.
 */
import { createRemoteJWKSet, type RemoteJWKSet } from "jose";
import { JWKS_COOLDOWN_MS, JWKS_MAX_AGE_MS, OIDC_FETCH_TIMEOUT_MS } from "../limits";

export interface KeySetOptions {
  /** Least time between two fetches of one key set (tests lower it to see a rotation at once). */
  readonly cooldownMs?: number;
  readonly maxAgeMs?: number;
  readonly timeoutMs?: number;
}

/** Key sets kept at once; one per issuer in use (and Google's), so this is only a backstop. */
const MAX_KEY_SETS = 256;

export class KeySets {
  readonly #sets = new Map<string, RemoteJWKSet>();
  readonly #options: KeySetOptions;

  constructor(options: KeySetOptions = {}) {
    this.#options = options;
  }

  /** The (shared, cached) key set published at `url`. */
  get(url: string): RemoteJWKSet {
    let set = this.#sets.get(url);
    if (!set) {
      if (this.#sets.size >= MAX_KEY_SETS) this.#sets.delete(this.#sets.keys().next().value!);
      set = createRemoteJWKSet(new URL(url), {
        cooldownDuration: this.#options.cooldownMs ?? JWKS_COOLDOWN_MS,
        cacheMaxAge: this.#options.maxAgeMs ?? JWKS_MAX_AGE_MS,
        timeoutDuration: this.#options.timeoutMs ?? OIDC_FETCH_TIMEOUT_MS,
      });
      this.#sets.set(url, set);
    }
    return set;
  }
}

/** A short, safe description of a verification failure (jose's messages name no key material). */
export function describeJoseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.message ? e.message : String(err);
}
