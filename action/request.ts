/**
 * @module action/request
 * Builds the HTTP request GitHub would send for this event: body, delivery headers and the
 * receiver type's authentication, signed with `shared/` over the exact bytes that go on the wire.
 *
 * Pure: no I/O, no clock, no randomness (the delivery id is passed in). The payload bytes are never
 * parsed and re-serialised; JSON is parsed only to reject a payload that is not JSON.
 */
import { createHash } from "node:crypto";
import {
  ContentType,
  encodeStatusQuery,
  Header,
  signPayload,
  STATUS_QUERY_SUFFIX,
  statusQueryKey,
  statusQueryTokenHeader,
  type QueriedTarget,
} from "../shared";
import type { ContentTypeName, OutgoingRequest, SupportedReceiverType } from "./vocabulary";

export interface RequestSettings {
  readonly url: string;
  /** The Receiver's Secret token, or for generic-oidc the ID token. */
  readonly credential: string;
  readonly receiverType: SupportedReceiverType;
  readonly event: string;
  readonly contentType: ContentTypeName;
  readonly repositoryId: string | undefined;
  /** X-GitHub-Hook-ID (see `hookId`). */
  readonly hookId: string;
  readonly userAgent: string;
  readonly enterprise: { readonly host: string; readonly version: string | undefined } | undefined;
  /** The `headers` input: added last, never replacing one of the action's (inputs.ts refuses that). */
  readonly extraHeaders: readonly (readonly [string, string])[];
}

export type PayloadCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** GitHub refuses to deliver payloads above 25 MB; a receiver would refuse them anyway (Flux: 3 MiB). */
export const MAX_PAYLOAD_BYTES = 25 * 1024 * 1024;

/** Headers whose values are (or are derived from) the token: redacted whenever headers are shown. */
export const SENSITIVE_HEADERS: readonly string[] = [
  Header.hubSignature256,
  Header.hubSignature,
  Header.signature,
  Header.gitlabToken,
  Header.authorization,
];

/**
 * What authenticates one request, so that neither a delivery nor a status query verifies as the
 * other (shared/status-query.ts): the bearer token (the ID token, the same for both), the key an
 * HMAC is computed with (the token itself for a delivery, as GitHub signs; statusQueryKey(token)
 * for a query), and what a token header carries (the token for a delivery, as GitLab and Harbor
 * send it; statusQueryTokenHeader(token, body) for a query).
 */
interface Credential {
  readonly bearer: string;
  readonly hmacKey: string | Uint8Array;
  readonly tokenHeader: (body: Uint8Array) => string;
}

type AuthHeaders = (
  credential: Credential,
  body: Uint8Array,
  event: string,
  deliveryId: string,
) => Record<string, string>;

/** What each receiver type checks (Flux notification-controller `receiver_handlers.go`). */
const AUTH: Readonly<Record<SupportedReceiverType, AuthHeaders>> = {
  // go-github ValidatePayload prefers -256 and falls back to the sha1 header for old receivers.
  github: ({ hmacKey }, body) => ({
    [Header.hubSignature256]: signPayload("sha256", hmacKey, body),
    [Header.hubSignature]: signPayload("sha1", hmacKey, body),
  }),
  "generic-hmac": ({ hmacKey }, body) => ({ [Header.signature]: signPayload("sha256", hmacKey, body) }),
  gitlab: ({ tokenHeader }, body, event, deliveryId) => ({
    [Header.gitlabToken]: tokenHeader(body),
    [Header.gitlabEvent]: event,
    [Header.gitlabEventUuid]: deliveryId,
  }),
  bitbucket: ({ hmacKey }, body, event, deliveryId) => ({
    [Header.hubSignature256]: signPayload("sha256", hmacKey, body),
    [Header.bitbucketEvent]: event,
    [Header.bitbucketRequestUuid]: deliveryId,
  }),
  harbor: ({ tokenHeader }, body) => ({ [Header.authorization]: tokenHeader(body) }),
  generic: () => ({}),
  // The runner's (or the CI's) ID token; Flux verifies it against the Receiver's oidcProviders.
  "generic-oidc": ({ bearer }) => ({ [Header.authorization]: `Bearer ${bearer}` }),
};

/** Framing headers the HTTP client writes itself; a `headers` input line must not fight it. */
const FRAMING_HEADERS = ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "TE", "Upgrade"];

/**
 * Every header the action may set for a receiver type (`buildRequest` with every option on, so
 * the two cannot drift apart), plus the framing headers: the `headers` input cannot set these.
 */
export function reservedHeaderNames(receiverType: SupportedReceiverType): string[] {
  const req = buildRequest(
    {
      url: "http://x/",
      credential: "x",
      receiverType,
      event: "x",
      contentType: "json",
      repositoryId: "1",
      hookId: "1",
      userAgent: "x",
      enterprise: { host: "x", version: "x" },
      extraHeaders: [],
    },
    new Uint8Array(),
    "x",
  );
  return [...Object.keys(req.headers), ...FRAMING_HEADERS];
}

/**
 * Header names whose values are credentials (a gateway's basic auth, a Cloudflare Access
 * service-token secret, a cookie, an API key): masked and redacted like the token.
 */
export function isCredentialHeader(name: string): boolean {
  return /^(authorization|proxy-authorization|cookie)$|-(token|key|secret)$/i.test(name);
}

/**
 * X-GitHub-Hook-ID: GitHub names the webhook configuration that sent a delivery. Here a stable
 * number per receiver, from its public name only (namespace/name at the masked address, or the
 * masked URL), so it never carries anything of the token or digest.
 */
export function hookId(label: string): string {
  const n = createHash("sha256").update(`fluxhook hook id\0${label}`).digest().readUInt32BE(0);
  return String(100_000_000 + (n % 900_000_000));
}

/** Rejects what no receiver would accept: non-UTF-8, non-JSON or oversized payloads. */
export function checkPayload(bytes: Uint8Array): PayloadCheck {
  if (bytes.byteLength === 0) return { ok: false, reason: "the payload is empty" };
  if (bytes.byteLength > MAX_PAYLOAD_BYTES)
    return { ok: false, reason: `the payload is larger than ${MAX_PAYLOAD_BYTES} bytes` };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, reason: "the payload is not valid UTF-8" };
  }
  try {
    JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `the payload is not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  return { ok: true };
}

/**
 * The body for a content type. `form` is GitHub's `application/x-www-form-urlencoded` delivery:
 * one `payload` field holding the JSON; the signature then covers the whole form body.
 */
export function encodeBody(payload: Uint8Array, contentType: ContentTypeName): Uint8Array {
  if (contentType === "json") return payload;
  const json = new TextDecoder("utf-8").decode(payload);
  return new TextEncoder().encode(new URLSearchParams({ payload: json }).toString());
}

/** The complete request; `payload` must have passed `checkPayload`. */
export function buildRequest(settings: RequestSettings, payload: Uint8Array, deliveryId: string): OutgoingRequest {
  const body = encodeBody(payload, settings.contentType);
  // GitHub's delivery headers, in GitHub's order.
  const headers: Record<string, string> = {
    [Header.contentType]: settings.contentType === "json" ? ContentType.json : ContentType.form,
    [Header.userAgent]: settings.userAgent,
    [Header.githubDelivery]: deliveryId,
    [Header.githubEvent]: settings.event,
    [Header.githubHookId]: settings.hookId,
  };
  // GitHub names the hook's owner; a workflow's event always comes from a repository.
  if (settings.repositoryId) {
    headers[Header.githubTargetType] = "repository";
    headers[Header.githubTargetId] = settings.repositoryId;
  }
  if (settings.enterprise) {
    headers[Header.githubEnterpriseHost] = settings.enterprise.host;
    if (settings.enterprise.version) headers[Header.githubEnterpriseVersion] = settings.enterprise.version;
  }
  const credential: Credential = {
    bearer: settings.credential,
    hmacKey: settings.credential,
    tokenHeader: () => settings.credential,
  };
  Object.assign(headers, AUTH[settings.receiverType](credential, body, settings.event, deliveryId));
  for (const [name, value] of settings.extraHeaders) headers[name] = value;
  return { method: "POST", url: settings.url, headers, body };
}

/**
 * A status query about a delivery's targets (shared/status-query.ts): the hook's URL plus
 * `/status`, the query's JSON, and the delivery's authentication computed over it, its HMAC keyed
 * with the query key and its token header the query's own HMAC (and the same extra headers, for a
 * gateway in front).
 */
export function buildStatusQuery(
  settings: RequestSettings,
  targets: readonly QueriedTarget[],
  deliveryId: string,
): OutgoingRequest {
  const body = new TextEncoder().encode(encodeStatusQuery({ targets }));
  const url = new URL(settings.url);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${STATUS_QUERY_SUFFIX}`;
  const headers: Record<string, string> = {
    [Header.contentType]: ContentType.json,
    [Header.userAgent]: settings.userAgent,
    ...AUTH[settings.receiverType](
      {
        bearer: settings.credential,
        hmacKey: statusQueryKey(settings.credential),
        tokenHeader: (signed) => statusQueryTokenHeader(settings.credential, signed),
      },
      body,
      settings.event,
      deliveryId,
    ),
  };
  for (const [name, value] of settings.extraHeaders) headers[name] = value;
  return { method: "POST", url: url.href, headers, body };
}

/** Headers fit for a log line: token-derived values replaced, names kept. */
export function redactHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const sensitive = new Set(SENSITIVE_HEADERS.map((h) => h.toLowerCase()));
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => {
      if (!sensitive.has(name.toLowerCase()) && !isCredentialHeader(name)) return [name, value];
      if (/^Bearer /.test(value)) return [name, "Bearer <redacted>"];
      const algo = /^(sha1|sha256|sha512)=/.exec(value)?.[1];
      return [name, algo ? `${algo}=<redacted>` : "<redacted>"];
    }),
  );
}
