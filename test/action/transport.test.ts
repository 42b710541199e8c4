import { describe, expect, test } from "bun:test";
import { createServer as createNetServer } from "node:net";
import { rootCertificates } from "node:tls";
import {
  classifyError,
  createTransport,
  isLoopback,
  matchesNoProxy,
  selectProxy,
  trustAnchors,
} from "../../action/transport";
import { startReceiver } from "./harness";
import type { ProxySettings } from "../../action/vocabulary";

describe("matchesNoProxy", () => {
  test.each([
    // [host, port, NO_PROXY, bypass]
    ["flux.corp.internal", 443, "", false],
    ["flux.corp.internal", 443, "*", true],
    ["flux.corp.internal", 443, "flux.corp.internal", true],
    ["FLUX.Corp.Internal", 443, "flux.corp.internal", true],
    ["flux.corp.internal", 443, "corp.internal", true],
    ["flux.corp.internal", 443, ".corp.internal", true],
    ["corp.internal", 443, ".corp.internal", true],
    ["flux.corp.internal", 443, "*.corp.internal", true],
    ["flux.corp.internal.", 443, "corp.internal", true],
    ["evilcorp.internal", 443, "corp.internal", false],
    ["flux.corp.internal", 443, "other.example, corp.internal", true],
    ["flux.corp.internal", 443, "other.example corp.internal", true],
    ["flux.corp.internal", 443, " , ,other.example", false],
    ["flux.corp.internal", 8443, "flux.corp.internal:8443", true],
    ["flux.corp.internal", 443, "flux.corp.internal:8443", false],
    ["10.1.2.3", 80, "10.1.2.3", true],
    ["10.1.2.3", 80, "10.1.2.4", false],
    ["10.1.2.3", 80, "10.0.0.0/8", true],
    ["10.1.2.3", 80, "10.0.0.0/16", false],
    ["192.168.5.6", 9292, "172.16.0.0/12,192.168.0.0/16:9292", true],
    ["192.168.5.6", 80, "192.168.0.0/16:9292", false],
    ["fd00::5", 443, "fd00::/8", true],
    ["[fd00::5]", 443, "fd00::5", true],
    ["[fd00::5]", 443, "[fd00::5]:443", true],
    ["10.1.2.3", 80, "1.2.3", false],
    ["flux.corp.internal", 443, "10.0.0.0/8", false], // CIDR never matches a name (no DNS lookup)
    ["10.1.2.3", 80, "not-a-cidr/8", false],
  ])("%s:%i with NO_PROXY=%p → %p", (host, port, noProxy, bypass) => {
    expect(matchesNoProxy(host, port, noProxy)).toBe(bypass);
  });
});

describe("isLoopback", () => {
  test.each([
    ["localhost", true],
    ["LOCALHOST", true],
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["[::1]", true],
    ["10.0.0.1", false],
    ["localhost.example", false],
    // A resolver may send these to DNS, which may answer with any address: not this runner.
    ["api.localhost", false],
    ["localhost.", false],
  ])("%s → %p", (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});

describe("selectProxy", () => {
  const proxies: ProxySettings = {
    httpsProxy: "http://secure-proxy:3128",
    httpProxy: "plain-proxy:8080",
    noProxy: ".corp.internal",
  };
  test.each([
    ["https://flux.example", proxies, { kind: "proxy", proxy: "http://secure-proxy:3128/", variable: "HTTPS_PROXY" }],
    // no scheme: http:// assumed
    ["http://flux.example", proxies, { kind: "proxy", proxy: "http://plain-proxy:8080/", variable: "HTTP_PROXY" }],
    ["https://flux.corp.internal", proxies, { kind: "direct", why: "NO_PROXY" }],
    ["https://127.0.0.1:9292", proxies, { kind: "direct", why: "loopback" }],
    ["http://localhost:9292", proxies, { kind: "direct", why: "loopback" }],
    // Only localhost itself: a name below it may resolve beyond the runner, where the proxy is the way.
    ["https://flux.localhost", proxies, { kind: "proxy", proxy: "http://secure-proxy:3128/", variable: "HTTPS_PROXY" }],
    ["https://flux.example", { ...proxies, httpsProxy: undefined }, { kind: "direct", why: "no proxy set" }], // no fallback to HTTP_PROXY
    [
      "https://flux.example",
      { ...proxies, httpsProxy: "socks5://p:1080" },
      { kind: "invalid", variable: "HTTPS_PROXY" },
    ],
    ["https://flux.example", { ...proxies, httpsProxy: "http://[bad" }, { kind: "invalid", variable: "HTTPS_PROXY" }],
  ] as const)("%s", (url, settings, expected) => {
    const d = selectProxy(new URL(url), settings);
    expect(d.kind === "proxy" ? { ...d, proxy: d.proxy.href } : d).toEqual(expected as never);
  });
});

describe("classifyError", () => {
  const err = (props: Record<string, unknown>, message = "boom") => Object.assign(new Error(message), props);
  test.each([
    ["refused", err({ code: "ECONNREFUSED" }), { category: "refused", code: "ECONNREFUSED", retryable: true }],
    // Node 20's happy eyeballs: an AggregateError with the code on its members
    [
      "aggregate refused",
      new AggregateError([err({ code: "ECONNREFUSED" })], ""),
      { category: "refused", code: "ECONNREFUSED", retryable: true },
    ],
    [
      "undici wrapping a cause",
      err({ cause: err({ code: "ENOTFOUND" }) }, "fetch failed"),
      { category: "dns", code: "ENOTFOUND", retryable: true },
    ],
    [
      "our timeout",
      new DOMException("The operation was aborted due to timeout", "TimeoutError"),
      { category: "timeout", code: "TimeoutError", retryable: true },
    ],
    [
      "connect timeout",
      err({ code: "UND_ERR_CONNECT_TIMEOUT" }),
      { category: "timeout", code: "UND_ERR_CONNECT_TIMEOUT", retryable: true },
    ],
    ["reset", err({ code: "ECONNRESET" }), { category: "reset", code: "ECONNRESET", retryable: true }],
    ["socket closed", err({ code: "UND_ERR_SOCKET" }), { category: "reset", code: "UND_ERR_SOCKET", retryable: true }],
    [
      "self-signed",
      err({ code: "SELF_SIGNED_CERT_IN_CHAIN" }),
      { category: "tls-verify", code: "SELF_SIGNED_CERT_IN_CHAIN", retryable: false },
    ],
    [
      "wrong name",
      err({ code: "ERR_TLS_CERT_ALTNAME_INVALID" }),
      { category: "tls-verify", code: "ERR_TLS_CERT_ALTNAME_INVALID", retryable: false },
    ],
    [
      "client cert required",
      err({ code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" }),
      { category: "tls", code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", retryable: false },
    ],
    ["https to http port", err({ code: "EPROTO" }), { category: "tls", code: "EPROTO", retryable: false }],
    [
      "proxy 407",
      err({ code: "UND_ERR_ABORTED" }, "Proxy response (407) !== 200 when HTTP Tunneling"),
      { category: "proxy", code: "PROXY_407", retryable: false },
    ],
    [
      "proxy 502",
      err({ code: "UND_ERR_ABORTED" }, "Proxy response (502) !== 200 when HTTP Tunneling"),
      { category: "proxy", code: "PROXY_502", retryable: true },
    ],
    [
      "unknown",
      err({ code: "UND_ERR_INVALID_ARG" }),
      { category: "other", code: "UND_ERR_INVALID_ARG", retryable: false },
    ],
    ["not an Error", "weird", { category: "other", code: "UNKNOWN", retryable: false }],
  ] as const)("%s", (_name, error, expected) => {
    const { category, code, retryable } = classifyError(error);
    expect({ category, code, retryable }).toEqual(expected);
  });
});

describe("trustAnchors", () => {
  const EXTRA = "-----BEGIN CERTIFICATE-----\nextra\n-----END CERTIFICATE-----\n";
  test("no extra CA: Node's defaults stay in charge", () => {
    expect(trustAnchors([], "ignored")).toBeUndefined();
  });
  test("extra CAs are added to the default roots, not replacing them", () => {
    const ca = trustAnchors([EXTRA], undefined) ?? [];
    expect(ca.at(-1)).toBe(EXTRA);
    expect(ca).toEqual(expect.arrayContaining([...rootCertificates]));
  });
});

const TRANSPORT_OPTIONS = {
  extraCa: [],
  nodeExtraCaPem: undefined,
  clientCert: undefined,
  clientKey: undefined,
  insecureSkipVerify: false,
  timeoutMs: 2_000,
};

describe("an answer's end: read whole, bounded, or cut short", () => {
  const send = async (respond: () => Response, maxBodyBytes: number, timeoutMs = 500) => {
    await using receiver = startReceiver({ respond });
    const transport = createTransport({ kind: "direct", why: "no proxy set" }, { ...TRANSPORT_OPTIONS, timeoutMs });
    try {
      const body = new TextEncoder().encode("{}");
      return await transport.send(
        { method: "POST", url: `${receiver.url}/hook/x`, headers: {}, body },
        timeoutMs,
        maxBodyBytes,
      );
    } finally {
      await transport.close();
    }
  };
  const stream = (first: string, then: (body: ReadableStreamDefaultController<Uint8Array>) => Promise<void>) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start: async (body) => {
          body.enqueue(new TextEncoder().encode(first));
          await then(body);
        },
      }),
    );

  test("read whole", async () => {
    expect(await send(() => new Response("0123456789"), 64)).toMatchObject({
      body: "0123456789",
      bodyTruncated: false,
    });
  });

  test("longer than the read's bound: truncated, not cut", async () => {
    const result = await send(() => new Response("x".repeat(1000)), 64);
    expect(result).toMatchObject({ kind: "response", status: 200, bodyTruncated: true, bodyBytes: 1000 });
    expect(result).not.toHaveProperty("bodyCut");
  });

  test("a body that stalls past the timeout: cut", async () => {
    const result = await send(() => stream("{", () => Bun.sleep(2_000)), 64, 300);
    expect(result).toMatchObject({ kind: "response", status: 200, body: "{", bodyTruncated: true, bodyCut: true });
  });

  test("a body whose connection is reset after its first byte: cut", async () => {
    // A raw socket: the status line and headers promise 100 bytes, one comes, then the connection ends.
    const server = createNetServer((socket) =>
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", () => socket.resetAndDestroy());
      }),
    );
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const port = (server.address() as { port: number }).port;
    const transport = createTransport({ kind: "direct", why: "no proxy set" }, TRANSPORT_OPTIONS);
    try {
      const body = new TextEncoder().encode("{}");
      const result = await transport.send(
        { method: "POST", url: `http://127.0.0.1:${port}/hook/x`, headers: {}, body },
        2_000,
        64,
      );
      expect(result).toMatchObject({
        kind: "response",
        status: 200,
        body: "{",
        bodyTruncated: true,
        bodyCut: true,
        bodyBytes: 100,
      });
    } finally {
      await transport.close();
      await new Promise<void>((ok) => server.close(() => ok()));
    }
  });
});
