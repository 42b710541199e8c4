/**
 * Paths are served only as requested (issue 11, finding 9): Flux matches the exact request URI,
 * so dot segments, their percent-encoded spellings and backslashes, which Bun's request.url
 * normalises, are a 404; and routing does not depend on the Host header. Sent over raw sockets,
 * since fetch() normalises paths before sending.
 */
import { describe, expect, test } from "bun:test";
import { startStack } from "../support/stack";
import { githubExample } from "../support/payloads";
import { githubHeaders } from "../support/signer";
import { encodeRequest, sendRaw } from "../fuzz/raw-http";
import { GIT } from "../support/kinds";

const push = githubExample("push");

describe("request targets", () => {
  test("only the canonical path is served, whatever the Host header", async () => {
    await using stack = await startStack();
    const path = await stack.readyReceiver("paths", "app", {
      type: "github",
      token: "paths-token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const digest = path.slice("/hook/".length);
    const port = Number(new URL(stack.fluxhook.receiverUrl).port);
    const headers = Object.entries(githubHeaders("paths-token", push));
    const send = async (target: string, host = `127.0.0.1:${port}`) => {
      const res = await sendRaw(
        port,
        encodeRequest(
          { method: "POST", target, headers, body: new TextEncoder().encode(push), framing: "length" },
          host,
        ),
      );
      return res.status;
    };

    expect(await send(path)).toBe(200);
    const noncanonical = [
      `/hook/./${digest}`,
      `/hook/%2e/${digest}`,
      `/hook/%2E/${digest}`,
      `/x/../hook/${digest}`,
      `/x/%2e%2e/hook/${digest}`,
      `/hook\\${digest}`,
      `/hook/${digest}/`,
      `/hook/${digest}/.`,
      `/hook/${digest}/x/..`,
      `/hook//${digest}`,
      `//hook/${digest}`,
      `/hook/%${digest.slice(0, 2)}${digest.slice(2)}`,
      `/hook/%${(digest.charCodeAt(0)).toString(16)}${digest.slice(1)}`,
      `/hook/${digest}?x`,
      `/hook/${digest}#x`,
      "/hook/..",
      "/hook/%2e%2e",
    ];
    const statuses = Object.fromEntries(await Promise.all(noncanonical.map(async (t) => [t, await send(t)])));
    expect(statuses).toEqual(Object.fromEntries(noncanonical.map((t) => [t, 404])));

    // Routing reads no Host header: short, empty, odd.
    for (const host of ["a", "ab", "abc", "", "[::1]", "example.com:1", "x".repeat(200)])
      expect({ host, status: await send(path, host) }).toEqual({ host, status: 200 });
  });
});
