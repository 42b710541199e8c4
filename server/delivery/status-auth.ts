/**
 * @module server/delivery/status-auth
 * How a status query (shared/status-query.ts) proves it comes from the Receiver's sender: the
 * delivery's own authentication, one entry per receiver type, applied to the query's body and
 * headers. The validators of providers/ cannot be reused whole: most also decode the body as the
 * sender's payload (a push event, a Pub/Sub envelope), which a query is not. So each entry calls the
 * validator's own authentication check (exported beside it) and skips its payload decoding:
 *
 *   - github, bitbucket, generic-hmac, nexus: the same HMAC header over the query's exact bytes,
 *     keyed with statusQueryKey(token) (shared/status-query.ts): a delivery's signature is never
 *     a query's, nor a query's a delivery's;
 *   - gitlab, harbor: the same token header;
 *   - generic-oidc: the same bearer ID token, through the same issuers and CEL validations;
 *   - gcr: the same Google ID token (audience and service account from the Secret);
 *   - generic, dockerhub, quay, acr, cdevents: nothing but the secret URL, as for their deliveries.
 */
import { Header, statusQueryKey, type ReceiverType } from "../../shared";
import type { DeliveryRequest, ValidatorContext } from "../providers";
import { gcrAuthRefusal } from "../providers/gcr";
import { hmacSignatureRefusal } from "../providers/generic-hmac";
import { validateGenericOidc } from "../providers/generic-oidc";
import { hubSignatureRefusal } from "../providers/github";
import { nexusSignatureRefusal } from "../providers/nexus";
import { tokenHeaderRefusal } from "../providers/token-header";

export type QueryAuthentication = { ok: true } | { ok: false; reason: string };
type QueryAuth = (
  request: DeliveryRequest,
  context: ValidatorContext,
) => QueryAuthentication | Promise<QueryAuthentication>;

const ok: QueryAuthentication = { ok: true };
const verdict = (refusal: string | undefined): QueryAuthentication =>
  refusal === undefined ? ok : { ok: false, reason: refusal };
const urlOnly: QueryAuth = () => ok;
/** The validators' own checks of a signature over the raw bytes, or of a token, applied to the query. */
const queryKey = (token: Uint8Array | undefined) => statusQueryKey(token ?? "");
const hubSignature: QueryAuth = (request, { secret }) => verdict(hubSignatureRefusal(request, queryKey(secret.token)));
const tokenHeader =
  (header: string): QueryAuth =>
  (request, { secret }) =>
    verdict(tokenHeaderRefusal(request, header, secret.token ?? ""));

export const STATUS_QUERY_AUTH: Readonly<Record<ReceiverType, QueryAuth>> = {
  generic: urlOnly,
  dockerhub: urlOnly,
  quay: urlOnly,
  acr: urlOnly,
  cdevents: urlOnly,
  github: hubSignature,
  bitbucket: hubSignature,
  "generic-hmac": (request, { secret }) => verdict(hmacSignatureRefusal(request, queryKey(secret.token))),
  nexus: (request, { secret }) => verdict(nexusSignatureRefusal(request, queryKey(secret.token))),
  gitlab: tokenHeader(Header.gitlabToken),
  harbor: tokenHeader(Header.authorization),
  // The validator reads only the Authorization header (and passes the body through untouched).
  "generic-oidc": async (request, context) => {
    const checked = await validateGenericOidc(request, context);
    return checked.ok ? ok : { ok: false, reason: checked.reason };
  },
  gcr: async (request, context) => verdict(await gcrAuthRefusal(request, context)),
};
