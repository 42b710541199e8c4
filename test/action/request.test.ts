import { describe, expect, test } from "bun:test";
import {
  buildRequest,
  buildStatusQuery,
  checkPayload,
  encodeBody,
  hookId,
  isCredentialHeader,
  reservedHeaderNames,
  MAX_PAYLOAD_BYTES,
  redactHeaders,
  type RequestSettings,
} from "../../action/request";
import { opensslSignature } from "./harness";
import type { SupportedReceiverType } from "../../action/vocabulary";

const enc = (s: string) => new TextEncoder().encode(s);
const UA = "GitHub-Hookshot/044aadd";
const SETTINGS: RequestSettings = {
  url: "https://h.example/hook/d",
  credential: "token",
  receiverType: "github",
  event: "push",
  contentType: "json",
  repositoryId: "42",
  hookId: "123456789",
  userAgent: UA,
  enterprise: undefined,
  extraHeaders: [],
};
const ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

describe("buildRequest", () => {
  const body = enc('{"action":"push"}');
  // Digests from Flux's upstream tests (openssl and python agree): sha256/sha1 of {"action":"push"} under "token".
  const SHA256 = "sha256=83eee066cf716dd10bc327e341a581ae657bf26d8815c9334434f470c12d3079";
  const SHA1 = "sha1=0a23fffb3dd66539440cf881ae6fdfbc8ccae4a9";
  const common = {
    "Content-Type": "application/json",
    "User-Agent": UA,
    "X-GitHub-Delivery": ID,
    "X-GitHub-Event": "push",
    "X-GitHub-Hook-ID": "123456789",
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
    { type: "generic-oidc", auth: { Authorization: "Bearer token" } },
  ])("$type", ({ type, auth }) => {
    const req = buildRequest({ ...SETTINGS, receiverType: type }, body, ID);
    expect(req).toEqual({ method: "POST", url: SETTINGS.url, headers: { ...common, ...auth }, body });
  });

  test("GitHub Enterprise Server: host and version headers", () => {
    const req = buildRequest({ ...SETTINGS, enterprise: { host: "ghes.corp.internal", version: "3.17.2" } }, body, ID);
    expect(req.headers).toMatchObject({
      "X-GitHub-Enterprise-Host": "ghes.corp.internal",
      "X-GitHub-Enterprise-Version": "3.17.2",
    });
    const noVersion = buildRequest(
      { ...SETTINGS, enterprise: { host: "ghes.corp.internal", version: undefined } },
      body,
      ID,
    );
    expect(Object.keys(noVersion.headers)).not.toContain("X-GitHub-Enterprise-Version");
  });

  test("extra headers come last, after the signature", () => {
    const req = buildRequest({ ...SETTINGS, extraHeaders: [["CF-Access-Client-Id", "id.access"]] }, body, ID);
    expect(Object.entries(req.headers).at(-1)).toEqual(["CF-Access-Client-Id", "id.access"]);
  });

  test("hook ids: stable per receiver, different between receivers, nine digits", () => {
    expect(hookId("apps/a at https://h/hook/***")).toBe(hookId("apps/a at https://h/hook/***"));
    expect(hookId("apps/a at https://h/hook/***")).not.toBe(hookId("apps/b at https://h/hook/***"));
    expect(hookId("x")).toMatch(/^[1-9]\d{8}$/);
  });

  test("reserved names: what the type sets, plus framing", () => {
    expect(reservedHeaderNames("github")).toEqual(
      expect.arrayContaining(["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery", "User-Agent", "Host"]),
    );
    expect(reservedHeaderNames("github")).not.toContain("Authorization");
    expect(reservedHeaderNames("harbor")).toContain("Authorization");
    expect(reservedHeaderNames("generic-oidc")).toContain("Authorization");
    expect(reservedHeaderNames("gitlab")).toEqual(expect.arrayContaining(["X-Gitlab-Token", "X-Gitlab-Event-UUID"]));
  });

  test.each([
    ["Authorization", true],
    ["cookie", true],
    ["CF-Access-Client-Secret", true],
    ["X-Api-Key", true],
    ["X-Auth-Token", true],
    ["CF-Access-Client-Id", false],
    ["X-Tenant", false],
  ])("credential header %s: %p", (name, credential) => {
    expect(isCredentialHeader(name)).toBe(credential);
  });

  test("no repository id, no installation target headers", () => {
    const req = buildRequest({ ...SETTINGS, repositoryId: undefined }, body, ID);
    expect(Object.keys(req.headers)).not.toContain("X-GitHub-Hook-Installation-Target-Type");
  });

  test("the body is the payload's exact bytes, whitespace and escapes included", () => {
    const payload = enc('{\n  "message": "caf\u00e9 \\u00e9 \u2615",\n  "n": 1.0\n}\n');
    const req = buildRequest(SETTINGS, payload, ID);
    expect(req.body).toBe(payload);
  });

  test("GitHub's documented test vector, checked with openssl", () => {
    const payload = enc("Hello, World!");
    const req = buildRequest({ ...SETTINGS, credential: "It's a Secret to Everybody" }, payload, ID);
    const expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    expect(req.headers["X-Hub-Signature-256"]).toBe(expected);
    expect(opensslSignature("sha256", "It's a Secret to Everybody", payload)).toBe(expected);
  });

  test("form: signed over the whole form body, checked with openssl", () => {
    const payload = enc('{"ref":"refs/heads/main","message":"a b&c=d é"}');
    const req = buildRequest({ ...SETTINGS, contentType: "form" }, payload, ID);
    expect(req.headers["Content-Type"]).toBe("application/x-www-form-urlencoded");
    const text = new TextDecoder().decode(req.body);
    expect(text).toBe("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22message%22%3A%22a+b%26c%3Dd+%C3%A9%22%7D");
    expect(req.headers["X-Hub-Signature-256"]).toBe(opensslSignature("sha256", "token", req.body));
  });
});

describe("buildStatusQuery", () => {
  const target = {
    kind: "GitRepository",
    namespace: "flux-system",
    name: "webapp",
    requestedAt: "2026-12-01T22:54:27.123456789Z",
  };
  const QUERY = `{"targets":[${JSON.stringify(target)}]}`;
  // Computed with the openssl CLI, independently of shared/: the query key is HMAC-SHA256 of
  // "fluxhook status query v1" under "token" (e7dcca3d…), and each signature HMAC-SHA256 of QUERY under it.
  const QUERY_SHA256 = "sha256=b8a387b9e897d690c9fff2d1e44f7b5c4fc34967673ffb0e1aaf37f6d62ac4bd";
  const common = { "Content-Type": "application/json", "User-Agent": UA };
  test.each<{ type: SupportedReceiverType; auth: Record<string, string> }>([
    { type: "github", auth: { "X-Hub-Signature-256": QUERY_SHA256 } },
    { type: "generic-hmac", auth: { "X-Signature": QUERY_SHA256 } },
    { type: "bitbucket", auth: { "X-Hub-Signature-256": QUERY_SHA256, "X-Event-Key": "push", "X-Request-UUID": ID } },
    // The token's own header carries the query's HMAC, never the token: a captured query is no delivery.
    { type: "gitlab", auth: { "X-Gitlab-Token": QUERY_SHA256, "X-Gitlab-Event": "push", "X-Gitlab-Event-UUID": ID } },
    { type: "harbor", auth: { Authorization: QUERY_SHA256 } },
    { type: "generic", auth: {} },
    { type: "generic-oidc", auth: { Authorization: "Bearer token" } },
  ])("$type", ({ type, auth }) => {
    const query = buildStatusQuery({ ...SETTINGS, receiverType: type }, [target], ID);
    expect(new TextDecoder().decode(query.body)).toBe(QUERY);
    expect(query.url).toBe(`${SETTINGS.url}/status`);
    const headers = { ...query.headers };
    if (type === "github") delete headers["X-Hub-Signature"]; // its sha1 fallback, under the same key
    expect(headers).toEqual({ ...common, ...auth });
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
    const req = buildRequest({ ...SETTINGS, receiverType: "github" }, enc("{}"), ID);
    expect(redactHeaders({ ...req.headers, "x-gitlab-token": "t", Authorization: "t" })).toEqual({
      "Content-Type": "application/json",
      "User-Agent": UA,
      "X-GitHub-Delivery": ID,
      "X-GitHub-Event": "push",
      "X-GitHub-Hook-ID": "123456789",
      "X-GitHub-Hook-Installation-Target-Type": "repository",
      "X-GitHub-Hook-Installation-Target-ID": "42",
      "X-Hub-Signature-256": "sha256=<redacted>",
      "X-Hub-Signature": "sha1=<redacted>",
      "x-gitlab-token": "<redacted>",
      Authorization: "<redacted>",
    });
  });

  test("a bearer token and credential-looking extra headers are redacted too", () => {
    expect(
      redactHeaders({ Authorization: "Bearer eyJ.x.y", "CF-Access-Client-Secret": "s3", "CF-Access-Client-Id": "id" }),
    ).toEqual({
      Authorization: "Bearer <redacted>",
      "CF-Access-Client-Secret": "<redacted>",
      "CF-Access-Client-Id": "id",
    });
  });
});
