/**
 * `promtool check metrics` on a real scrape: a server against the test API server, after a
 * Receiver became Ready and took an accepted and a rejected delivery, so that every series exists.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { githubExample } from "../support/payloads";
import { PROMTOOL, promtool, REQUIRE_PROMTOOL } from "../support/promtool";
import { startStack, type Stack } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const TOKEN = "promtool-token";
const NS = "promtool";
const push = githubExample("push");

let stack: Stack;
beforeAll(async () => {
  if (!PROMTOOL) return;
  stack = await startStack();
  const path = await stack.readyReceiver(NS, "github", {
    type: "github",
    token: TOKEN,
    targets: [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }],
  });
  for (const token of [TOKEN, "wrong"]) {
    await stack.post(path, {
      headers: githubHeaders(token, push, { delivery: crypto.randomUUID() }),
      body: push,
    });
  }
});
afterAll(() => stack?.stop());

test.if(REQUIRE_PROMTOOL)("promtool is installed (CI)", () => {
  expect(PROMTOOL).not.toBeNull();
});

test.if(PROMTOOL !== null)("promtool check metrics finds nothing in a real scrape", async () => {
  const text = await (await fetch(`${stack.fluxhook.metricsUrl}/metrics`)).text();
  expect(text).toContain("gotk_reconcile_duration_seconds_bucket{");
  expect(promtool(["check", "metrics"], text)).toEqual({ exitCode: 0, output: "" });
});

test.if(PROMTOOL !== null)("promtool check metrics does find a problem (the check can fail)", () => {
  const bad = "# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n";
  const r = promtool(["check", "metrics"], bad);
  expect(r.output).toContain('counter metrics should have "_total" suffix');
});
