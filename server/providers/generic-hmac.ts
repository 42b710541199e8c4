/**
 * @module server/providers/generic-hmac
 * `generic-hmac`: `X-Signature: <algo>=<hex>` over the raw body, always enforced (Flux too).
 */
import { Header, verifySignature } from "../../shared";
import { accept, refuse, type Validator } from "./types";

export const validateGenericHmac: Validator = (request, { secret }) => {
  const check = verifySignature(request.headers.get(Header.signature), secret.token ?? "", request.body);
  if (!check.ok) return refuse(`${check.reason} (${Header.signature})`);
  return accept(request);
};
