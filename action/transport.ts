/**
 * @module action/transport
 * One HTTP POST over the network path a private receiver needs: an HTTP(S) proxy from the
 * runner's environment (with `NO_PROXY`), extra trust anchors, a client certificate, or (warned
 * about by the caller) no verification at all. undici does the protocol work (CONNECT tunnelling,
 * TLS); this module decides which dispatcher to use and turns every outcome into a value.
 *
 * Pure helpers (`selectProxy`, `matchesNoProxy`, `classifyError`, `trustAnchors`) are exported for
 * table-driven tests; `createTransport` is the only part that touches the network.
 */
import { BlockList, isIP } from "node:net";
import * as tls from "node:tls";
// The package's own file: Bun (which runs `fluxhook send` in the image) answers a bare "undici"
// with a built-in stand-in that has no Agent or ProxyAgent, so TLS options and proxies would go.
import { Agent, ProxyAgent, request, type Dispatcher } from "undici/index.js";
import type { ErrorCategory, NetworkError, ProxySettings, Send } from "./vocabulary";

/**
 * Enough of a receiver's answer to report it (the log and the `response` output show 4 KiB of it);
 * the rest is discarded unread. Reads that need a whole answer (wait-for) pass their own bound.
 */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface Transport {
  /** Sends once, never following redirects (vocabulary.ts `Send`). */
  readonly send: Send;
  close(): Promise<void>;
}

/** The TLS files' contents, read before anything is sent (preflight.ts). */
export interface TlsMaterial {
  /** Extra PEM trust anchors, added to the default ones. */
  readonly extraCa: readonly string[];
  /** The PEM file named by NODE_EXTRA_CA_CERTS, for Node versions that cannot list it themselves. */
  readonly nodeExtraCaPem: string | undefined;
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
}

export interface TransportOptions extends TlsMaterial {
  readonly insecureSkipVerify: boolean;
  readonly timeoutMs: number;
}

// ---------------------------------------------------------------------------------------------
// Proxy selection

export type ProxyDecision =
  | { readonly kind: "direct"; readonly why: "no proxy set" | "NO_PROXY" | "loopback" }
  | { readonly kind: "proxy"; readonly proxy: URL; readonly variable: "HTTPS_PROXY" | "HTTP_PROXY" }
  | { readonly kind: "invalid"; readonly variable: "HTTPS_PROXY" | "HTTP_PROXY" };

/** A usable route: preflight.ts refuses an invalid proxy before anything is sent. */
export type Route = Exclude<ProxyDecision, { readonly kind: "invalid" }>;

const stripBrackets = (host: string) => (host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host);
const normaliseHost = (host: string) => stripBrackets(host.toLowerCase()).replace(/\.$/, "");
const defaultPort = (url: URL) => Number(url.port || (url.protocol === "https:" ? 443 : 80));

/**
 * localhost, 127.0.0.0/8 and ::1: the runner's own loopback, which a proxy cannot reach and no one
 * on the network reads. Only `localhost` itself (which resolves from the hosts file): a name below
 * it, or `localhost.`, may go to DNS and resolve to any address.
 */
export function isLoopback(host: string): boolean {
  const name = stripBrackets(host.toLowerCase());
  if (name === "localhost" || name === "::1") return true;
  return isIP(name) === 4 && name.startsWith("127.");
}

/**
 * Whether `NO_PROXY` exempts host:port. Entries are separated by commas or spaces and matched
 * case-insensitively: `*` (everything); a host name, which also covers its subdomains, with an
 * optional leading `.` or `*.`; an IP address; a CIDR block such as `10.0.0.0/8` (IP literals
 * only, no DNS lookup); each optionally with `:port`.
 */
export function matchesNoProxy(host: string, port: number, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const target = normaliseHost(host);
  const targetFamily = isIP(target);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    const { name, entryPort } = splitHostPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (name.includes("/")) {
      if (targetFamily !== 0 && inCidr(target, targetFamily, name)) return true;
      continue;
    }
    const bare = normaliseHost(name.replace(/^\*?\./, ""));
    if (bare === "") continue;
    if (isIP(bare) !== 0) {
      if (targetFamily !== 0 && sameIp(target, bare)) return true;
      continue;
    }
    // A name (and its subdomains) never matches an IP literal: `1.2.3` is not a suffix of 10.1.2.3.
    if (targetFamily === 0 && (target === bare || target.endsWith(`.${bare}`))) return true;
  }
  return false;
}

function splitHostPort(entry: string): { name: string; entryPort: number | undefined } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1] ?? "", entryPort: bracketed[2] ? Number(bracketed[2]) : undefined };
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [name = "", port = ""] = entry.split(":");
    return /^\d+$/.test(port) ? { name, entryPort: Number(port) } : { name: entry, entryPort: undefined };
  }
  return { name: entry, entryPort: undefined }; // a bare IPv6 address or CIDR has many colons
}

function inCidr(ip: string, family: number, cidr: string): boolean {
  const [net = "", bits = ""] = cidr.split("/");
  const netFamily = isIP(net);
  if (netFamily === 0 || netFamily !== family || !/^\d+$/.test(bits)) return false;
  const list = new BlockList();
  try {
    list.addSubnet(net, Number(bits), family === 6 ? "ipv6" : "ipv4");
  } catch {
    return false;
  }
  return list.check(ip, family === 6 ? "ipv6" : "ipv4");
}

function sameIp(a: string, b: string): boolean {
  const family = isIP(a);
  if (family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(b, family === 6 ? "ipv6" : "ipv4");
  return list.check(a, family === 6 ? "ipv6" : "ipv4");
}

/**
 * Picks the proxy for a target the way the runner and `@actions/http-client` do: `https_proxy` /
 * `HTTPS_PROXY` for https targets, `http_proxy` / `HTTP_PROXY` for http ones (no fallback from one
 * to the other), unless `NO_PROXY` matches or the target is loopback. A proxy given without a
 * scheme (`proxy.corp:3128`) is taken as http://.
 */
export function selectProxy(target: URL, settings: ProxySettings): ProxyDecision {
  const variable = target.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY";
  const value = target.protocol === "https:" ? settings.httpsProxy : settings.httpProxy;
  if (!value) return { kind: "direct", why: "no proxy set" };
  if (isLoopback(target.hostname)) return { kind: "direct", why: "loopback" };
  if (matchesNoProxy(target.hostname, defaultPort(target), settings.noProxy))
    return { kind: "direct", why: "NO_PROXY" };
  try {
    const proxy = new URL(value.includes("://") ? value : `http://${value}`);
    if (proxy.protocol !== "http:" && proxy.protocol !== "https:") return { kind: "invalid", variable };
    return { kind: "proxy", proxy, variable };
  } catch {
    return { kind: "invalid", variable };
  }
}

// ---------------------------------------------------------------------------------------------
// Trust anchors

/**
 * The CA list to pass to TLS, or undefined to keep Node's defaults. Passing `ca` replaces Node's
 * defaults ("neither the well known nor extra certificates are used"), so extra anchors are
 * appended to the defaults: Node's own list when it can give it (Node >= 22.15 includes
 * NODE_EXTRA_CA_CERTS and, with --use-system-ca, the system store), else the bundled Mozilla roots
 * plus the NODE_EXTRA_CA_CERTS file.
 */
export function trustAnchors(extraCa: readonly string[], nodeExtraCaPem: string | undefined): string[] | undefined {
  if (extraCa.length === 0) return undefined;
  const getCACertificates = (tls as { getCACertificates?: (type: "default") => string[] }).getCACertificates;
  const defaults =
    typeof getCACertificates === "function"
      ? getCACertificates("default")
      : [...tls.rootCertificates, ...(nodeExtraCaPem ? [nodeExtraCaPem] : [])];
  return [...defaults, ...extraCa];
}

// ---------------------------------------------------------------------------------------------
// Errors

const CODES: ReadonlyArray<readonly [ErrorCategory, boolean, readonly string[]]> = [
  ["refused", true, ["ECONNREFUSED"]],
  ["dns", true, ["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"]],
  [
    "timeout",
    true,
    ["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "TimeoutError"],
  ],
  [
    "reset",
    true,
    [
      "ECONNRESET",
      "EPIPE",
      "ECONNABORTED",
      "EHOSTUNREACH",
      "ENETUNREACH",
      "EHOSTDOWN",
      "ENETDOWN",
      "UND_ERR_SOCKET",
      "UND_ERR_CLOSED",
    ],
  ],
  [
    "tls-verify",
    false,
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "CERT_HAS_EXPIRED",
      "CERT_NOT_YET_VALID",
      "CERT_UNTRUSTED",
      "CERT_REVOKED",
      "CERT_SIGNATURE_FAILURE",
      "ERR_TLS_CERT_ALTNAME_INVALID",
    ],
  ],
  ["tls", false, ["EPROTO", "UND_ERR_PRX_TLS", "ERR_SSL_WRONG_VERSION_NUMBER", "ERR_TLS_HANDSHAKE_TIMEOUT"]],
];

/** Every code and message on an error, its `cause` chain and an AggregateError's members. */
function collect(err: unknown, depth = 0): Array<{ code: string; message: string }> {
  if (depth > 5 || err === null || typeof err !== "object")
    return err === undefined ? [] : [{ code: "", message: String(err) }];
  const thrown = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const code =
    typeof thrown.code === "string"
      ? thrown.code
      : typeof thrown.name === "string" && thrown.name !== "Error"
        ? thrown.name
        : "";
  const own = { code, message: typeof thrown.message === "string" ? thrown.message : "" };
  const nested = [
    ...(thrown.cause !== undefined ? collect(thrown.cause, depth + 1) : []),
    ...(Array.isArray(thrown.errors) ? thrown.errors.flatMap((member) => collect(member, depth + 1)) : []),
  ];
  return [own, ...nested];
}

/** Turns whatever undici or Node threw into a category, a retry decision and a message. */
export function classifyError(err: unknown): NetworkError {
  const found = collect(err);
  const message = found.map((f) => f.message).find((m) => m !== "") ?? "unknown error";
  for (const entry of found) {
    const proxyStatus = /Proxy response \((\d+)\)/.exec(entry.message)?.[1];
    if (proxyStatus) {
      // 407: credentials; 403: policy. Neither changes on retry. A 502/503 from the proxy may.
      return {
        category: "proxy",
        code: `PROXY_${proxyStatus}`,
        message: entry.message,
        retryable: Number(proxyStatus) >= 500,
      };
    }
    if (/Proxy Authentication Required/.test(entry.message))
      return { category: "proxy", code: "PROXY_407", message: entry.message, retryable: false };
  }
  for (const [category, retryable, codes] of CODES) {
    const hit = found.find((f) => codes.includes(f.code));
    if (hit) return { category, code: hit.code, message: hit.message || message, retryable };
  }
  const tlsFailure = found.find((f) => f.code.startsWith("ERR_SSL_") || f.code.startsWith("ERR_TLS_"));
  if (tlsFailure)
    return { category: "tls", code: tlsFailure.code, message: tlsFailure.message || message, retryable: false };
  const code = found.find((f) => f.code !== "")?.code ?? "UNKNOWN";
  return { category: "other", code, message, retryable: false };
}

// ---------------------------------------------------------------------------------------------
// The transport

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/**
 * A receiver that requires a client certificate, reached without one: in TLS 1.3 the server
 * checks the certificate after the client's handshake is done, so the client sees the
 * connection closed with no byte of an answer (Bun: "other side closed"; Node/OpenSSL servers
 * often an alert, which `classifyError` files as a TLS failure). No retry can change that.
 */
export function clientCertRequired(error: NetworkError, err: unknown, https: boolean, hasClientCert: boolean): boolean {
  if (!https || hasClientCert) return false;
  if (/CERTIFICATE_REQUIRED/.test(error.code)) return true;
  if (error.category !== "reset") return false;
  const socket = (err as { socket?: { bytesRead?: unknown; bytesWritten?: unknown } } | null)?.socket;
  return socket?.bytesRead === 0 && typeof socket.bytesWritten === "number" && socket.bytesWritten > 0;
}

/** Creates the dispatcher for the step's receivers, reached by `route`; `send` uses it for every attempt. */
export function createTransport(route: Route, options: TransportOptions): Transport {
  const dispatcher = createDispatcher(route, options);
  return {
    async send(req, timeoutMs, maxBodyBytes = MAX_RESPONSE_BYTES) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const res = await request(req.url, {
          method: req.method,
          headers: { ...req.headers },
          body: req.body,
          dispatcher,
          signal,
          maxRedirections: 0,
        });
        const read = await readBounded(res.body, maxBodyBytes);
        const headers = flattenHeaders(res.headers);
        const declared = /^\d+$/.test(headers["content-length"] ?? "") ? Number(headers["content-length"]) : undefined;
        return {
          kind: "response",
          status: res.statusCode,
          headers,
          body: read.body,
          bodyTruncated: read.truncated,
          ...(read.cut ? { bodyCut: true } : {}),
          bodyBytes: read.truncated ? declared : read.size,
        };
      } catch (err) {
        const error = classifyError(err);
        const https = new URL(req.url).protocol === "https:";
        if (clientCertRequired(error, err, https, Boolean(options.clientCert)))
          return { kind: "error", error: { ...error, category: "tls-client-cert", retryable: false } };
        return { kind: "error", error };
      }
    },
    async close() {
      await dispatcher.destroy().catch(() => undefined);
    },
  };
}

/** The undici dispatcher for `route`: an Agent, or a ProxyAgent whose CONNECT tunnel carries the target's TLS. */
function createDispatcher(route: Route, options: TransportOptions): Dispatcher {
  const ca = trustAnchors(options.extraCa, options.nodeExtraCaPem);
  const targetTls = {
    ...(ca ? { ca } : {}),
    ...(options.clientCert && options.clientKey ? { cert: options.clientCert, key: options.clientKey } : {}),
    rejectUnauthorized: !options.insecureSkipVerify,
    timeout: options.timeoutMs,
  };
  const common = { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, maxRedirections: 0 };
  if (route.kind !== "proxy") return new Agent({ ...common, connect: targetTls });
  return new ProxyAgent({
    ...common,
    uri: route.proxy.href,
    // The target's TLS runs inside the CONNECT tunnel; the proxy's own TLS (https:// proxy)
    // trusts the same anchors but never sees the client certificate.
    requestTls: targetTls,
    proxyTls: {
      ...(ca ? { ca } : {}),
      rejectUnauthorized: !options.insecureSkipVerify,
      timeout: options.timeoutMs,
    },
  });
}

/**
 * A response body read up to `maxBodyBytes` (as UTF-8), the rest discarded unread; `size` is what
 * was read. A body cut short (stalled past the timeout, or reset) is truncated, not an error.
 */
async function readBounded(
  body: Dispatcher.ResponseData["body"],
  maxBodyBytes: number,
): Promise<{ body: string; size: number; truncated: boolean; cut: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  let cut = false;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buf);
      size += buf.byteLength;
      if (size > maxBodyBytes) {
        truncated = true;
        body.destroy();
        break;
      }
    }
  } catch {
    // The status is the receiver's answer: a body cut short (stalled past the timeout, or
    // reset) does not turn a 200 into "no answer", which would send the delivery again.
    truncated = true;
    cut = true;
    body.destroy();
  }
  return { body: Buffer.concat(chunks).subarray(0, maxBodyBytes).toString("utf8"), size, truncated, cut };
}

/** A transport's route, for the log: never the proxy's credentials. */
export function describeRoute(route: Route): string {
  if (route.kind === "proxy") return `through the ${route.variable} proxy ${route.proxy.protocol}//${route.proxy.host}`;
  return route.why === "no proxy set" ? "direct (no proxy set)" : `direct (${route.why})`;
}
