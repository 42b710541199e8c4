import { describe, expect, test } from "bun:test";
import type { SupportedReceiverType } from "../../action/inputs";
import {
  buildRequest,
  checkPayload,
  encodeBody,
  MAX_PAYLOAD_BYTES,
  redactHeaders,
  type RequestSettings,
} from "../../action/request";
import { opensslHmac } from "./harness";

const enc = (s: string) => new TextEncoder().encode(s);
const SETTINGS: RequestSettings = {
  url: "https://h.example/hook/d",
  token: "token",
  receiverType: "github",
  event: "push",
  contentType: "json",
  repositoryId: "42",
};
const ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const UA = "fluxhook-action/1.2.3";

describe("buildRequest", () => {
  const body = enc('{"action":"push"}');
  // Digests from Flux's upstream tests (openssl and python agree): sha256/sha1 of {"action":"push"} under "token".
  const SHA256 = "sha256=83eee066cf716dd10bc327e341a581ae657bf26d8815c9334434f470c12d3079";
  const SHA1 = "sha1=0a23fffb3dd66539440cf881ae6fdfbc8ccae4a9";
  const common = {
    "Content-Type": "application/json",
    "User-Agent": UA,
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": ID,
    "X-GitHub-Hook-Installation-Target-Type": "repository",
    "X-GitHub-Hook-Installation-Target-ID": "42",
  };
  test.each<{ type: SupportedReceiverType; auth: Record<string, string> }>([
    { type: "github", auth: { "X-Hub-Signature-256": SHA256, "X-Hub-Signature": SHA1 } },
    { type: "generic-hmac", auth: { "X-Signature": SHA256 } },
    { type: "gitlab", auth: { "X-Gitlab-Token": "token", "X-Gitlab-Event": "push", "X-Gitlab-Event-UUID": ID } },
    { type: "bitbucket", auth: { "X-Hub-Signature-256": SHA256, "X-Event-Key": "push", "X-Request-UUID": ID } },
    { type: "harbor", auth: { Authorization: "token" } },
    { type: "generic", auth: {} },
  ])("$type", ({ type, auth }) => {
    const req = buildRequest({ ...SETTINGS, receiverType: type }, body, ID, UA);
    expect(req).toEqual({ method: "POST", url: SETTINGS.url, headers: { ...common, ...auth }, body });
  });

  test("no repository id, no installation target headers", () => {
    const req = buildRequest({ ...SETTINGS, repositoryId: undefined }, body, ID, UA);
    expect(Object.keys(req.headers)).not.toContain("X-GitHub-Hook-Installation-Target-Type");
  });

  test("the body is the payload's exact bytes, whitespace and escapes included", () => {
    const payload = enc('{\n  "message": "caf\u00e9 \\u00e9 \u2615",\n  "n": 1.0\n}\n');
    const req = buildRequest(SETTINGS, payload, ID, UA);
    expect(req.body).toBe(payload);
  });

  test("GitHub's documented test vector, checked with openssl", () => {
    const payload = enc("Hello, World!");
    const req = buildRequest({ ...SETTINGS, token: "It's a Secret to Everybody" }, payload, ID, UA);
    const expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    expect(req.headers["X-Hub-Signature-256"]).toBe(`sha256=${expected}`);
    expect(opensslHmac("sha256", "It's a Secret to Everybody", payload)).toBe(expected);
  });

  test("form: signed over the whole form body, checked with openssl", () => {
    const payload = enc('{"ref":"refs/heads/main","message":"a b&c=d é"}');
    const req = buildRequest({ ...SETTINGS, contentType: "form" }, payload, ID, UA);
    expect(req.headers["Content-Type"]).toBe("application/x-www-form-urlencoded");
    const text = new TextDecoder().decode(req.body);
    expect(text).toBe("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22message%22%3A%22a+b%26c%3Dd+%C3%A9%22%7D");
    expect(req.headers["X-Hub-Signature-256"]).toBe(`sha256=${opensslHmac("sha256", "token", req.body)}`);
  });
});

describe("encodeBody", () => {
  test.each([
    ["json keeps the bytes", "json", '{"a":"b c"}', '{"a":"b c"}'],
    ["form wraps in payload=", "form", '{"a":"b c"}', "payload=%7B%22a%22%3A%22b+c%22%7D"],
  ] as const)("%s", (_name, type, payload, body) => {
    expect(new TextDecoder().decode(encodeBody(enc(payload), type))).toBe(body);
  });
});

describe("checkPayload", () => {
  test.each([
    ["an object", enc('{"a":1}'), { ok: true }],
    ["null", enc("null"), { ok: true }],
    ["with a BOM-free trailing newline", enc('{"a":1}\n'), { ok: true }],
    ["empty", enc(""), { ok: false, reason: "the payload is empty" }],
    ["not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), { ok: false, reason: "the payload is not valid UTF-8" }],
    [
      "too large",
      new Uint8Array(MAX_PAYLOAD_BYTES + 1),
      { ok: false, reason: `the payload is larger than ${MAX_PAYLOAD_BYTES} bytes` },
    ],
  ] as const)("%s", (_name, bytes, expected) => {
    expect(checkPayload(bytes)).toEqual(expected as never);
  });

  test("not JSON", () => {
    const result = checkPayload(enc("{a:1}"));
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.reason).toStartWith("the payload is not valid JSON");
  });
});

describe("redactHeaders", () => {
  test("token-derived values go, names and algorithms stay", () => {
    const req = buildRequest({ ...SETTINGS, receiverType: "github" }, enc("{}"), ID, UA);
    expect(redactHeaders({ ...req.headers, "x-gitlab-token": "t", Authorization: "t" })).toEqual({
      "Content-Type": "application/json",
      "User-Agent": UA,
      "X-GitHub-Event": "push",
      "X-GitHub-Delivery": ID,
      "X-GitHub-Hook-Installation-Target-Type": "repository",
      "X-GitHub-Hook-Installation-Target-ID": "42",
      "X-Hub-Signature-256": "sha256=<redacted>",
      "X-Hub-Signature": "sha1=<redacted>",
      "x-gitlab-token": "<redacted>",
      Authorization: "<redacted>",
    });
  });
});
