/**
 * @module server/jwt/fetch
 * The one way fluxhook fetches from an issuer: discovery documents and key sets, for
 * generic-oidc and gcr. Whoever may create a Receiver chooses the issuer and anyone with an
 * unsigned token triggers the fetch, so it is bounded on every side:
 *
 *   - the body is read up to OIDC_MAX_DOCUMENT_BYTES, then the read stops and the fetch fails;
 *   - redirects are followed as go-oidc's http.Client does (up to OIDC_MAX_REDIRECTS), each hop
 *     checked like the first;
 *   - with `denyPrivateAddresses` (--oidc-deny-private-networks, off by default since in-cluster
 *     issuers such as Dex are legitimate), a host that resolves to a loopback, link-local, private
 *     or otherwise non-public address is refused before any connection;
 *   - failures are reasons that name what failed and never what was fetched or the connect
 *     error's text: an answer must not read back an internal service.
 *
 * The address check resolves the name and then lets fetch connect, which resolves it again: a
 * DNS answer that changes in between (rebinding) is not caught. The filter bounds configuration
 * mistakes and casual misuse; a NetworkPolicy on egress is the complete answer.
 */
import { BlockList, isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { OIDC_FETCH_TIMEOUT_MS, OIDC_MAX_DOCUMENT_BYTES, OIDC_MAX_REDIRECTS } from "../limits";

/** Non-public address ranges (IANA special-purpose registries), as the opt-in filter refuses them. */
const NON_PUBLIC = (() => {
  const list = new BlockList();
  for (const [net, bits] of [
    ["0.0.0.0", 8], // "this network"
    ["10.0.0.0", 8], // private
    ["100.64.0.0", 10], // carrier-grade NAT
    ["127.0.0.0", 8], // loopback
    ["169.254.0.0", 16], // link-local (cloud metadata services)
    ["172.16.0.0", 12], // private
    ["192.0.0.0", 24], // IETF protocol assignments
    ["192.168.0.0", 16], // private
    ["198.18.0.0", 15], // benchmarking
    ["224.0.0.0", 4], // multicast
    ["240.0.0.0", 4], // reserved, broadcast
  ] as const)
    list.addSubnet(net, bits, "ipv4");
  for (const [net, bits] of [
    ["::", 128], // unspecified
    ["::1", 128], // loopback
    ["64:ff9b:1::", 48], // local-use NAT64
    ["fc00::", 7], // unique local
    ["fe80::", 10], // link-local
    ["ff00::", 8], // multicast
  ] as const)
    list.addSubnet(net, bits, "ipv6");
  return list;
})();

/** True for an address the opt-in filter refuses (IPv4-mapped IPv6 addresses are judged as IPv4). */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return NON_PUBLIC.check(address, family === 4 ? "ipv4" : "ipv6");
}

export interface FetchPolicy {
  /** Refuse hosts that resolve to non-public addresses (--oidc-deny-private-networks). */
  readonly denyPrivateAddresses?: boolean;
  readonly maxBytes?: number;
  readonly timeoutMs?: number;
  /** Test seams. */
  readonly fetch?: typeof fetch;
  readonly resolve?: (host: string) => Promise<readonly string[]>;
}

export type Fetched = { ok: true; body: Uint8Array } | { ok: false; reason: string };

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

const defaultResolve = async (host: string) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** undefined when `url` may be fetched, else why not. */
async function refusal(url: URL, policy: FetchPolicy): Promise<string | undefined> {
  if (url.protocol !== "https:" && url.protocol !== "http:") return "is not an http(s) URL";
  if (url.username || url.password) return "carries credentials";
  if (!policy.denyPrivateAddresses) return undefined;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: readonly string[];
  try {
    addresses = isIP(host) ? [host] : await (policy.resolve ?? defaultResolve)(host);
  } catch {
    return "has a host name that does not resolve";
  }
  if (addresses.length === 0 || addresses.some(isNonPublicAddress))
    return "is loopback, link-local or private (--oidc-deny-private-networks)";
  return undefined;
}

/** Reads at most `max` bytes of `res`; undefined when the body is larger (the read is cancelled). */
async function readCapped(res: Response, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * GETs `address` (`what` names it in reasons: "discovery", "the key set"), following redirects,
 * and returns the body of a 200. Any other outcome is a reason safe to send back.
 */
export async function fetchDocument(address: string, what: string, policy: FetchPolicy = {}): Promise<Fetched> {
  const max = policy.maxBytes ?? OIDC_MAX_DOCUMENT_BYTES;
  const timeoutMs = policy.timeoutMs ?? OIDC_FETCH_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return { ok: false, reason: `${what} address is not a URL` };
  }
  for (let hop = 0; ; hop++) {
    const refused = await refusal(url, policy);
    if (refused) return { ok: false, reason: `${what} ${hop === 0 ? "address" : "redirect"} ${refused}` };
    let res: Response;
    try {
      res = await (policy.fetch ?? fetch)(url, { signal, redirect: "manual", headers: { accept: "application/json" } });
    } catch {
      return {
        ok: false,
        reason: signal.aborted
          ? `${what} timed out after ${Math.round(timeoutMs / 1000)} s`
          : `${what} failed: the server could not be reached`,
      };
    }
    const location = res.headers.get("location");
    if (REDIRECTS.has(res.status) && location !== null) {
      await res.body?.cancel().catch(() => {});
      if (hop >= OIDC_MAX_REDIRECTS)
        return { ok: false, reason: `${what} stopped after ${OIDC_MAX_REDIRECTS} redirects` };
      try {
        url = new URL(location, url);
      } catch {
        return { ok: false, reason: `${what} redirect is not a URL` };
      }
      continue;
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      return { ok: false, reason: `${what} answered ${res.status}` };
    }
    let body: Uint8Array | undefined;
    try {
      body = await readCapped(res, max);
    } catch {
      return {
        ok: false,
        reason: signal.aborted
          ? `${what} timed out after ${Math.round(timeoutMs / 1000)} s`
          : `${what} failed while reading`,
      };
    }
    if (!body) return { ok: false, reason: `${what} document is larger than ${max} bytes` };
    return { ok: true, body };
  }
}

/** `fetchDocument`, then JSON: the parsed object, or a reason that does not quote the document. */
export async function fetchJsonObject(
  address: string,
  what: string,
  policy: FetchPolicy = {},
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; reason: string }> {
  const fetched = await fetchDocument(address, what, policy);
  if (!fetched.ok) return fetched;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(fetched.body).toString("utf8"));
  } catch {
    return { ok: false, reason: `${what} document is not JSON` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { ok: false, reason: `${what} document is not a JSON object` };
  return { ok: true, value: value as Record<string, unknown> };
}
