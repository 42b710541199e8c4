/**
 * @module server/providers/generic-hmac
 * `generic-hmac`: `X-Signature: <algo>=<hex>` over the raw body, always enforced (Flux too).
 */
import { Header, verifySignature, type SignatureAlgorithm } from "../../shared";
import { accept, refuse, type DeliveryRequest, type Validator } from "./types";

/**
 * Why the request's signature in `header` (`X-Signature` unless said) over its raw body fails, or
 * undefined when it holds; `algorithms` are those accepted (every one Flux takes unless said).
 */
export function hmacSignatureRefusal(
  request: DeliveryRequest,
  token: string | Uint8Array,
  header: string = Header.signature,
  algorithms?: readonly SignatureAlgorithm[],
): string | undefined {
  const check = verifySignature(request.headers.get(header), token, request.body, algorithms);
  return check.ok ? undefined : `${check.reason} (${header})`;
}

export const validateGenericHmac: Validator = (request, { secret }) => {
  const unsigned = hmacSignatureRefusal(request, secret.token ?? "");
  return unsigned ? refuse(unsigned) : accept(request);
};
