/**
 * The signature wire format (shared/signature.ts) under generated input: the parser is total and
 * agrees with the grammar `<sha1|sha256|sha512>=<even-length hex>`, what is signed verifies under
 * either hex case, and any change to the body, the key or the header breaks it. Nothing throws,
 * whatever the header, key or body.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  parseSignatureHeader,
  secretsEqual,
  SIGNATURE_ALGORITHMS,
  signPayload,
  verifySignature,
  webhookPath,
  type SignatureAlgorithm,
} from "../../shared";
import { headerValue } from "./arbitraries";
import { params } from "./settings";

const GRAMMAR = /^(sha1|sha256|sha512)=((?:[0-9a-fA-F]{2})*)$/;
const algorithm = fc.constantFrom<SignatureAlgorithm>(...SIGNATURE_ALGORITHMS);
const key = fc.oneof(fc.string({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }));
const bodyBytes = fc.uint8Array({ maxLength: 1024 });

/** Header-shaped strings: the grammar's parts recombined, and anything at all. */
const headerLike = fc.oneof(
  fc
    .tuple(algorithm, fc.uint8Array({ maxLength: 70 }), fc.boolean())
    .map(
      ([a, d, upper]) =>
        `${a}=${upper ? Buffer.from(d).toString("hex").toUpperCase() : Buffer.from(d).toString("hex")}`,
    ),
  fc
    .tuple(
      fc.constantFrom("sha1", "sha256", "sha512", "SHA256", "sha384", "md5", "", "sha256 ", " sha256"),
      fc.constantFrom("=", "==", ":", ""),
      fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEFg= xZ-"), maxLength: 140 }),
    )
    .map(([a, s, h]) => a + s + h),
  headerValue,
  fc.string({ unit: "grapheme", maxLength: 64 }),
  fc.string({ unit: "binary", maxLength: 64 }),
);

describe("parseSignatureHeader", () => {
  test("is total and accepts exactly the grammar", () => {
    fc.assert(
      fc.property(fc.option(headerLike, { nil: undefined, freq: 20 }), (value) => {
        const parsed = parseSignatureHeader(value);
        const m = value === undefined ? null : GRAMMAR.exec(value);
        if (m) {
          expect(parsed).toEqual({
            ok: true,
            algorithm: m[1] as SignatureAlgorithm,
            digest: Buffer.from(m[2]!, "hex"),
          });
          expect(parsed.ok && parsed.digest.length * 2).toBe(m[2]!.length);
        } else {
          expect(parsed.ok).toBe(false);
          if (!parsed.ok)
            expect(["missing signature", "malformed signature header", "unknown hash type prefix"]).toContain(
              parsed.reason,
            );
        }
      }),
      params(500),
    );
  });

  test("null and the empty string are a missing signature", () => {
    for (const v of [null, undefined, ""])
      expect(parseSignatureHeader(v)).toEqual({ ok: false, reason: "missing signature" });
  });
});

describe("verifySignature", () => {
  test("what is signed verifies, in either hex case", () => {
    fc.assert(
      fc.property(algorithm, key, bodyBytes, fc.boolean(), (alg, k, body, upper) => {
        const header = signPayload(alg, k, body);
        const sent = upper ? `${alg}=${header.slice(alg.length + 1).toUpperCase()}` : header;
        expect(verifySignature(sent, k, body)).toEqual({ ok: true, algorithm: alg });
      }),
      params(300),
    );
  });

  test("a changed body, key or digest is a mismatch", () => {
    fc.assert(
      fc.property(
        algorithm,
        fc.string({ minLength: 1, maxLength: 32 }),
        bodyBytes,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom("body", "key", "digest", "truncate", "extend"),
        (alg, k, body, at, bit, change) => {
          const header = signPayload(alg, k, body);
          let h = header;
          let b = body;
          let kk = k;
          if (change === "body") {
            b = body.length === 0 ? Uint8Array.of(0) : body.slice();
            if (body.length > 0) b[at % b.length]! ^= 1 << bit;
          } else if (change === "key") kk = `${k}x`;
          else if (change === "digest") {
            const i = alg.length + 1 + (at % (header.length - alg.length - 1));
            h = header.slice(0, i) + (header[i] === "0" ? "1" : "0") + header.slice(i + 1);
          } else if (change === "truncate") h = header.slice(0, header.length - 2 * (1 + (at % 4)));
          else h = `${header}00`;
          expect(verifySignature(h, kk, b)).toEqual({ ok: false, reason: "signature mismatch" });
        },
      ),
      params(300),
    );
  });

  test("never throws, whatever the header, key and body", () => {
    fc.assert(
      fc.property(fc.option(headerLike, { nil: null }), key, bodyBytes, (h, k, body) => {
        const r = verifySignature(h, k, body);
        expect(typeof r.ok).toBe("boolean");
        if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
      }),
      params(300),
    );
  });
});

describe("secretsEqual", () => {
  test("is string equality, over strings and bytes", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), fc.boolean(), (a, b, same) => {
        const other = same ? a : b;
        expect(secretsEqual(a, other)).toBe(a === other);
        expect(secretsEqual(Buffer.from(a), Buffer.from(other))).toBe(Buffer.from(a).equals(Buffer.from(other)));
      }),
      params(300),
    );
  });
});

test("webhookPath is /hook/ and 64 lowercase hex digits for any token, name and namespace", () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.string(), (token, name, namespace) => {
      expect(webhookPath(token, name, namespace)).toMatch(/^\/hook\/[0-9a-f]{64}$/);
    }),
    params(200),
  );
});
