/**
 * A local token issuer for tests: an RSA key that signs JWTs, and a Bun.serve on port 0 that
 * publishes its OIDC discovery document and JWKS, counting the requests it gets (to check
 * caching). The same server stands in for Google's key endpoint (gcr) through --gcr-jwks-url.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export interface TokenIssuer {
  /** The issuer URL (`http://127.0.0.1:<port>` and the path it was started with), as a Receiver's oidcProviders name it. */
  readonly url: string;
  readonly jwksUrl: string;
  /** Requests served so far, per endpoint. */
  readonly requests: { discovery: number; jwks: number };
  /** Signs `claims` with the current key; `exp` defaults to five minutes from now. */
  sign(claims: JWTPayload, options?: { expiresIn?: number | string; kid?: string }): Promise<string>;
  /** A new key with a new `kid`; the JWKS publishes both from now on. */
  rotate(): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Key {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/**
 * `path` puts the issuer below the root, as GitHub Enterprise Server's Actions issuer is
 * (`https://HOST/_services/token`): discovery is then at `<path>/.well-known/openid-configuration`.
 */
export async function startTokenIssuer(options: { path?: string } = {}): Promise<TokenIssuer> {
  const prefix = options.path ?? "";
  const keys: Key[] = [await newKey("key-1")];
  const requests = { discovery: 0, jwks: 0 };
  let url = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === `${prefix}/.well-known/openid-configuration`) {
        requests.discovery++;
        return Response.json({
          issuer: url,
          jwks_uri: `${url}/jwks`,
          id_token_signing_alg_values_supported: ["RS256"],
          authorization_endpoint: `${url}/auth`,
          response_types_supported: ["id_token"],
          subject_types_supported: ["public"],
        });
      }
      if (path === `${prefix}/jwks`) {
        requests.jwks++;
        return Response.json({ keys: keys.map((k) => k.jwk) });
      }
      return new Response("not found", { status: 404 });
    },
  });
  url = `http://127.0.0.1:${server.port}${prefix}`;

  const issuer: TokenIssuer = {
    url,
    jwksUrl: `${url}/jwks`,
    requests,
    async sign(claims, options = {}) {
      const key = keys[keys.length - 1]!;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: options.kid ?? key.kid })
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? "5m")
        .sign(key.privateKey);
    },
    async rotate() {
      keys.push(await newKey(`key-${keys.length + 1}`));
    },
    async stop() {
      await server.stop(true);
    },
    [Symbol.asyncDispose]() {
      return issuer.stop();
    },
  };
  return issuer;
}
