/**
 * @module shared/signature
 * HMAC signatures with GitHub's (and go-github's) semantics, used by the action to sign and by the
 * server to verify, so both sides share one definition of the wire format:
 *
 * - the header value is `<algo>=<hex>`, split on the first `=`;
 * - `algo` is exactly `sha1`, `sha256` or `sha512`; the hex part may be in either case;
 * - the HMAC covers the exact raw body bytes (never a re-serialisation);
 * - comparison is constant-time, after a length check (the expected length is public: it only
 *   depends on the algorithm).
 *
 * Expected failures are values (`{ ok: false, reason }`), never exceptions.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_ALGORITHMS = ["sha1", "sha256", "sha512"] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** Why a signature was refused. Safe to show to the sender: none of them carries a secret. */
export const SignatureFailure = {
  missing: "missing signature",
  malformed: "malformed signature header",
  unknownAlgorithm: "unknown hash type prefix",
  mismatch: "signature mismatch",
} as const;
export type SignatureFailure = (typeof SignatureFailure)[keyof typeof SignatureFailure];

export type SignatureCheck = { ok: true; algorithm: SignatureAlgorithm } | { ok: false; reason: SignatureFailure };

export type ParsedSignature =
  | { ok: true; algorithm: SignatureAlgorithm; digest: Buffer }
  | { ok: false; reason: SignatureFailure };

const HEX = /^[0-9a-fA-F]*$/;

/** Lowercase hex HMAC of `body` under `key`. */
export function hmacHex(algorithm: SignatureAlgorithm, key: string | Uint8Array, body: string | Uint8Array): string {
  return createHmac(algorithm, key).update(body).digest("hex");
}

/** The header value GitHub would send for this body: `<algo>=<lowercase hex>`. */
export function signPayload(
  algorithm: SignatureAlgorithm,
  key: string | Uint8Array,
  body: string | Uint8Array,
): string {
  return `${algorithm}=${hmacHex(algorithm, key, body)}`;
}

function isAlgorithm(value: string): value is SignatureAlgorithm {
  return (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}

/** Parses `<algo>=<hex>` without judging the digest. */
export function parseSignatureHeader(value: string | null | undefined): ParsedSignature {
  if (value === null || value === undefined || value === "") return { ok: false, reason: SignatureFailure.missing };
  const eq = value.indexOf("=");
  if (eq < 0) return { ok: false, reason: SignatureFailure.malformed };
  const algorithm = value.slice(0, eq);
  const hex = value.slice(eq + 1);
  if (!isAlgorithm(algorithm)) return { ok: false, reason: SignatureFailure.unknownAlgorithm };
  // An odd length or a non-hex character cannot match any digest; refuse it before decoding,
  // since Buffer.from(hex) silently stops at the first bad character.
  if (hex.length % 2 !== 0 || !HEX.test(hex)) return { ok: false, reason: SignatureFailure.malformed };
  return { ok: true, algorithm, digest: Buffer.from(hex, "hex") };
}

/**
 * Verifies a `<algo>=<hex>` header against the raw body. The digest comparison is constant-time
 * (timingSafeEqual), so a sender cannot learn the expected HMAC byte by byte from response times.
 */
export function verifySignature(
  header: string | null | undefined,
  key: string | Uint8Array,
  body: Uint8Array,
  algorithms: readonly SignatureAlgorithm[] = SIGNATURE_ALGORITHMS,
): SignatureCheck {
  const parsed = parseSignatureHeader(header);
  if (!parsed.ok) return parsed;
  if (!algorithms.includes(parsed.algorithm)) return { ok: false, reason: SignatureFailure.unknownAlgorithm };
  const expected = createHmac(parsed.algorithm, key).update(body).digest();
  // timingSafeEqual throws on different lengths; the length of a digest is public (it depends
  // only on the algorithm), so checking it first leaks nothing.
  if (parsed.digest.length !== expected.length || !timingSafeEqual(parsed.digest, expected)) {
    return { ok: false, reason: SignatureFailure.mismatch };
  }
  return { ok: true, algorithm: parsed.algorithm };
}

/**
 * Constant-time equality for shared secrets sent in clear (GitLab's X-Gitlab-Token, Harbor's
 * Authorization). Both sides are hashed first so the comparison runs over equal lengths and does
 * not reveal the secret's length either.
 */
export function secretsEqual(received: string | Uint8Array, expected: string | Uint8Array): boolean {
  const a = createHash("sha256").update(received).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}
