/**
 * @module action/id-token
 * generic-oidc's ID token, asked for once and reused until shortly before it expires: the
 * delivery and every status query of a wait carry the same token while it is valid, instead of
 * one new token per poll (each one more credential minted, masked and sent).
 *
 * The expiry is read from the token's payload (`exp`, seconds since the epoch) without verifying
 * it: the receiver verifies; the sender only needs to know when to ask again. A token without a
 * readable `exp` is reused for ID_TOKEN_FALLBACK_LIFETIME_MS.
 */

/** Ask again this long before `exp`: a query sent just before stays valid while the receiver checks it, clocks a little apart. */
export const ID_TOKEN_REFRESH_MARGIN_MS = 60_000;
/** How long a token whose expiry cannot be read is reused: short, as GitHub's live minutes. */
export const ID_TOKEN_FALLBACK_LIFETIME_MS = 60_000;

/** The token's `exp` in ms since the epoch, or undefined when its payload does not say. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export type TokenResult<E> = { readonly ok: true; readonly value: string } | ({ readonly ok: false } & E);

/**
 * `fetch` behind a cache: its token is returned again until ID_TOKEN_REFRESH_MARGIN_MS before its
 * expiry; `onNew` sees each new token once (to mask it before it can be printed).
 */
export function reusedToken<E>(
  fetch: () => Promise<TokenResult<E>>,
  now: () => number,
  onNew: (token: string) => void,
): () => Promise<TokenResult<E>> {
  let cached: { readonly value: string; readonly refreshAt: number } | undefined;
  return async () => {
    if (cached && now() < cached.refreshAt) return { ok: true, value: cached.value };
    const fetched = await fetch();
    if (!fetched.ok) return fetched;
    const expiry = tokenExpiry(fetched.value);
    const refreshAt =
      expiry === undefined ? now() + ID_TOKEN_FALLBACK_LIFETIME_MS : expiry - ID_TOKEN_REFRESH_MARGIN_MS;
    if (fetched.value !== cached?.value) onNew(fetched.value);
    cached = { value: fetched.value, refreshAt };
    return fetched;
  };
}
