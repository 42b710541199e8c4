/**
 * @module server/providers/github
 * `github` and `bitbucket` (Bitbucket Server signs like GitHub), with go-github's
 * ValidatePayload semantics: the content type picks the payload (the JSON body, or the `payload`
 * field of a form body), `X-Hub-Signature-256` is preferred over the legacy sha1
 * `X-Hub-Signature`, and the HMAC covers the whole raw body.
 *
 * Unlike Flux, a missing signature is refused even when the token is empty: go-github skips the
 * check when both are empty, which turns a Secret with `token: ""` into an open receiver.
 */
import { ContentType, Header, verifySignature } from "../../shared";
import { checkEvent } from "./events";
import { refuse, type DeliveryRequest, type Validation, type Validator } from "./types";

/** The media type without parameters, lowercased (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string | null): string {
  return (contentType ?? "").split(";", 1)[0]!.trim().toLowerCase();
}

/** The `payload` field of a form body (go-github's form.Get); none is an empty payload. */
export type FormPayload = (body: Uint8Array) => Uint8Array;

export const formPayload: FormPayload = (body) => {
  const field = new URLSearchParams(Buffer.from(body).toString("utf8")).get("payload");
  return Buffer.from(field ?? "", "utf8");
};

/**
 * Why the request's GitHub-style signature over its raw body fails, or undefined when it holds.
 * An empty X-Hub-Signature-256 falls back to X-Hub-Signature, as in go-github.
 */
export function hubSignatureRefusal(request: DeliveryRequest, token: string | Uint8Array): string | undefined {
  const sha256 = request.headers.get(Header.hubSignature256);
  const header = sha256 ? Header.hubSignature256 : Header.hubSignature;
  const check = verifySignature(request.headers.get(header), token, request.body);
  return check.ok
    ? undefined
    : `${check.reason} (${sha256 ? header : `${Header.hubSignature256} or ${Header.hubSignature}`})`;
}

/**
 * The signature is checked over the raw body before anything parses it: a forged form body costs
 * an HMAC, never a parse (a 3 MiB form parse takes 122 ms and 130 MB).
 */
export function signedPayload(eventHeader: string, parseForm: FormPayload = formPayload): Validator {
  return (request, { spec, secret }): Validation => {
    const type = mediaType(request.headers.get(Header.contentType));
    if (type !== ContentType.json && type !== ContentType.form) {
      return refuse(
        `unsupported Content-Type ${JSON.stringify(type)}: expected ${ContentType.json} or ${ContentType.form}`,
      );
    }

    const unsigned = hubSignatureRefusal(request, secret.token ?? "");
    if (unsigned) return refuse(unsigned);

    const event = request.headers.get(eventHeader);
    const refused = checkEvent(spec.events, event, eventHeader);
    if (refused) return refuse(refused);
    // The signature covers the whole form body; CEL sees its payload field.
    const payload = type === ContentType.json ? request.body : parseForm(request.body);
    return {
      ok: true,
      event: event ?? undefined,
      payload,
      payloadType: type === ContentType.json ? (request.headers.get(Header.contentType) ?? "") : ContentType.form,
    };
  };
}

export const validateGitHub: Validator = signedPayload(Header.githubEvent);
export const validateBitbucket: Validator = signedPayload(Header.bitbucketEvent);
