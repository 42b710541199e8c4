/**
 * @module server/providers/gcr
 * `gcr` (Google Artifact Registry / Container Registry notifications through a Pub/Sub push
 * subscription), as Flux 1.9 checks it since CVE-2026-40109:
 *
 *   1. the Secret must hold non-empty `email` and `audience` (the push subscription's service
 *      account and its token audience);
 *   2. `Authorization: Bearer <Google ID token>`, verified by server/jwt/google.ts (signature by
 *      Google's keys, `aud`, expiry, `iss`, `email`, `email_verified`);
 *   3. the body is a Pub/Sub push envelope `{message: {data, messageId, publishTime,
 *      subscription}}` whose `data` is base64 JSON `{action, digest, tag}`.
 *
 * What CEL's `req` sees is that unwrapped `{action, digest, tag}`, not the envelope.
 */
import { Header } from "../../shared";
import { conforms, firstJsonValue, wholeJsonValue } from "./json-decode";
import { refuse, type DeliveryRequest, type Validator, type ValidatorContext } from "./types";

const ENVELOPE = {
  message: { data: "string", messageId: "string", publishTime: "time", subscription: "string" },
} as const;
const EVENT = { action: "string", digest: "string", tag: "string" } as const;

const BEARER = "Bearer ";
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const str = (v: unknown) => (typeof v === "string" ? v : "");

/** A decoded field as Go finds it: exact name first, else case-insensitively. */
function field(obj: unknown, name: string): unknown {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return undefined;
  const record = obj as Record<string, unknown>;
  if (name in record) return record[name];
  const key = Object.keys(record).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : record[key];
}

/** Why the request is not from the Secret's Google service account (steps 1 and 2), or undefined. */
export async function gcrAuthRefusal(
  request: DeliveryRequest,
  { secret, auth }: Pick<ValidatorContext, "secret" | "auth">,
): Promise<string | undefined> {
  const email = secret.email?.toString("utf8") ?? "";
  if (!email) return "invalid secret data: required field 'email' for GCR receiver";
  const audience = secret.audience?.toString("utf8") ?? "";
  if (!audience) return "invalid secret data: required field 'audience' for GCR receiver";
  const authorization = request.headers.get(Header.authorization) ?? "";
  if (!authorization.startsWith(BEARER))
    return "cannot authenticate GCR request: the Authorization header is missing or malformed";
  const check = await auth.google.verify(authorization.slice(BEARER.length), { audience, email });
  return check.ok ? undefined : `cannot authenticate GCR request: ${check.reason}`;
}

export const validateGcr: Validator = async (request, context) => {
  const unauthenticated = await gcrAuthRefusal(request, context);
  if (unauthenticated) return refuse(unauthenticated);

  const envelope = firstJsonValue(request.body);
  // Go decodes `null` into the zero envelope; its empty `data` then fails to decode below.
  if (!envelope.ok) return refuse(`cannot decode GCR webhook payload: ${envelope.error}`);
  const problem = conforms(envelope.value, ENVELOPE);
  if (problem) return refuse(`cannot decode GCR webhook payload: ${problem}`);
  const data = str(field(field(envelope.value, "message"), "data"));
  // Flux ignores base64 errors and lets the JSON decoding fail; invalid base64 decodes to nothing here.
  const raw = STD_BASE64.test(data) ? Buffer.from(data, "base64") : new Uint8Array(0);
  const event = wholeJsonValue(raw);
  if (!event.ok) return refuse(`cannot decode GCR webhook body: ${event.error}`);
  const eventProblem = conforms(event.value, EVENT);
  if (eventProblem) return refuse(`cannot decode GCR webhook body: ${eventProblem}`);
  // Go re-encodes the struct: these three keys, in this order, zero values included.
  const [action, digest, tag] = (["action", "digest", "tag"] as const).map((k) => str(field(event.value, k)));
  const unwrapped = JSON.stringify({ action, digest, tag });
  return {
    ok: true,
    event: action || undefined,
    payload: new TextEncoder().encode(unwrapped),
    payloadType: request.headers.get(Header.contentType) ?? "",
  };
};
