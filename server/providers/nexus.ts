/**
 * @module server/providers/nexus
 * `nexus` (Sonatype Nexus Repository): `X-Nexus-Webhook-Signature` is required and must be the
 * lowercase hex HMAC-SHA1 of the raw body keyed with the token, without any `sha1=` prefix
 * (Flux compares the strings, so uppercase hex is refused too). The comparison is constant-time.
 * The body must then be one JSON value (`json.Unmarshal`) that decodes into
 * `{action, repositoryName}`.
 */
import { createHmac } from "node:crypto";
import { Header, secretsEqual } from "../../shared";
import { conforms, wholeJsonValue } from "./json-decode";
import { accept, refuse, type DeliveryRequest, type Validator } from "./types";

const NEXUS_PAYLOAD = { action: "string", repositoryName: "string" } as const;

/** Why the request's Nexus signature over its raw body fails, or undefined when it holds. */
export function nexusSignatureRefusal(request: DeliveryRequest, token: string | Uint8Array): string | undefined {
  const signature = request.headers.get(Header.nexusSignature);
  if (!signature) return `missing ${Header.nexusSignature} header`;
  const expected = createHmac("sha1", token).update(request.body).digest("hex");
  return secretsEqual(signature, expected) ? undefined : `invalid Nexus signature (${Header.nexusSignature})`;
}

export const validateNexus: Validator = (request, { secret }) => {
  const unsigned = nexusSignatureRefusal(request, secret.token ?? "");
  if (unsigned) return refuse(unsigned);
  const decoded = wholeJsonValue(request.body);
  const problem = decoded.ok ? conforms(decoded.value, NEXUS_PAYLOAD) : decoded.error;
  if (problem) return refuse(`cannot decode Nexus webhook payload: ${problem}`);
  return accept(request);
};
