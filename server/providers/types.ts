/**
 * @module server/providers/types
 * The contract of a receiver-type validator: a pure function from the request (headers and the
 * exact raw body) and the Receiver's settings to a verdict. Types that verify tokens reach the
 * network only through the injected `auth` services. A refusal is a value with a reason
 * that is safe to send back (it never quotes a token, a signature or a Secret's name).
 */
import type { AuthServices } from "../jwt";
import type { OidcProvider, ReceiverSpec } from "../api/receiver";
import type { CelMeter, CelProgram } from "../cel";
import type { SecretData } from "../api/secret";

/** An OIDC provider's compiled expressions (receivers/prepare.ts compiles them once per generation). */
export interface CompiledOidcProvider extends Pick<OidcProvider, "issuerURL" | "audience"> {
  /** Evaluated in order; each result is `vars.<name>` for the later ones and the validations. */
  readonly variables: readonly { readonly name: string; readonly program: CelProgram }[];
  readonly validations: readonly { readonly message: string; readonly program: CelProgram }[];
}

export interface DeliveryRequest {
  readonly headers: Headers;
  /** The exact bytes received; signatures are checked over these. */
  readonly body: Uint8Array;
}

export interface ValidatorContext {
  readonly spec: ReceiverSpec;
  /** The Secret's keys; `token` is always present for types that use a Secret. */
  readonly secret: SecretData;
  /** The generation's compiled CEL (generic-oidc's variables and validations). */
  readonly compiled: { readonly oidcProviders: readonly CompiledOidcProvider[] };
  /** Token verification (gcr, generic-oidc): network-backed and cached, injected at the edge. */
  readonly auth: AuthServices;
  /** The delivery's CEL budget, shared with its filters (made by the delivery, per request). */
  readonly meter: CelMeter;
}

export type Validation =
  | {
      readonly ok: true;
      /** The event name the sender declared, when the type has one (for logs and filters). */
      readonly event: string | undefined;
      /** The payload as CEL's `req` sees it, and the content type it came with. */
      readonly payload: Uint8Array;
      readonly payloadType: string;
      /** generic-oidc: the verified token's claims, which filters see as `claims`. */
      readonly claims?: Readonly<Record<string, unknown>>;
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

/** A status query's authentication: no payload is decoded, only the sender's credential checked. */
export type QueryAuthentication = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type QueryAuthenticator = (
  request: DeliveryRequest,
  context: ValidatorContext,
) => QueryAuthentication | Promise<QueryAuthentication>;
