/**
 * action/main.ts's `run`, in process with an injected Io, environment and inputs: what it reports
 * before anything is sent. Every problem found before sending (a wrong input, a file that cannot be
 * read, a proxy variable that is no proxy) is reported in one failure, so a user fixes them all in
 * one round; a lone problem of a file or the proxy reads as itself.
 */
import { describe, expect, test } from "bun:test";
import { run } from "../../action/main";
import { Exit, type Env } from "../../action/vocabulary";
import { recordingIo } from "./harness";

const TOKEN = "main-test-token-0123456789";
/** A receiver no test reaches: every case here ends before anything is sent. */
const ADDRESS = "http://receiver.fluxhook.test:8080";
const BASE: Readonly<Record<string, string>> = { token: TOKEN, address: ADDRESS, receiver: "webapp", event: "push" };
const ENV: Env = { GITHUB_EVENT_NAME: "push" };

async function runWith(inputs: Readonly<Record<string, string>>, env: Env = ENV) {
  const recorded = recordingIo();
  const code = await run({
    get: (name) => inputs[name] ?? "",
    env,
    io: recorded.io,
    idToken: async () => ({ ok: false, usage: true, error: "no ID token in this test" }),
  });
  return { code, ...recorded };
}

const NO_PAYLOAD_FILE = 'Cannot read the payload from "/nonexistent/p.json" (payload-file): ENOENT.';
const NO_CA_FILE = 'Cannot read `ca-file` from "/nonexistent/ca.pem" (ENOENT).';
const SOCKS_PROXY = "HTTP_PROXY is set but is not an http:// or https:// proxy URL.";

describe("problems found before sending are reported together", () => {
  test("an input error, an unreadable file and a bad proxy: one failure lists all three", async () => {
    const { code, failures, calls } = await runWith(
      { ...BASE, retries: "many", "payload-file": "/nonexistent/p.json" },
      { ...ENV, HTTP_PROXY: "socks5://proxy:1080" },
    );
    expect({ code, failures, planned: calls.includes("group:Request") }).toEqual({
      code: Exit.usage,
      failures: [
        [
          "Invalid inputs:",
          `  - Input \`retries\` must be a whole number from 0 to 10.`,
          `  - ${SOCKS_PROXY}`,
          `  - ${NO_PAYLOAD_FILE}`,
        ].join("\n"),
      ],
      planned: false,
    });
  });

  test("every file that cannot be read is named, not only the first", async () => {
    const { code, failures } = await runWith({
      ...BASE,
      "payload-file": "/nonexistent/p.json",
      "ca-file": "/nonexistent/ca.pem",
    });
    expect({ code, failures }).toEqual({
      code: Exit.usage,
      failures: [["Invalid inputs:", `  - ${NO_PAYLOAD_FILE}`, `  - ${NO_CA_FILE}`].join("\n")],
    });
  });

  test.each<{ name: string; inputs: Record<string, string>; env: Record<string, string>; says: string | RegExp }>([
    {
      name: "an unreadable file",
      inputs: { payload: "{}", "ca-file": "/nonexistent/ca.pem" },
      env: {},
      says: NO_CA_FILE,
    },
    { name: "a bad proxy", inputs: { payload: "{}" }, env: { HTTP_PROXY: "socks5://proxy:1080" }, says: SOCKS_PROXY },
    {
      name: "a payload that is not JSON",
      inputs: { payload: "{oops" },
      env: {},
      says: /^Cannot send the payload: the payload is not valid JSON/,
    },
  ])("$name alone reads as itself", async ({ inputs, env, says }) => {
    const { code, failures } = await runWith({ ...BASE, ...inputs }, { ...ENV, ...env });
    expect({ code, failures }).toEqual({
      code: Exit.usage,
      failures: [typeof says === "string" ? says : expect.stringMatching(says)],
    });
  });

  test("input errors alone are listed under Invalid inputs", async () => {
    const { code, failures } = await runWith({ ...BASE, payload: "{}", retries: "many", "wait-for": "healthy" });
    expect({ code, failures }).toEqual({
      code: Exit.usage,
      failures: [
        [
          "Invalid inputs:",
          "  - Input `retries` must be a whole number from 0 to 10.",
          '  - Input `wait-for` must be one of none, reconciled, ready; got "healthy".',
        ].join("\n"),
      ],
    });
  });

  test("every secret is registered before the failure is reported", async () => {
    const { calls } = await runWith(
      { ...BASE, retries: "many", "payload-file": "/nonexistent/p.json" },
      { ...ENV, HTTPS_PROXY: "http://ci:pr0xy-pass@proxy:3128" },
    );
    const firstFailure = calls.findIndex((call) => call.startsWith("fail:"));
    expect(firstFailure).toBeGreaterThan(0);
    expect(calls.slice(0, firstFailure)).toEqual(
      expect.arrayContaining([`setSecret:${TOKEN}`, "setSecret:pr0xy-pass"]),
    );
    expect(calls.slice(0, firstFailure).every((call) => call.startsWith("setSecret:"))).toBe(true);
  });
});
