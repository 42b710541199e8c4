/**
 * @module server/providers/query-auth
 * How a status query (shared/status-query.ts) proves it comes from the Receiver's sender: the
 * delivery's own authentication, one authenticator per receiver type (the `authenticateQuery` of
 * its record in providers/index.ts), applied to the query's body and headers. The validators
 * cannot be reused whole: most also decode the body as the sender's payload (a push event, a
 * Pub/Sub envelope), which a query is not. So each calls the validator's own authentication check
 * (exported beside it) and skips its payload decoding:
 *
 *   - github, bitbucket, generic-hmac, nexus: the same HMAC header over the query's exact bytes,
 *     keyed with statusQueryKey(token) (shared/status-query.ts): a delivery's signature is never
 *     a query's, nor a query's a delivery's;
 *   - gitlab, harbor: the same token header, carrying statusQueryTokenHeader(token, body), the
 *     query's HMAC under the query key: the token a delivery carries is no query's credential,
 *     and a captured query no delivery's;
 *   - generic-oidc: the same bearer ID token, through the same issuers and CEL validations;
 *   - gcr: the same Google ID token (audience and service account from the Secret);
 *   - generic, dockerhub, quay, acr, cdevents: nothing but the secret URL, as for their deliveries.
 */
import { Header, statusQueryKey } from "../../shared";
import { gcrAuthRefusal } from "./gcr";
import { hmacSignatureRefusal } from "./generic-hmac";
import { validateGenericOidc } from "./generic-oidc";
import { hubSignatureRefusal } from "./github";
import { nexusSignatureRefusal } from "./nexus";
import type { QueryAuthentication, QueryAuthenticator } from "./types";

const ok: QueryAuthentication = { ok: true };
const verdict = (refusal: string | undefined): QueryAuthentication =>
  refusal === undefined ? ok : { ok: false, reason: refusal };
/** The validators' own checks of a signature over the raw bytes, or of a token, applied to the query. */
const queryKey = (token: Uint8Array | undefined) => statusQueryKey(token ?? "");

/** Nothing but the secret URL, as for the type's deliveries. */
export const urlOnlyQuery: QueryAuthenticator = () => ok;

/** github, bitbucket: X-Hub-Signature-256 (or X-Hub-Signature) over the query, under the query key. */
export const hubSignatureQuery: QueryAuthenticator = (request, { secret }) =>
  verdict(hubSignatureRefusal(request, queryKey(secret.token)));

export const hmacSignatureQuery: QueryAuthenticator = (request, { secret }) =>
  verdict(hmacSignatureRefusal(request, queryKey(secret.token)));

export const nexusSignatureQuery: QueryAuthenticator = (request, { secret }) =>
  verdict(nexusSignatureRefusal(request, queryKey(secret.token)));

/**
 * gitlab, harbor: the token's header carries the query's HMAC-SHA256 under the query key
 * (statusQueryTokenHeader); only sha256, the one algorithm the contract names.
 */
export const tokenHeaderQuery =
  (header: string): QueryAuthenticator =>
  (request, { secret }) =>
    verdict(hmacSignatureRefusal(request, queryKey(secret.token), header, ["sha256"]));

/** The validator reads only the Authorization header (and passes the body through untouched). */
export const oidcQuery: QueryAuthenticator = async (request, context) => {
  const checked = await validateGenericOidc(request, context);
  return checked.ok ? ok : { ok: false, reason: checked.reason };
};

export const gcrQuery: QueryAuthenticator = async (request, context) => verdict(await gcrAuthRefusal(request, context));

export const gitlabQuery = tokenHeaderQuery(Header.gitlabToken);
export const harborQuery = tokenHeaderQuery(Header.authorization);
