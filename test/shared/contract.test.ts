import { describe, expect, test } from "bun:test";
import { parseSignatureHeader, secretsEqual, signPayload, verifySignature, webhookPath } from "../../shared";

const enc = (s: string) => new TextEncoder().encode(s);

describe("webhookPath", () => {
  // Vectors from the compatibility spec, checked there with `printf '%s' … | sha256sum`.
  test.each([
    ["token", "test-receiver", "default", "/hook/c0546ea4a2a81aacb29ba4f488ccf72a588f481b7418f33a1747e7c8a0991eec"],
    [
      "test-token",
      "github-receiver",
      "flux-system",
      "/hook/df3ebadde655d58cd8236886baaaca95ff9c420f4c89e11a5d91965baa0cdf0f",
    ],
    ["", "test-receiver", "default", "/hook/a638442de95a7c73f5613251a69ca664c3f3aeb99743a6ea6385afcedbf13253"],
  ])("token %p name %p namespace %p", (token, name, ns, path) => {
    expect(webhookPath(token, name, ns)).toBe(path);
    expect(webhookPath(enc(token), name, ns)).toBe(path);
  });
});

describe("signatures", () => {
  test("GitHub's documented test vector", () => {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    expect(signPayload("sha256", "It's a Secret to Everybody", "Hello, World!")).toBe(
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
  });

  test("the spec's upstream digests", () => {
    expect(signPayload("sha256", "token", '{"action":"push"}')).toBe(
      "sha256=83eee066cf716dd10bc327e341a581ae657bf26d8815c9334434f470c12d3079",
    );
    expect(signPayload("sha1", "token", '{"action":"push"}')).toBe("sha1=0a23fffb3dd66539440cf881ae6fdfbc8ccae4a9");
    expect(signPayload("sha256", "token", "null")).toBe(
      "sha256=f1a29da1cd8d6993f4462ecc1de5317dd8955e14b9c39c2ab56d6e042e58b163",
    );
  });

  const body = enc('{"action":"push"}');
  const good256 = signPayload("sha256", "token", body);
  test.each([
    ["sha256 lowercase", good256, { ok: true, algorithm: "sha256" }],
    ["sha256 uppercase hex", `sha256=${good256.slice(7).toUpperCase()}`, { ok: true, algorithm: "sha256" }],
    ["sha1", signPayload("sha1", "token", body), { ok: true, algorithm: "sha1" }],
    ["sha512", signPayload("sha512", "token", body), { ok: true, algorithm: "sha512" }],
    ["missing", null, { ok: false, reason: "missing signature" }],
    ["empty", "", { ok: false, reason: "missing signature" }],
    ["no equals sign", "sha256", { ok: false, reason: "malformed signature header" }],
    ["uppercase algorithm", `SHA256=${good256.slice(7)}`, { ok: false, reason: "unknown hash type prefix" }],
    ["md5", "md5=00", { ok: false, reason: "unknown hash type prefix" }],
    ["odd hex", good256.slice(0, -1), { ok: false, reason: "malformed signature header" }],
    ["non-hex", `${good256.slice(0, -2)}zz`, { ok: false, reason: "malformed signature header" }],
    ["truncated digest", good256.slice(0, -2), { ok: false, reason: "signature mismatch" }],
    ["wrong key", signPayload("sha256", "other", body), { ok: false, reason: "signature mismatch" }],
    ["empty digest", "sha256=", { ok: false, reason: "signature mismatch" }],
  ] as const)("%s", (_name, header, expected) => {
    expect(verifySignature(header, "token", body)).toEqual(expected as never);
  });

  test("the signature covers the exact bytes", () => {
    const sig = signPayload("sha256", "token", '{"action":"push"}');
    expect(verifySignature(sig, "token", enc('{"action": "push"}')).ok).toBe(false);
  });

  test("parse keeps the digest bytes", () => {
    const parsed = parseSignatureHeader("sha1=0a23");
    expect(parsed.ok && [...parsed.digest]).toEqual([0x0a, 0x23]);
  });

  test("secretsEqual", () => {
    expect(secretsEqual("token", "token")).toBe(true);
    expect(secretsEqual("token", "token ")).toBe(false);
    expect(secretsEqual("", "token")).toBe(false);
  });
});
