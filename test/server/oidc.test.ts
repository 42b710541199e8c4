/**
 * Token-verified receivers: generic-oidc (the cases of notification-controller
 * receiver_oidc_test.go, through a whole stack and a local issuer that serves its own discovery
 * document and JWKS) and the Google ID tokens of gcr (signed by a local key whose JWKS stands in
 * for Google's). Also what Flux does not do: discovery and keys fetched once and cached, keys
 * fetched again when a token names an unknown `kid`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { GoogleIdTokens, KeySets, OidcIssuers } from "../../server/jwt";
import { unverifiedIssuer } from "../../server/providers/generic-oidc";
import { webhookPath } from "../../shared";
import { startStack, waitFor, type Stack } from "../support/stack";
import { unusedPort } from "../support/ports";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { GIT } from "../support/kinds";

const NS = "oidc";
const now = () => Math.floor(Date.now() / 1000);

let stack: Stack;
let iss: TokenIssuer;
let otherIss: TokenIssuer;

const baseProvider = () => ({
  issuerURL: iss.url,
  audience: "flux",
  validations: [
    { expression: "claims.repository == 'my-org/my-repo'", message: "wrong repo" },
    { expression: "claims.environment == 'production'", message: "wrong environment" },
  ],
});
const validClaims = () => ({
  iss: iss.url,
  aud: "flux",
  sub: "subject",
  repository: "my-org/my-repo",
  environment: "production",
});

const TARGETS = [{ apiVersion: GIT, kind: "GitRepository", name: "target" }];

function oidcReceiver(name: string, spec: Record<string, unknown> = {}) {
  stack.makeReceiver(NS, name, { type: "generic-oidc", oidcProviders: [baseProvider()], targets: TARGETS, spec });
}

beforeAll(async () => {
  [iss, otherIss] = await Promise.all([startTokenIssuer(), startTokenIssuer()]);
  stack = await startStack();
  oidcReceiver("base");
  oidcReceiver("vars", {
    oidcProviders: [
      {
        issuerURL: iss.url,
        audience: "flux",
        variables: [{ name: "allowed", expression: "['my-org/my-repo']" }],
        validations: [{ expression: "claims.repository in vars.allowed", message: "repo not allowed" }],
      },
    ],
  });
  oidcReceiver("claims-filter", {
    resourceFilter: "claims.environment == 'production' && res.metadata.name == 'target'",
  });
  oidcReceiver("default-audience", { oidcProviders: [{ ...baseProvider(), audience: undefined }] });
  for (const name of ["base", "vars", "claims-filter", "default-audience"]) await stack.readyPath(NS, name);
});
afterAll(async () => {
  await stack.stop();
  await Promise.all([iss.stop(), otherIss.stop()]);
});

interface Case {
  name: string;
  receiver?: string;
  /** The Authorization header, made when the case runs (tokens are signed then). */
  authorization: () => Promise<string | undefined>;
  status: number;
  reason: string | RegExp;
}

const CASES: Case[] = [
  {
    name: "valid token passes validations",
    authorization: async () => `Bearer ${await iss.sign(validClaims())}`,
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "missing authorization header",
    authorization: async () => undefined,
    status: 400,
    reason: "the Authorization header is missing or malformed",
  },
  {
    name: "not a bearer",
    authorization: async () => "Basic dXNlcjpwYXNz",
    status: 400,
    reason: "the Authorization header is missing or malformed",
  },
  // HTTP trims the trailing spaces, so this is a bare "Bearer" (the same in Go's net/http).
  {
    name: "empty bearer",
    authorization: async () => "Bearer   ",
    status: 400,
    reason: "the Authorization header is missing or malformed",
  },
  {
    name: "malformed bearer",
    authorization: async () => "Bearer not-a-jwt",
    status: 400,
    reason: "failed to parse bearer token: token is not a JWT",
  },
  {
    name: "unknown issuer",
    authorization: async () => `Bearer ${await otherIss.sign({ iss: otherIss.url, aud: "flux", sub: "s" })}`,
    status: 400,
    reason: /^no oidcProvider configured for issuer "http:\/\/127\.0\.0\.1:\d+"$/,
  },
  {
    name: "wrong audience",
    authorization: async () => `Bearer ${await iss.sign({ ...validClaims(), aud: "someone-else" })}`,
    status: 400,
    reason: 'failed to verify OIDC token: unexpected "aud" claim value',
  },
  {
    name: "expired token",
    authorization: async () => `Bearer ${await iss.sign(validClaims(), { expiresIn: now() - 60 })}`,
    status: 400,
    reason: 'failed to verify OIDC token: "exp" claim timestamp check failed',
  },
  {
    name: "failed validations are aggregated",
    authorization: async () =>
      `Bearer ${await iss.sign({ ...validClaims(), repository: "evil/repo", environment: "staging" })}`,
    status: 400,
    reason: "token validation failed: wrong repo; wrong environment",
  },
  {
    name: "a token of another key claiming our issuer is refused",
    authorization: async () => `Bearer ${await otherIss.sign(validClaims())}`,
    status: 400,
    reason: "failed to verify OIDC token: signature verification failed",
  },
  {
    name: "an unsigned token is refused",
    authorization: async () => `Bearer ${new UnsecuredJWT(validClaims()).setExpirationTime("5m").encode()}`,
    status: 400,
    reason: /^failed to verify OIDC token: /,
  },
  {
    name: "variables resolve before validations",
    receiver: "vars",
    authorization: async () => `Bearer ${await iss.sign(validClaims())}`,
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "variables: a repo outside vars.allowed",
    receiver: "vars",
    authorization: async () => `Bearer ${await iss.sign({ ...validClaims(), repository: "other/repo" })}`,
    status: 400,
    reason: "token validation failed: repo not allowed",
  },
  {
    name: "filters see the claims",
    receiver: "claims-filter",
    authorization: async () => `Bearer ${await iss.sign(validClaims())}`,
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "the audience defaults to notification-controller",
    receiver: "default-audience",
    authorization: async () => `Bearer ${await iss.sign({ ...validClaims(), aud: "notification-controller" })}`,
    status: 200,
    reason: "1 of 1 target annotated",
  },
];

describe("generic-oidc (receiver_oidc_test.go)", () => {
  test.each(CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const authorization = await c.authorization();
    // The webhook path of generic-oidc uses an empty token.
    const res = await stack.post(webhookPath("", c.receiver ?? "base", NS), {
      headers: authorization ? { Authorization: authorization } : {},
      body: "{}",
    });
    expect(res.status).toBe(c.status);
    if (typeof c.reason === "string") expect(res.body.reason).toBe(c.reason);
    else expect(res.body.reason).toMatch(c.reason);
  });

  test("discovery and keys were fetched once for all those deliveries", () => {
    expect(iss.requests).toEqual({ discovery: 1, jwks: 1 });
  });

  test("the path is Flux's, with an empty token", async () => {
    expect(await stack.readyPath(NS, "base")).toBe(webhookPath("", "base", NS));
    expect(webhookPath("", "test-receiver", "default")).toBe(
      "/hook/a638442de95a7c73f5613251a69ca664c3f3aeb99743a6ea6385afcedbf13253",
    );
  });

  test("a claims filter that returns false skips the target", async () => {
    const token = await iss.sign({ ...validClaims(), environment: "production" });
    stack.receiver(NS, "claims-skip", {
      type: "generic-oidc",
      oidcProviders: [{ ...baseProvider(), validations: [{ expression: "true", message: "always" }] }],
      resources: [{ kind: "GitRepository", name: "target", filter: "claims.sub == 'someone-else'" }],
    });
    const res = await stack.post(await stack.readyPath(NS, "claims-skip"), {
      headers: { Authorization: `Bearer ${token}` },
      body: "{}",
    });
    expect(res.body).toMatchObject({
      status: 200,
      targets: [{ name: "target", outcome: "skipped", reason: "the CEL filter returned false" }],
    });
  });
});

describe("generic-oidc configuration errors", () => {
  const conditions = (name: string) =>
    (stack.receiverObject(NS, name)?.status?.conditions ?? []).map((c: any) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
    }));

  test.each([
    {
      name: "bad-validation",
      providers: () => [
        { ...baseProvider(), validations: [{ expression: "claims.repository", message: "wrong repo" }] },
      ],
      reason: "InvalidCELExpression",
      message: () =>
        `oidcProviders[0] (issuerURL=${JSON.stringify(iss.url)}): invalid expression for validation "wrong repo": CEL expression output type mismatch: expected bool, got dyn`,
    },
    {
      name: "bad-variable",
      providers: () => [{ ...baseProvider(), variables: [{ name: "v", expression: "nope.x" }] }],
      reason: "InvalidCELExpression",
      message: () =>
        `oidcProviders[0] (issuerURL=${JSON.stringify(iss.url)}): invalid expression for variable "v": failed to parse the CEL expression 'nope.x': ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')`,
    },
    {
      name: "no-validations",
      providers: () => [{ ...baseProvider(), validations: [] }],
      reason: "ValidationFailed",
      message: () =>
        `oidcProviders[0] (issuerURL=${JSON.stringify(iss.url)}): at least one validation is required; without validations any caller able to obtain a token from this issuer can trigger the Receiver`,
    },
    {
      name: "duplicate-issuer",
      providers: () => [baseProvider(), baseProvider()],
      reason: "ValidationFailed",
      message: () => `oidcProviders[1]: duplicate issuerURL ${JSON.stringify(iss.url)}`,
    },
    {
      name: "claims-outside-oidc",
      providers: undefined,
      reason: "InvalidCELExpression",
      message: () =>
        "invalid resourceFilter expression: failed to parse the CEL expression 'claims.sub == 'x'': ERROR: <input>:1:1: undeclared reference to 'claims' (in container '')",
    },
  ])("$name is Stalled with $reason", async ({ name, providers, reason, message }) => {
    if (providers) oidcReceiver(name, { oidcProviders: providers() });
    else {
      // claims exist only for generic-oidc receivers.
      stack.makeReceiver(NS, name, {
        type: "generic",
        token: "t",
        secretName: "token",
        targets: TARGETS,
        spec: { resourceFilter: "claims.sub == 'x'" },
      });
    }
    await waitFor(`${name} Stalled`, () => conditions(name).some((c: any) => c.type === "Stalled"));
    const full = `Reconciliation failed terminally due to configuration error: ${message()}`;
    expect(conditions(name)).toEqual([
      { type: "Ready", status: "False", reason, message: full },
      { type: "Stalled", status: "True", reason, message: full },
    ]);
  });
});

describe("caches (unit)", () => {
  test("a token with an unknown kid refreshes the keys (rotation); known kids do not", async () => {
    await using issuer = await startTokenIssuer();
    const oidc = new OidcIssuers(new KeySets({ cooldownMs: 0 }));
    const provider = { issuerURL: issuer.url, audience: "flux" };
    const claims = { iss: issuer.url, aud: "flux", sub: "s" };
    expect(await oidc.verify(await issuer.sign(claims), provider)).toMatchObject({ ok: true, claims: { sub: "s" } });
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 1 });
    await issuer.rotate();
    expect(await oidc.verify(await issuer.sign(claims), provider)).toMatchObject({ ok: true });
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 2 });
    expect(await oidc.verify(await issuer.sign(claims), provider)).toMatchObject({ ok: true });
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 2 });
  });

  test("within the cooldown an unknown kid does not fetch again", async () => {
    await using issuer = await startTokenIssuer();
    const oidc = new OidcIssuers(new KeySets());
    const provider = { issuerURL: issuer.url, audience: "flux" };
    const claims = { iss: issuer.url, aud: "flux", sub: "s" };
    expect(await oidc.verify(await issuer.sign(claims), provider)).toMatchObject({ ok: true });
    const forged = await Promise.all(Array.from({ length: 5 }, (_, i) => issuer.sign(claims, { kid: `forged-${i}` })));
    for (const t of forged) expect(await oidc.verify(t, provider)).toMatchObject({ ok: false });
    expect(issuer.requests.jwks).toBe(1);
  });

  test("concurrent first deliveries share one discovery", async () => {
    await using issuer = await startTokenIssuer();
    const oidc = new OidcIssuers(new KeySets());
    const provider = { issuerURL: issuer.url, audience: "flux" };
    const token = await issuer.sign({ iss: issuer.url, aud: "flux" });
    const results = await Promise.all(Array.from({ length: 10 }, () => oidc.verify(token, provider)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(issuer.requests.discovery).toBe(1);
  });

  test("discovery failures", async () => {
    const closedUrl = `http://127.0.0.1:${unusedPort()}`;
    const liar = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => Response.json({ issuer: "https://elsewhere.example", jwks_uri: "https://elsewhere.example/jwks" }),
    });
    const liarUrl = `http://127.0.0.1:${liar.port}`;
    const oidc = new OidcIssuers(new KeySets());
    try {
      const a = await oidc.verify("x.y.z", { issuerURL: closedUrl, audience: "flux" });
      expect(a).toEqual({
        ok: false,
        reason: `failed to initialize OIDC provider for issuer "${closedUrl}": discovery failed: the server could not be reached`,
      });
      const b = await oidc.verify("x.y.z", { issuerURL: liarUrl, audience: "flux" });
      expect(b).toEqual({
        ok: false,
        reason: `failed to initialize OIDC provider for issuer "${liarUrl}": the discovery document names another issuer than the issuer URL`,
      });
    } finally {
      await liar.stop(true);
    }
  });

  test.each([
    ["not-a-jwt", { ok: false, error: "token is not a JWT" }],
    [`x.${Buffer.from('{"iss":"https://a.example"}').toString("base64url")}.y`, { ok: true, iss: "https://a.example" }],
    [
      `x.${Buffer.from('{"sub":"s"}').toString("base64url")}.y`,
      { ok: false, error: "token is missing the 'iss' claim" },
    ],
    ["x.%%%.y", { ok: false, error: "failed to parse token payload: illegal base64 data" }],
  ])("unverified issuer of %p", (token, expected) => {
    expect(unverifiedIssuer(token)).toEqual(expected as never);
  });
});

describe("Google ID tokens (gcr)", () => {
  let google: TokenIssuer;
  beforeAll(async () => {
    google = await startTokenIssuer();
  });
  afterAll(() => google.stop());
  const expected = { audience: "https://example.com", email: "pusher@project.iam.gserviceaccount.com" };
  const good = {
    iss: "https://accounts.google.com",
    aud: expected.audience,
    email: expected.email,
    email_verified: true,
    sub: "1",
  };

  test.each([
    { name: "valid", claims: good, result: { ok: true } },
    { name: "issuer without scheme", claims: { ...good, iss: "accounts.google.com" }, result: { ok: true } },
    {
      name: "wrong audience",
      claims: { ...good, aud: "https://other.example" },
      result: { ok: false, reason: 'invalid ID token: unexpected "aud" claim value' },
    },
    {
      name: "wrong issuer",
      claims: { ...good, iss: "https://evil.example" },
      result: {
        ok: false,
        reason: "token issuer is \"https://evil.example\", want 'accounts.google.com' or 'https://accounts.google.com'",
      },
    },
    {
      name: "wrong email",
      claims: { ...good, email: "other@project.iam.gserviceaccount.com" },
      result: { ok: false, reason: "token email does not match the receiver's email" },
    },
    {
      name: "email not verified",
      claims: { ...good, email_verified: false },
      result: { ok: false, reason: "token email is not verified" },
    },
    {
      name: "email_verified as a string",
      claims: { ...good, email_verified: "true" },
      result: { ok: false, reason: "token email is not verified" },
    },
    {
      name: "expired",
      claims: good,
      expiresIn: now() - 3600,
      result: { ok: false, reason: 'invalid ID token: "exp" claim timestamp check failed' },
    },
  ])("$name", async ({ claims, expiresIn, result }) => {
    const verifier = new GoogleIdTokens(new KeySets(), google.jwksUrl);
    const token = await google.sign(claims, expiresIn === undefined ? {} : { expiresIn });
    expect(await verifier.verify(token, expected)).toMatchObject(result);
  });

  test("a token signed by another key, or unsigned, is refused", async () => {
    const verifier = new GoogleIdTokens(new KeySets(), google.jwksUrl);
    const { privateKey } = await generateKeyPair("RS256");
    const forged = await new SignJWT(good)
      .setProtectedHeader({ alg: "RS256", kid: "key-1" })
      .setExpirationTime("5m")
      .sign(privateKey);
    expect(await verifier.verify(forged, expected)).toEqual({
      ok: false,
      reason: "invalid ID token: signature verification failed",
    });
    const unsigned = new UnsecuredJWT(good).setExpirationTime("5m").encode();
    expect((await verifier.verify(unsigned, expected)).ok).toBe(false);
  });
});
