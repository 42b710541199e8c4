/**
 * Sender text in what fluxhook shows (issue 11, finding 6): long strings a sender controls, put
 * where validators quote them (event headers, content types, methods, CDEvent types and schema
 * URIs, token issuers, JSON that does not parse, values a filter fails on, delivery ids), sent to a
 * Receiver of each type. Every sender string is made of the letters X, Q and Z, which fixed texts
 * never run together, so the longest run of them in an output is the most sender text it holds.
 *
 * Invariant: no answer, log line, Event or /deliveries entry holds a run of more than
 * MAX_OUTCOME_TEXT_CHARS (200) of those letters.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { ReceiverType } from "../../shared";
import { startStack, TEST_CONFIG, waitFor, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { encodeRequest, sendRaw } from "./raw-http";
import { MAX_OUTCOME_TEXT_CHARS } from "../../server/limits";
import { params } from "./settings";
import { GIT } from "../support/kinds";
import { signature } from "../support/signer";

const NS = "sender-text";
const TOKEN = "sender-text-token-9d41";
const MARKER_RUN = new RegExp(`[XQZ]{${MAX_OUTCOME_TEXT_CHARS + 1},}`);

const RECEIVERS: Record<string, { type: ReceiverType } & Record<string, unknown>> = {
  cdevents: { type: "cdevents", events: ["dev.cdevents.artifact.published.0.2.0"] },
  github: { type: "github", events: ["push"] },
  generic: { type: "generic", resourceFilter: "int(req.s) > 0 && req.s.matches(req.p)" },
  dockerhub: { type: "dockerhub" },
  "generic-oidc": { type: "generic-oidc" },
  gitlab: { type: "gitlab", events: ["Push Hook"] },
};

let stack: Stack;
let issuer: TokenIssuer;
let port: number;
const paths: Record<string, string> = {};
const answers: string[] = [];

beforeAll(async () => {
  issuer = await startTokenIssuer();
  const unlimited = { ...TEST_CONFIG.limits, failedRate: 0 };
  stack = await startStack({ limits: unlimited });
  port = Number(new URL(stack.fluxhook.receiverUrl).port);
  const targets = [{ apiVersion: GIT, kind: "GitRepository", name: "app" }];
  const oidcProviders = [
    { issuerURL: issuer.url, audience: "flux", validations: [{ expression: "true", message: "m" }] },
  ];
  for (const [name, { type, ...spec }] of Object.entries(RECEIVERS))
    paths[name] = await stack.readyReceiver(NS, name, {
      type,
      targets,
      ...(type === "generic-oidc" ? { oidcProviders } : { token: TOKEN, secretName: "token" }),
      spec,
    });
});
afterAll(async () => {
  await stack?.stop();
  await issuer?.stop();
});

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Where a sender string goes: the receiver, and the request that carries it. */
type Shape = (s: string) => { receiver: string; method?: string; headers: [string, string][]; body: Uint8Array };

const SHAPES: Record<string, Shape> = {
  "cdevents context.type": (s) => ({ receiver: "cdevents", headers: [], body: json({ context: { type: s } }) }),
  "cdevents non-string type": (s) => ({
    receiver: "cdevents",
    headers: [],
    body: json({ context: { type: { [s]: [s] } } }),
  }),
  "cdevents schemaUri": (s) => ({
    receiver: "cdevents",
    headers: [],
    body: json({ context: { type: "dev.cdevents.artifact.published.0.2.0", schemaUri: s } }),
  }),
  "Ce-Type header": (s) => ({ receiver: "cdevents", headers: [["Ce-Type", s]], body: json({}) }),
  "X-GitHub-Event header": (s) => {
    const body = '{"ref":"refs/heads/main"}';
    return {
      receiver: "github",
      headers: [
        ["Content-Type", "application/json"],
        ["X-GitHub-Event", s],
        ["X-GitHub-Delivery", s],
        ["X-Hub-Signature-256", signature(TOKEN, body)],
      ],
      body: new TextEncoder().encode(body),
    };
  },
  "Content-Type header": (s) => ({ receiver: "github", headers: [["Content-Type", `text/${s}`]], body: json({}) }),
  method: (s) => ({ receiver: "github", method: s, headers: [], body: json({}) }),
  "JSON that does not parse": (s) => ({
    receiver: "dockerhub",
    headers: [],
    body: new TextEncoder().encode(`{"push_data": ${s}}`),
  }),
  "a value a filter fails on": (s) => ({
    receiver: "generic",
    headers: [["Content-Type", "application/json"]],
    body: json({ s, p: `(${s}` }),
  }),
  "an unverified token's issuer": (s) => ({
    receiver: "generic-oidc",
    headers: [["Authorization", `Bearer ${b64url({ alg: "RS256" })}.${b64url({ iss: `https://${s}` })}.sig`]],
    body: json({}),
  }),
  "X-Gitlab-Event header": (s) => ({
    receiver: "gitlab",
    headers: [
      ["X-Gitlab-Token", TOKEN],
      ["X-Gitlab-Event", s],
    ],
    body: json({}),
  }),
};

/** Header values must fit Bun's 16 KiB of headers; bodies go up to the 3 MiB cap. */
const inHeader = (name: string) => / header|method|issuer/.test(name);

async function send(shape: string, s: string) {
  const { receiver, method, headers, body } = SHAPES[shape]!(s);
  const res = await sendRaw(
    port,
    encodeRequest(
      { method: method ?? "POST", target: paths[receiver]!, headers, body, framing: "length" },
      `127.0.0.1:${port}`,
    ),
  );
  answers.push(res.body);
  return res;
}

const senderString = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom("X", "Q", "Z"), minLength: min, maxLength: max });

describe("sender text is cut to 200 characters before it is shown", () => {
  test("generated sender strings in every shape", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(SHAPES)), senderString(150, 6000), async (shape, s) => {
        const res = await send(shape, s);
        // Bun's HTTP layer closes the connection on an overlong method, before the app sees it.
        if (shape !== "method") expect(res.status).toBeGreaterThanOrEqual(200);
        expect(res.body).not.toMatch(MARKER_RUN);
      }),
      params(120),
    );
  });

  test("3 MiB of sender text in a body (the report's cdevents context.type)", async () => {
    for (const shape of Object.keys(SHAPES).filter((n) => !inHeader(n))) {
      // Near the 3 MiB cap once the body wraps it (some bodies carry it twice).
      const twice = shape === "a value a filter fails on" || shape === "cdevents non-string type";
      const big = "XQZ".repeat(twice ? 520_000 : 1_040_000);
      const res = await send(shape, big);
      expect(res.status).toBe(shape === "a value a filter fails on" ? 500 : 400);
      expect(res.body.length).toBeLessThan(1000);
    }
  });

  test("no log line, Event or /deliveries entry holds more of it", async () => {
    expect(answers.length).toBeGreaterThan(100);
    for (const line of stack.logs) expect(JSON.stringify(line)).not.toMatch(MARKER_RUN);
    const deliveries = await (await fetch(`${stack.fluxhook.healthUrl}/deliveries?format=json`)).text();
    expect(deliveries).toContain("XQZ");
    expect(deliveries).not.toMatch(MARKER_RUN);
    const page = await (await fetch(`${stack.fluxhook.healthUrl}/deliveries`)).text();
    expect(page).not.toMatch(MARKER_RUN);
    await waitFor("Events to be written", () => stack.api.store.list("v1", "Event", NS).length > 0);
    const events = stack.api.store.list("v1", "Event", NS);
    expect(JSON.stringify(events)).toContain("XQZ");
    for (const e of events) expect(JSON.stringify(e)).not.toMatch(MARKER_RUN);
  });
});
