/**
 * The tests' one signer: the signature headers a GitHub-style sender puts on a body, computed with
 * shared/'s signPayload, so no test spells `sha256=<hmac>` by hand.
 *
 * Using the code under test to compute what a test expects is safe here because signPayload is
 * pinned independently: GitHub's documented vector and Flux's upstream digests
 * (test/shared/contract.test.ts, test/action/request.test.ts) and the openssl CLI over the exact
 * bytes a bundle sent (test/action/e2e.test.ts) all check it without it.
 */
import { Header, signPayload, type SignatureAlgorithm } from "../../shared";

/** The receiver types whose senders sign the body with HMAC. */
export type SignedType = "github" | "bitbucket" | "generic-hmac" | "nexus";

/** `<algorithm>=<hex>` of `body` under `key`: the value of X-Hub-Signature(-256) or X-Signature. */
export function signature(
  key: string | Uint8Array,
  body: string | Uint8Array,
  algorithm: SignatureAlgorithm = "sha256",
): string {
  return signPayload(algorithm, key, body);
}

/** Nexus' X-Nexus-Webhook-Signature of `body` under `key`: the bare hex of its HMAC-SHA1, no prefix. */
export function nexusSignature(key: string | Uint8Array, body: string | Uint8Array): string {
  return signature(key, body, "sha1").slice("sha1=".length);
}

/**
 * The signature headers a sender of `type` sets: GitHub sends sha256 and its sha1 fallback,
 * Bitbucket Server X-Hub-Signature-256, a generic-hmac sender X-Signature, Nexus its own.
 */
export function signatureHeaders(
  type: SignedType,
  key: string | Uint8Array,
  body: string | Uint8Array,
): Record<string, string> {
  switch (type) {
    case "github":
      return { [Header.hubSignature256]: signature(key, body), [Header.hubSignature]: signature(key, body, "sha1") };
    case "bitbucket":
      return { [Header.hubSignature256]: signature(key, body) };
    case "generic-hmac":
      return { [Header.signature]: signature(key, body) };
    case "nexus":
      return { [Header.nexusSignature]: nexusSignature(key, body) };
  }
}

/**
 * What GitHub sends with `body`: JSON, the event (push unless said), X-Hub-Signature-256 (the
 * signature Flux checks), and X-GitHub-Delivery when an id is given.
 */
export function githubHeaders(
  key: string | Uint8Array,
  body: string | Uint8Array,
  options: { readonly event?: string; readonly delivery?: string } = {},
): Record<string, string> {
  return {
    [Header.contentType]: "application/json",
    [Header.githubEvent]: options.event ?? "push",
    ...(options.delivery === undefined ? {} : { [Header.githubDelivery]: options.delivery }),
    [Header.hubSignature256]: signature(key, body),
  };
}

/** Headers with lowercase names, as a server reads them: to compare with what a receiver got. */
export function lowercaseNames(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}
