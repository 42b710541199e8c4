/**
 * The receiver's OpenAPI description (server/http/openapi.ts): the committed file is what the code
 * builds, the health listener serves it, and real answers, over real HTTP, are what it describes:
 * every status they come with is documented for their route, and every body matches its schema.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getSchemaValidator } from "elysia";
import { encodeStatusQuery, statusQueryKey, statusQueryPath, webhookPath } from "../../shared";
import { answerSchema, receiverOpenApi } from "../../server/http/openapi";
import type { HookRequestKind } from "../../server/outcome/outcomes";
import { githubExample } from "../support/payloads";
import { startStack, TEST_CONFIG, type Stack } from "../support/stack";
import { GIT, KS } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const NS = "openapi";
const TOKEN = "openapi-token";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ limits: { ...TEST_CONFIG.limits, failedBurst: 2, failedRate: 0.001 } });
  stack.api.store.create({
    apiVersion: KS,
    kind: "Kustomization",
    metadata: { name: "apps", namespace: NS },
    spec: { sourceRef: { kind: "GitRepository", name: "app" } },
  });
  const app = { kind: "GitRepository", name: "app" };
  await Promise.all(
    ["push", "budget"].map((name) =>
      stack.readyReceiver(NS, name, {
        type: "github",
        token: TOKEN,
        secretName: "token",
        targets: [{ apiVersion: GIT, ...app }],
        // A target that does not exist: its outcome is in the answers too.
        ...(name === "push" ? { spec: { resources: [app, { kind: "GitRepository", name: "gone" }] } } : {}),
      }),
    ),
  );
});
afterAll(() => stack.stop());

test("the committed server/http/openapi.json is what `npm run build:openapi` writes", () => {
  const committed = JSON.parse(readFileSync(join(import.meta.dir, "../../server/http/openapi.json"), "utf8"));
  expect(committed).toEqual(receiverOpenApi());
});

test("the health listener serves it", async () => {
  const res = await fetch(`${stack.fluxhook.healthUrl}/openapi.json`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual(receiverOpenApi());
});

describe("real answers are what it describes", () => {
  const push = githubExample("push");
  const signed = (body: string | Uint8Array, key: string | Buffer = TOKEN) => githubHeaders(key, body);
  const path = (name: string) => webhookPath(TOKEN, name, NS);
  const query = (name: string, key: string | Buffer, target = "app") => {
    const body = encodeStatusQuery({
      targets: [{ kind: "GitRepository", namespace: NS, name: target, requestedAt: "x" }],
    });
    return stack.post(statusQueryPath(path(name))!, { headers: signed(body, key), body });
  };

  const cases: { kind: HookRequestKind; send: () => ReturnType<Stack["post"]>; status: number }[] = [
    // One target annotated, one missing: a 500 that lists both.
    { kind: "delivery", send: () => stack.post(path("push"), { headers: signed(push), body: push }), status: 500 },
    { kind: "delivery", send: () => stack.post(path("push"), { method: "GET" }), status: 405 },
    { kind: "delivery", send: () => stack.post(webhookPath("x", "y", "z"), { body: "{}" }), status: 404 },
    {
      kind: "delivery",
      send: () => stack.post(path("budget"), { headers: signed(push, "wrong"), body: push }),
      status: 400,
    },
    { kind: "status query", send: () => query("push", statusQueryKey(TOKEN)), status: 200 },
    { kind: "status query", send: () => query("push", TOKEN), status: 401 },
    { kind: "status query", send: () => query("push", statusQueryKey(TOKEN), "other"), status: 403 },
    { kind: "status query", send: () => query("budget", TOKEN), status: 401 },
    { kind: "status query", send: () => query("budget", TOKEN), status: 429 },
  ];
  test.each(cases.map((c, i) => ({ ...c, name: `${c.kind} ${c.status} #${i}` })))("$name", async (c) => {
    const res = await c.send();
    expect(res.status).toBe(c.status);
    const route = c.kind === "delivery" ? "/hook/{digest}" : "/hook/{digest}/status";
    const documented = (receiverOpenApi().paths as Record<string, { post: { responses: Record<string, unknown> } }>)[
      route
    ]!.post.responses;
    expect(Object.keys(documented)).toContain(String(c.status));
    const validator = getSchemaValidator(answerSchema(c.kind, c.status));
    expect({ body: res.body, valid: validator.Check(res.body) }).toEqual({ body: res.body, valid: true });
  });
});
