/**
 * @module server/providers/types
 * The contract of a receiver-type validator: a pure function from the request (headers and the
 * exact raw body) and the Receiver's settings to a verdict. A refusal is a value with a reason
 * that is safe to send back (it never quotes a token, a signature or a Secret's name).
 */
import type { ReceiverSpec } from "../receivers/api";
import type { SecretData } from "../receivers/secrets";

export interface DeliveryRequest {
  readonly headers: Headers;
  /** The exact bytes received; signatures are checked over these. */
  readonly body: Uint8Array;
}

export interface ValidatorContext {
  readonly spec: ReceiverSpec;
  /** The Secret's keys; `token` is always present for types that use a Secret. */
  readonly secret: SecretData;
}

export type Validation =
  | {
      readonly ok: true;
      /** The event name the sender declared, when the type has one (for logs and filters). */
      readonly event: string | undefined;
      /** The payload as CEL's `req` sees it, and the content type it came with. */
      readonly payload: Uint8Array;
      readonly payloadType: string;
    }
  | { readonly ok: false; readonly reason: string };

export type Validator = (request: DeliveryRequest, context: ValidatorContext) => Validation | Promise<Validation>;

export const refuse = (reason: string): Validation => ({ ok: false, reason });

/** Accepts the body untouched (types without a payload transformation). */
export const accept = (request: DeliveryRequest, event?: string): Validation => ({
  ok: true,
  event,
  payload: request.body,
  payloadType: request.headers.get("content-type") ?? "",
});
