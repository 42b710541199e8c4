/**
 * Fetches from OIDC issuers (issue 11, findings 4, 5, 7; issue 12, item 3): what a Receiver's
 * issuerURL can make fluxhook fetch, how much it reads, what a refusal reveals, how often a
 * failing issuer is fetched, and go-oidc's rules for nbf, exp and redirects.
 */
import { describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { GoogleIdTokens, KeySets, OidcIssuers } from "../../server/jwt";
import { fetchDocument, isNonPublicAddress } from "../../server/jwt/fetch";
import { prepareReceiver } from "../../server/receivers/prepare";
import type { ReceiverSpec } from "../../server/api/receiver";
import { OIDC_FETCH_RETRY_MS, OIDC_MAX_DOCUMENT_BYTES } from "../../server/limits";

const { privateKey, publicKey } = await generateKeyPair("RS256");
const JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };

type Route = (req: Request, base: string) => Response | Promise<Response>;

/** An issuer on 127.0.0.1 whose routes the test writes; counts requests per path. */
function issuerServer(routes: Record<string, Route>) {
  const hits: Record<string, number> = {};
  let base = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req): Response | Promise<Response> {
      const path = new URL(req.url).pathname;
      hits[path] = (hits[path] ?? 0) + 1;
      const route = routes[path];
      return route ? route(req, base) : new Response("nope", { status: 404 });
    },
  });
  base = `http://127.0.0.1:${server.port}`;
  return { base, hits, [Symbol.asyncDispose]: () => server.stop(true) };
}

const discovery =
  (jwksPath = "/jwks"): Route =>
  (_req, base) =>
    Response.json({ issuer: base, jwks_uri: `${base}${jwksPath}`, id_token_signing_alg_values_supported: ["RS256"] });
const jwks: Route = () => Response.json({ keys: [JWK] });

function sign(claims: JWTPayload, nowSeconds = Math.floor(Date.now() / 1000)) {
  return new SignJWT({ exp: nowSeconds + 300, iat: nowSeconds, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .sign(privateKey);
}

/** A body of `total` bytes streamed in 64 KiB chunks; `sent` counts what the server produced. */
function streamed(total: number) {
  const counter = { sent: 0 };
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.sent >= total) return controller.close();
      counter.sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { counter, response: () => new Response(stream, { headers: { "content-type": "application/json" } }) };
}

describe("issuerURL", () => {
  const spec = (issuerURL: string): ReceiverSpec => ({
    type: "generic-oidc",
    events: [],
    resources: [],
    resourceFilter: undefined,
    secretName: undefined,
    oidcProviders: [
      { issuerURL, audience: "flux", variables: [], validations: [{ expression: "true", message: "m" }] },
    ],
    suspend: false,
  });

  test.each([
    ["https://issuer.example/path?x=", "has a query or a fragment"],
    ["https://issuer.example/#", "has a query or a fragment"],
    ["https://user:pw@issuer.example", "carries credentials"],
  ])("%s is refused at reconcile (%s), and never fetched", async (issuerURL, problem) => {
    expect(prepareReceiver(spec(issuerURL) as ReceiverSpec)).toEqual({
      ok: false,
      reason: "ValidationFailed",
      message: `oidcProviders[0]: issuerURL ${JSON.stringify(issuerURL)} ${problem}`,
    });
    let fetched = 0;
    const oidc = new OidcIssuers(new KeySets(), {
      fetch: (async () => {
        fetched++;
        return new Response("{}");
      }) as unknown as typeof fetch,
    });
    const r = await oidc.verify(await sign({ iss: issuerURL, aud: "flux" }), { issuerURL, audience: "flux" });
    expect(r).toEqual({
      ok: false,
      reason: `failed to initialize OIDC provider for issuer ${JSON.stringify(issuerURL)}: the issuer URL ${problem}`,
    });
    expect(fetched).toBe(0);
  });
});

describe("the opt-in address filter (--oidc-deny-private-networks)", () => {
  test.each([
    ["127.0.0.1", true],
    ["10.96.0.10", true],
    ["172.20.1.1", true],
    ["192.168.1.1", true],
    ["169.254.169.254", true],
    ["100.64.0.1", true],
    ["0.0.0.0", true],
    ["::1", true],
    ["fe80::1", true],
    ["fd00::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:10.0.0.1", true],
    ["8.8.8.8", false],
    ["2001:4860:4860::8888", false],
    ["not an address", true],
  ])("%s is non-public: %p", (address, refused) => {
    expect(isNonPublicAddress(address)).toBe(refused);
  });

  test("off by default: an in-cluster issuer (here on loopback) is served; on, it is refused before any connection", async () => {
    await using issuer = issuerServer({ "/.well-known/openid-configuration": discovery(), "/jwks": jwks });
    const provider = { issuerURL: issuer.base, audience: "flux" };
    const token = await sign({ iss: issuer.base, aud: "flux" });
    expect(await new OidcIssuers(new KeySets()).verify(token, provider)).toMatchObject({ ok: true });

    const before = { ...issuer.hits };
    const policy = { denyPrivateAddresses: true };
    expect(await new OidcIssuers(new KeySets(policy), policy).verify(token, provider)).toEqual({
      ok: false,
      reason: `failed to initialize OIDC provider for issuer "${issuer.base}": discovery address is loopback, link-local or private (--oidc-deny-private-networks)`,
    });
    expect(issuer.hits).toEqual(before);
  });

  test("names are resolved, and every redirect is checked like the first hop", async () => {
    await using internal = issuerServer({ "/secret": () => Response.json({ internal: true }) });
    // issuer.example resolves to a public address; its server redirects to an internal one.
    const resolve = async (host: string) => (host === "issuer.example" ? ["93.184.216.34"] : ["10.0.0.7"]);
    const publicFetch = (async (url: URL | string, init?: RequestInit) => {
      const u = new URL(String(url));
      if (u.hostname === "issuer.example")
        return new Response(null, { status: 302, headers: { location: `${internal.base}/secret` } });
      return fetch(u, init);
    }) as typeof fetch;
    const policy = { denyPrivateAddresses: true, resolve, fetch: publicFetch };
    expect(await fetchDocument("https://issuer.example/doc", "discovery", policy)).toEqual({
      ok: false,
      reason: "discovery redirect is loopback, link-local or private (--oidc-deny-private-networks)",
    });
    expect(await fetchDocument("https://internal.example/doc", "discovery", policy)).toEqual({
      ok: false,
      reason: "discovery address is loopback, link-local or private (--oidc-deny-private-networks)",
    });
    expect(internal.hits).toEqual({});
  });
});

describe("what a refusal says", () => {
  test("no fetched text, no connect error, no document field is echoed", async () => {
    const SECRET = "internal-admin-token-0123456789";
    await using server = issuerServer({
      "/text/.well-known/openid-configuration": () => new Response(`${SECRET} is not JSON`),
      "/other/.well-known/openid-configuration": () =>
        Response.json({ issuer: `https://${SECRET}.example`, jwks_uri: "https://x.example/jwks" }),
      "/status/.well-known/openid-configuration": () => new Response(SECRET, { status: 403 }),
    });
    const oidc = new OidcIssuers(new KeySets());
    const reasons: string[] = [];
    for (const path of ["/text", "/other", "/status"]) {
      const issuerURL = `${server.base}${path}`;
      const r = await oidc.verify(await sign({ iss: issuerURL }), { issuerURL, audience: "flux" });
      if (r.ok) throw new Error("accepted");
      reasons.push(r.reason.slice(`failed to initialize OIDC provider for issuer "${issuerURL}": `.length));
    }
    expect(reasons).toEqual([
      "discovery document is not JSON",
      "the discovery document names another issuer than the issuer URL",
      "discovery answered 403",
    ]);
    for (const r of reasons) expect(r).not.toContain(SECRET);
  });
});

describe("documents are read through a 1 MiB cap", () => {
  test.each(["discovery", "key set"])("a 300 MB %s is refused after 1 MiB", async (which) => {
    const huge = streamed(300 * 1024 * 1024);
    await using issuer = issuerServer({
      "/.well-known/openid-configuration": which === "discovery" ? () => huge.response() : discovery(),
      "/jwks": () => huge.response(),
    });
    const oidc = new OidcIssuers(new KeySets());
    const r = await oidc.verify(await sign({ iss: issuer.base, aud: "flux" }), {
      issuerURL: issuer.base,
      audience: "flux",
    });
    const reason =
      which === "discovery"
        ? `failed to initialize OIDC provider for issuer "${issuer.base}": discovery document is larger than ${OIDC_MAX_DOCUMENT_BYTES} bytes`
        : `failed to verify OIDC token: the key set document is larger than ${OIDC_MAX_DOCUMENT_BYTES} bytes`;
    expect(r).toEqual({ ok: false, reason });
    // The server stops producing once the reader is gone (what socket buffers hold aside).
    expect(huge.counter.sent).toBeLessThan(32 * 1024 * 1024);
  });

  test("a declared Content-Length above the cap is refused without reading", async () => {
    const r = await fetchDocument("https://issuer.example/doc", "discovery", {
      fetch: (async () =>
        new Response("{}", { headers: { "content-length": String(300 * 1024 * 1024) } })) as unknown as typeof fetch,
    });
    expect(r).toEqual({ ok: false, reason: `discovery document is larger than ${OIDC_MAX_DOCUMENT_BYTES} bytes` });
  });
});

describe("a failing issuer is fetched at most once per negative-cache window", () => {
  test("key set: forged tokens while it fails to load cost one fetch per window, whatever the rate", async () => {
    await using issuer = issuerServer({
      "/.well-known/openid-configuration": discovery(),
      "/jwks": () => new Response("down", { status: 503 }),
    });
    let now = Date.now();
    const keys = new KeySets({ now: () => now });
    const oidc = new OidcIssuers(keys, { now: () => now });
    const provider = { issuerURL: issuer.base, audience: "flux" };
    const forged = await sign({ iss: issuer.base, aud: "flux" });
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(Array.from({ length: 50 }, () => oidc.verify(forged, provider)));
      for (const r of await Promise.all(Array.from({ length: 50 }, () => oidc.verify(forged, provider))))
        results.push(r);
      expect(results.every((r) => !r.ok && r.reason === "failed to verify OIDC token: the key set answered 503")).toBe(
        true,
      );
      expect(issuer.hits["/jwks"]).toBe(round + 1);
      now += OIDC_FETCH_RETRY_MS;
    }
  });

  test("discovery: the same", async () => {
    await using issuer = issuerServer({
      "/.well-known/openid-configuration": () => new Response("down", { status: 500 }),
    });
    let now = Date.now();
    const oidc = new OidcIssuers(new KeySets(), { now: () => now });
    const provider = { issuerURL: issuer.base, audience: "flux" };
    const forged = await sign({ iss: issuer.base, aud: "flux" });
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 50 }, () => oidc.verify(forged, provider)));
      for (let i = 0; i < 50; i++) await oidc.verify(forged, provider);
      expect(issuer.hits["/.well-known/openid-configuration"]).toBe(round + 1);
      now += OIDC_FETCH_RETRY_MS;
    }
  });

  test("gcr: Google's keys unreachable (an air-gapped cluster) cost one fetch per window", async () => {
    await using closed = issuerServer({});
    let now = Date.now();
    const keys = new KeySets({ now: () => now });
    const google = new GoogleIdTokens(keys, `${closed.base}/certs`);
    const forged = await sign({ iss: "https://accounts.google.com", aud: "a", email: "e", email_verified: true });
    for (let i = 0; i < 100; i++)
      expect(await google.verify(forged, { audience: "a", email: "e" })).toEqual({
        ok: false,
        reason: "invalid ID token: the key set answered 404",
      });
    expect(keys.fetches).toBe(1);
    now += OIDC_FETCH_RETRY_MS;
    await google.verify(forged, { audience: "a", email: "e" });
    expect(keys.fetches).toBe(2);
  });
});

describe("as go-oidc verifies: time claims and redirects", () => {
  test("nbf up to 5 minutes ahead is accepted; exp has no leeway", async () => {
    await using issuer = issuerServer({ "/.well-known/openid-configuration": discovery(), "/jwks": jwks });
    const now = Math.floor(Date.now() / 1000);
    const oidc = new OidcIssuers(new KeySets(), { now: () => now * 1000 });
    const provider = { issuerURL: issuer.base, audience: "flux" };
    const verify = async (claims: JWTPayload) =>
      oidc.verify(await sign({ iss: issuer.base, aud: "flux", ...claims }, now), provider);
    expect(await verify({ nbf: now + 30 })).toMatchObject({ ok: true });
    expect(await verify({ nbf: now + 299 })).toMatchObject({ ok: true });
    expect(await verify({ nbf: now + 360 })).toEqual({
      ok: false,
      reason: 'failed to verify OIDC token: "nbf" claim timestamp check failed',
    });
    expect(await verify({ exp: now - 1 })).toEqual({
      ok: false,
      reason: 'failed to verify OIDC token: "exp" claim timestamp check failed',
    });
    expect(await verify({ exp: now + 1 })).toMatchObject({ ok: true });
  });

  test("redirects are followed for discovery and keys", async () => {
    await using issuer = issuerServer({
      "/.well-known/openid-configuration": (_req, base) =>
        new Response(null, { status: 302, headers: { location: `${base}/moved/discovery` } }),
      "/moved/discovery": discovery("/old-jwks"),
      "/old-jwks": () => new Response(null, { status: 308, headers: { location: "/jwks" } }),
      "/jwks": jwks,
      "/loop": () => new Response(null, { status: 307, headers: { location: "/loop" } }),
    });
    const oidc = new OidcIssuers(new KeySets());
    const provider = { issuerURL: issuer.base, audience: "flux" };
    expect(await oidc.verify(await sign({ iss: issuer.base, aud: "flux" }), provider)).toMatchObject({ ok: true });
    expect(await fetchDocument(`${issuer.base}/loop`, "discovery")).toEqual({
      ok: false,
      reason: "discovery stopped after 10 redirects",
    });
  });
});
