/**
 * `flux trigger receiver` (flux2 v2.9, cmd/flux/trigger_receiver.go) against fluxhook, for the
 * three types it sends: its requests are rebuilt here as it builds them (POST to the base URL with
 * its trailing "/" trimmed plus the webhook path; Content-Type application/json and User-Agent
 * flux/v<version>; body `--payload`, default `{}`; generic-hmac adds `X-Signature: sha256=<hex
 * HMAC-SHA256 of the body keyed with the token>`; generic-oidc salts the path with an empty token
 * and adds `Authorization: Bearer <token>`, audience `notification-controller` by default).
 * flux retries 404, 408, 429, 500, 502, 503 and 504 and treats every other status as final.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { webhookPath } from "../../shared";
import { startStack, TEST_CONFIG, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { GIT } from "../support/kinds";
import { signatureHeaders } from "../support/signer";

const NS = "apps";
const TOKEN = "flux-trigger-token-8c1f";
/** flux's default OIDC audience (notificationv1.DefaultOIDCAudience). */
const FLUX_OIDC_AUDIENCE = "notification-controller";
/** The statuses flux retries (isRetryableStatus); any other failure ends the command. */
const FLUX_RETRIES = new Set([404, 408, 429, 500, 502, 503, 504]);

type Trigger =
  | { type: "generic" | "generic-hmac"; name: string; token: string; payload?: string }
  | { type: "generic-oidc"; name: string; oidcToken: string; payload?: string };

/** One attempt of `flux trigger receiver <name> -n apps --url=<baseUrl> ...`, as flux sends it. */
async function fluxTrigger(baseUrl: string, t: Trigger): Promise<Response> {
  const payload = t.payload ?? "{}";
  const headers: Record<string, string> = { "Content-Type": "application/json", "User-Agent": "flux/v2.9.4" };
  const pathToken = t.type === "generic-oidc" ? "" : t.token;
  if (t.type === "generic-hmac") Object.assign(headers, signatureHeaders("generic-hmac", t.token, payload));
  if (t.type === "generic-oidc") headers.Authorization = `Bearer ${t.oidcToken}`;
  const url = baseUrl.replace(/\/+$/, "") + webhookPath(pathToken, t.name, NS);
  return fetch(url, { method: "POST", headers, body: payload });
}

let stack: Stack;
let issuer: TokenIssuer;

const oidcToken = () =>
  issuer.sign({ iss: issuer.url, aud: FLUX_OIDC_AUDIENCE, sub: "repo:org/app:ref:refs/heads/main" });

beforeAll(async () => {
  issuer = await startTokenIssuer();
  stack = await startStack({ limits: { ...TEST_CONFIG.limits, replayWindowMs: 60_000 } });
  const targets = [{ apiVersion: GIT, kind: "GitRepository", name: "app" }];
  const spec = { resources: targets };
  await Promise.all([
    stack.readyReceiver(NS, "generic", { type: "generic", token: TOKEN, secretName: "token", targets, spec }),
    stack.readyReceiver(NS, "hmac", { type: "generic-hmac", token: TOKEN, secretName: "token", targets, spec }),
    // flux's default audience is the Receiver's default too: no `audience` set.
    stack.readyReceiver(NS, "oidc", {
      type: "generic-oidc",
      oidcProviders: [{ issuerURL: issuer.url, validations: [{ expression: "claims.sub != ''", message: "no sub" }] }],
      targets,
      spec,
    }),
  ]);
});
afterAll(async () => {
  await stack.stop();
  await issuer.stop();
});

describe("flux trigger receiver", () => {
  test.each([
    ["generic, default payload {}", async (): Promise<Trigger> => ({ type: "generic", name: "generic", token: TOKEN })],
    [
      "generic, --payload",
      async (): Promise<Trigger> => ({ type: "generic", name: "generic", token: TOKEN, payload: '{"image":"a:v1"}' }),
    ],
    [
      "generic-hmac",
      async (): Promise<Trigger> => ({ type: "generic-hmac", name: "hmac", token: TOKEN, payload: '{"n":1}' }),
    ],
    [
      "generic-oidc, token from the environment",
      async (): Promise<Trigger> => ({ type: "generic-oidc", name: "oidc", oidcToken: await oidcToken() }),
    ],
  ])("%s: 200, the target annotated, with a base URL ending in /", async (_, trigger) => {
    const before = stack.requestedAt(GIT, "GitRepository", NS, "app");
    const res = await fluxTrigger(`${stack.fluxhook.receiverUrl}/`, await trigger());
    expect(res.status).toBe(200);
    expect(stack.requestedAt(GIT, "GitRepository", NS, "app")).not.toBe(before);
  });

  test.each([
    ["generic-hmac with the wrong --token", { type: "generic-hmac", name: "hmac", token: `${TOKEN}x` } as Trigger, 404],
    ["generic with another Receiver's name", { type: "generic", name: "hmac", token: TOKEN } as Trigger, 400],
  ])("%s: answered, and final or retried as flux decides", async (_, trigger, status) => {
    const res = await fluxTrigger(stack.fluxhook.receiverUrl, trigger);
    expect(res.status).toBe(status);
    // 404 (the path is the token's): flux retries, as for a Receiver not Ready yet; 400 is final.
    expect(FLUX_RETRIES.has(res.status)).toBe(status === 404);
  });

  test("generic-hmac, the same payload again within --replay-window: 409, which flux treats as final", async () => {
    const trigger: Trigger = { type: "generic-hmac", name: "hmac", token: TOKEN, payload: '{"replayed":true}' };
    expect((await fluxTrigger(stack.fluxhook.receiverUrl, trigger)).status).toBe(200);
    const again = await fluxTrigger(stack.fluxhook.receiverUrl, trigger);
    expect(again.status).toBe(409);
    expect(FLUX_RETRIES.has(again.status)).toBe(false);
    // A changed payload is a new delivery.
    expect((await fluxTrigger(stack.fluxhook.receiverUrl, { ...trigger, payload: '{"replayed":2}' })).status).toBe(200);
  });
});
