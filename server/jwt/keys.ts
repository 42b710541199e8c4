/**
 * @module server/jwt/keys
 * Signing keys published as JSON Web Key Sets, fetched and cached per URL with jose's remote key
 * set: the keys are fetched on first use, kept for JWKS_MAX_AGE_MS, and fetched again early when a
 * token names a `kid` the cache does not have (key rotation), at most once per JWKS_COOLDOWN_MS.
 *
 * Around jose: every fetch goes through server/jwt/fetch.ts (1 MiB cap, redirects, the opt-in
 * address filter), and a failed fetch is remembered for OIDC_FETCH_RETRY_MS, during which tokens
 * fetches of that key set fail at once (tokens whose keys are cached still verify): jose caches
 * only successes, so without this, while a key set fails to load, every forged token is a fetch.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from "jose";
import { JWKS_COOLDOWN_MS, JWKS_MAX_AGE_MS, OIDC_FETCH_RETRY_MS, OIDC_FETCH_TIMEOUT_MS } from "../limits";
import { fetchJsonObject, type FetchPolicy } from "./fetch";

export interface KeySetOptions extends FetchPolicy {
  /** Least time between two fetches of one key set (tests lower it to see a rotation at once). */
  readonly cooldownMs?: number;
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

/** Key sets kept at once; one per issuer in use (and Google's), so this is only a backstop. */
const MAX_KEY_SETS = 256;

/** A failed key-set fetch, thrown to jwtVerify with a reason safe to send back. */
export class KeyFetchFailed extends Error {}

interface KeySet {
  readonly verifyKey: JWTVerifyGetKey;
  /** When the last fetch failed, and why; cleared by a success. */
  failure: { readonly at: number; readonly reason: string } | undefined;
}

export class KeySets {
  readonly #sets = new Map<string, KeySet>();
  readonly #options: KeySetOptions;
  readonly #now: () => number;
  /** Key-set fetches started so far (for tests). */
  fetches = 0;

  constructor(options: KeySetOptions = {}) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The (shared, cached) key set published at `url`. */
  get(url: string): JWTVerifyGetKey {
    let set = this.#sets.get(url);
    if (!set) {
      if (this.#sets.size >= MAX_KEY_SETS) this.#sets.delete(this.#sets.keys().next().value!);
      set = this.#create(url);
      this.#sets.set(url, set);
    }
    return set.verifyKey;
  }

  #create(url: string): KeySet {
    const set: { verifyKey?: JWTVerifyGetKey; failure: KeySet["failure"] } = { failure: undefined };
    // The negative cache sits at the fetch, not in front of verification: tokens whose keys jose
    // has cached keep verifying while a fetch for an unknown `kid` has just failed.
    const fetchKeys = async (address: string): Promise<Response> => {
      const failure = set.failure;
      if (failure && this.#now() - failure.at < OIDC_FETCH_RETRY_MS) throw new KeyFetchFailed(failure.reason);
      this.fetches++;
      const fetched = await fetchJsonObject(address, "the key set", this.#options);
      const reason = !fetched.ok
        ? fetched.reason
        : Array.isArray(fetched.value.keys)
          ? undefined
          : "the key set document has no keys";
      if (reason !== undefined) {
        set.failure = { at: this.#now(), reason };
        throw new KeyFetchFailed(reason);
      }
      set.failure = undefined;
      return Response.json((fetched as { value: unknown }).value);
    };
    set.verifyKey = createRemoteJWKSet(new URL(url), {
      cooldownDuration: this.#options.cooldownMs ?? JWKS_COOLDOWN_MS,
      cacheMaxAge: this.#options.maxAgeMs ?? JWKS_MAX_AGE_MS,
      timeoutDuration: this.#options.timeoutMs ?? OIDC_FETCH_TIMEOUT_MS,
      [customFetch]: fetchKeys,
    });
    return set as KeySet;
  }
}

/** A short, safe description of a verification failure (jose's messages name no key material). */
export function describeJoseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.message ? e.message : String(err);
}
