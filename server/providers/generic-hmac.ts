/**
 * @module server/providers/generic-hmac
 * `generic-hmac`: `X-Signature: <algo>=<hex>` over the raw body, always enforced (Flux too).
 */
import { Header, verifySignature } from "../../shared";
import { accept, refuse, type DeliveryRequest, type Validator } from "./types";

/** Why the request's `X-Signature` over its raw body fails, or undefined when it holds. */
export function hmacSignatureRefusal(request: DeliveryRequest, token: string | Uint8Array): string | undefined {
  const check = verifySignature(request.headers.get(Header.signature), token, request.body);
  return check.ok ? undefined : `${check.reason} (${Header.signature})`;
}

export const validateGenericHmac: Validator = (request, { secret }) => {
  const unsigned = hmacSignatureRefusal(request, secret.token ?? "");
  return unsigned ? refuse(unsigned) : accept(request);
};
