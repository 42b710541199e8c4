/**
 * @module server/delivery/status-auth
 * How a status query (shared/status-query.ts) proves it comes from the Receiver's sender: the
 * delivery's own authentication, one entry per receiver type, applied to the query's body and
 * headers. The validators of providers/ cannot be reused whole: most also decode the body as the
 * sender's payload (a push event, a Pub/Sub envelope), which a query is not. So each entry keeps
 * the validator's authentication and drops its payload decoding:
 *
 *   - github, bitbucket, generic-hmac, nexus: the same HMAC header, over the query's exact bytes;
 *   - gitlab, harbor: the same token header;
 *   - generic-oidc: the same bearer ID token, through the same issuers and CEL validations;
 *   - gcr: the same Google ID token (audience and service account from the Secret);
 *   - generic, dockerhub, quay, acr, cdevents: nothing but the secret URL, as for their deliveries.
 */
import { createHmac } from "node:crypto";
import { Header, secretsEqual, verifySignature, type ReceiverType } from "../../shared";
import type { DeliveryRequest, ValidatorContext } from "../providers";
import { validateGenericOidc } from "../providers/generic-oidc";

export type QueryAuthentication = { ok: true } | { ok: false; reason: string };
type QueryAuth = (
  request: DeliveryRequest,
  context: ValidatorContext,
) => QueryAuthentication | Promise<QueryAuthentication>;

const ok: QueryAuthentication = { ok: true };
const refuse = (reason: string): QueryAuthentication => ({ ok: false, reason });
const urlOnly: QueryAuth = () => ok;

const hubSignature: QueryAuth = (request, { secret }) => {
  // As github.ts: an empty X-Hub-Signature-256 falls back to the legacy sha1 header.
  const sha256 = request.headers.get(Header.hubSignature256);
  const header = sha256 ? Header.hubSignature256 : Header.hubSignature;
  const check = verifySignature(request.headers.get(header), secret.token ?? "", request.body);
  return check.ok
    ? ok
    : refuse(`${check.reason} (${sha256 ? header : `${Header.hubSignature256} or ${Header.hubSignature}`})`);
};

const tokenHeader =
  (header: string): QueryAuth =>
  (request, { secret }) => {
    const token = request.headers.get(header);
    if (token === null) return refuse(`missing ${header} header`);
    return secretsEqual(token, secret.token ?? "") ? ok : refuse(`${header} does not match the receiver's token`);
  };

const BEARER = "Bearer ";

export const STATUS_QUERY_AUTH: Readonly<Record<ReceiverType, QueryAuth>> = {
  generic: urlOnly,
  dockerhub: urlOnly,
  quay: urlOnly,
  acr: urlOnly,
  cdevents: urlOnly,
  github: hubSignature,
  bitbucket: hubSignature,
  "generic-hmac": (request, { secret }) => {
    const check = verifySignature(request.headers.get(Header.signature), secret.token ?? "", request.body);
    return check.ok ? ok : refuse(`${check.reason} (${Header.signature})`);
  },
  nexus: (request, { secret }) => {
    const signature = request.headers.get(Header.nexusSignature);
    if (!signature) return refuse(`missing ${Header.nexusSignature} header`);
    const expected = createHmac("sha1", secret.token ?? "")
      .update(request.body)
      .digest("hex");
    return secretsEqual(signature, expected) ? ok : refuse(`invalid Nexus signature (${Header.nexusSignature})`);
  },
  gitlab: tokenHeader(Header.gitlabToken),
  harbor: tokenHeader(Header.authorization),
  // The validator reads only the Authorization header (and passes the body through untouched).
  "generic-oidc": async (request, context) => {
    const verdict = await validateGenericOidc(request, context);
    return verdict.ok ? ok : refuse(verdict.reason);
  },
  gcr: async (request, { secret, auth }) => {
    const email = secret.email?.toString("utf8") ?? "";
    const audience = secret.audience?.toString("utf8") ?? "";
    if (!email || !audience) return refuse("invalid secret data: the GCR receiver's Secret needs email and audience");
    const authorization = request.headers.get(Header.authorization) ?? "";
    if (!authorization.startsWith(BEARER))
      return refuse("cannot authenticate GCR request: the Authorization header is missing or malformed");
    const check = await auth.google.verify(authorization.slice(BEARER.length), { audience, email });
    return check.ok ? ok : refuse(`cannot authenticate GCR request: ${check.reason}`);
  },
};
