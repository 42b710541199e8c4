/**
 * @module action/vocabulary
 * The sender's shared words: the names of its inputs and outputs, the choices they take, and the
 * shapes of a request, a proxy setting and an answer that pass between its modules. Types and
 * names only, importing no other module of action/: every module can import it, so none has to
 * import another to learn a name (test/action/imports.test.ts keeps action/ free of cycles).
 */
import type { ReceiverType } from "../shared";

/** Input names: part of the action's public contract (`action.yml` documents each of them). */
export const Input = {
  token: "token",
  url: "url",
  address: "address",
  receiver: "receiver",
  namespace: "namespace",
  receiverType: "receiver-type",
  event: "event",
  payload: "payload",
  payloadFile: "payload-file",
  contentType: "content-type",
  timeoutSeconds: "timeout-seconds",
  retries: "retries",
  failOnError: "fail-on-error",
  dryRun: "dry-run",
  caFile: "ca-file",
  ca: "ca",
  clientCert: "client-cert",
  clientKey: "client-key",
  insecureSkipTlsVerify: "insecure-skip-tls-verify",
  headers: "headers",
  oidcAudience: "oidc-audience",
  userAgent: "user-agent",
  waitFor: "wait-for",
  waitTimeoutSeconds: "wait-timeout-seconds",
} as const;
export type InputName = (typeof Input)[keyof typeof Input];

/** Output names: part of the action's public contract (`action.yml` documents each of them). */
export const Output = {
  status: "status",
  deliveryId: "delivery-id",
  attempts: "attempts",
  response: "response",
  url: "url",
  results: "results",
  /** With wait-for: the source revision Flux reached, when it has Flux's revision shape. */
  revision: "revision",
} as const;
export type OutputName = (typeof Output)[keyof typeof Output];

/** The receiver types this action can sign for; the others need a sender it cannot impersonate. */
export const SUPPORTED_RECEIVER_TYPES = [
  "github",
  "generic-hmac",
  "gitlab",
  "bitbucket",
  "harbor",
  "generic",
  "generic-oidc",
] as const satisfies readonly ReceiverType[];
export type SupportedReceiverType = (typeof SUPPORTED_RECEIVER_TYPES)[number];

export const CONTENT_TYPES = ["json", "form"] as const;
export type ContentTypeName = (typeof CONTENT_TYPES)[number];

/** What to wait for after delivering (fluxhook's status query); `none` does not wait. */
export const WAIT_FOR = ["none", "reconciled", "ready"] as const;
export type WaitFor = (typeof WAIT_FOR)[number];

/** Reads one input, raw (untrimmed); "" when unset. */
export type InputGetter = (name: InputName) => string;
export type Env = Readonly<Record<string, string | undefined>>;

/** The runner's proxy variables (either case), read once. */
export interface ProxySettings {
  readonly httpProxy: string | undefined;
  readonly httpsProxy: string | undefined;
  readonly noProxy: string | undefined;
}

/** One request as it goes on the wire. */
export interface OutgoingRequest {
  readonly method: "POST";
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes sent and signed. */
  readonly body: Uint8Array;
}

export type ErrorCategory =
  | "refused"
  | "dns"
  | "timeout"
  | "reset"
  | "tls-verify"
  | "tls"
  | "tls-client-cert"
  | "proxy"
  | "other";

export interface NetworkError {
  readonly category: ErrorCategory;
  /** The most specific code found on the error or its causes, e.g. ECONNREFUSED. */
  readonly code: string;
  readonly message: string;
  /** Whether another attempt could succeed; configuration errors (TLS trust, proxy auth) cannot. */
  readonly retryable: boolean;
}

/** An answer, or why there was none. */
export type SendResult =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: string;
      /** The body was not read to its end: longer than the read's bound, or cut off. */
      readonly bodyTruncated: boolean;
      /**
       * Cut off, not bounded: the body stopped before its end (it stalled past the timeout, or the
       * connection was reset), so another request may get all of it. Implies `bodyTruncated`.
       */
      readonly bodyCut?: boolean;
      /** The whole body's length in bytes, when known (read to the end, or its Content-Length). */
      readonly bodyBytes?: number;
    }
  | { readonly kind: "error"; readonly error: NetworkError };

/**
 * Sends one request, giving up after `timeoutMs` (connect to last body byte), reading at most
 * `maxBodyBytes` of the answer (MAX_ANSWER_BYTES when not given).
 */
export type Send = (req: OutgoingRequest, timeoutMs: number, maxBodyBytes?: number) => Promise<SendResult>;

/** Exit codes (the CLI's; the action only fails or succeeds): delivered, failed, bad usage. */
export const Exit = { delivered: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An ID token for generic-oidc; `usage` when the caller did not make one available at all. */
export type IdTokenResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly error: string; readonly usage: boolean };
