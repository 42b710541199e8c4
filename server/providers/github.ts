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
import { refuse, type Validation, type Validator } from "./types";

/** The media type without parameters, lowercased (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string | null): string {
  return (contentType ?? "").split(";", 1)[0]!.trim().toLowerCase();
}

function signedPayload(eventHeader: string): Validator {
  return (request, { spec, secret }): Validation => {
    const type = mediaType(request.headers.get(Header.contentType));
    let payload: Uint8Array;
    if (type === ContentType.json) {
      payload = request.body;
    } else if (type === ContentType.form) {
      // No payload field is an empty payload, as go-github's form.Get gives (the signature still
      // covers the whole form body).
      const field = new URLSearchParams(Buffer.from(request.body).toString("utf8")).get("payload");
      payload = Buffer.from(field ?? "", "utf8");
    } else {
      return refuse(
        `unsupported Content-Type ${JSON.stringify(type)}: expected ${ContentType.json} or ${ContentType.form}`,
      );
    }

    // An empty X-Hub-Signature-256 falls back to X-Hub-Signature, as in go-github.
    const sha256 = request.headers.get(Header.hubSignature256);
    const header = sha256 ? Header.hubSignature256 : Header.hubSignature;
    const check = verifySignature(request.headers.get(header), secret.token ?? "", request.body);
    if (!check.ok)
      return refuse(`${check.reason} (${sha256 ? header : `${Header.hubSignature256} or ${Header.hubSignature}`})`);

    const event = request.headers.get(eventHeader);
    const refused = checkEvent(spec.events, event, eventHeader);
    if (refused) return refuse(refused);
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
