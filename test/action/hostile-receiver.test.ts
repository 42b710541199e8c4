/**
 * A hostile receiver (or a proxy, or a man in the middle on http://) answers the delivery and every
 * status query with text made to be read as something else: workflow commands in both of the
 * runner's forms (`::name::` at a line's start, the legacy `##[name]` anywhere in a line),
 * `stop-commands`, ANSI escapes, CR and Unicode line separators, invisible format characters, and
 * Markdown that would break out of the job summary's table. The bundle runs as the runner runs it
 * (generic-oidc with ID tokens that expire soon, so that each query asks for a new one, registered
 * with `::add-mask::`), and runner-model.ts reads its output as the runner does.
 */
import { describe, expect, test } from "bun:test";
import { leaks, runAction, startIdTokenEndpoint, startReceiver, type ActionRun, type ReceivedRequest } from "./harness";
import { readAsRunner, renderedSummary, type RunnerView } from "./runner-model";

const HOSTILE =
  "ok\n::stop-commands::pwned\n::error::pwned\r\x1b[2K\x1b[31mred\u2028::warning::pwned" +
  "\n\n# Injected heading\n[link](https://evil.example) ![image](https://evil.example/x.png) <img src=x>";
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";
/** The legacy form, anywhere in a line: each one a command the runner would carry out. */
const LEGACY = [
  `##[set-output name=revision;]${REVISION}$(id)`,
  "##[error file=.github/workflows/deploy.yml;line=1;title=Security]Forged",
  "##[add-path]/tmp/evil",
  "##[notice title=fluxhook]rotate at https://evil.example",
  "#\u200b#[warning]split by a zero-width space",
  "##vso[task.setvariable variable=x]y",
];
const REQUESTED_AT = "2026-12-01T00:00:00.000000000Z";
const TARGET = { kind: "GitRepository", namespace: "flux-system", name: "webapp" };

/**
 * A fluxhook look-alike: the delivery's 200 lists the target; each query says it is handled but
 * not Ready yet, with `message` (given the query) as Flux's message, so that the wait runs out.
 */
function lookAlike(options: {
  headers?: Record<string, string>;
  reason?: string;
  message: (req: ReceivedRequest) => string;
}) {
  return startReceiver({
    respond: (req) => {
      if (req.path.endsWith("/status"))
        return Response.json({
          status: 200,
          reason: options.reason ?? "ok",
          targets: [
            {
              ...TARGET,
              requestedAt: REQUESTED_AT,
              found: true,
              handled: true,
              lastHandledReconcileAt: options.reason ?? REQUESTED_AT,
              ready: { status: "Unknown", reason: "Progressing", message: options.message(req) },
              revision: REVISION,
            },
          ],
        });
      return Response.json(
        {
          status: 200,
          reason: options.reason ?? "ok",
          targets: [{ ...TARGET, outcome: "annotated", requestedAt: REQUESTED_AT }],
        },
        { headers: options.headers ?? {} },
      );
    },
  });
}

/** An unsigned JWT whose payload expires in 30 s (the action asks for a fresh one before each query); `_` in it, as base64url has. */
const shortLivedToken = (n: number) =>
  [
    Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url"),
    Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 30, jti: `token-${n}` })).toString("base64url"),
    `signature_${n}_${crypto.randomUUID()}`,
  ].join(".");

/** Runs the action with generic-oidc against `receiver`, waiting `seconds` for Flux to be Ready. */
async function runWithTokens(receiverUrl: string, seconds = "3"): Promise<{ run: ActionRun; minted: string[] }> {
  const minted: string[] = [];
  await using endpoint = startIdTokenEndpoint(async () => {
    const token = shortLivedToken(minted.length);
    minted.push(token);
    return token;
  });
  const run = await runAction({
    inputs: {
      address: receiverUrl,
      receiver: "webapp",
      "receiver-type": "generic-oidc",
      "wait-for": "ready",
      "wait-timeout-seconds": seconds,
    },
    env: endpoint.env,
  });
  return { run, minted };
}

/** Everything the runner shows of the step's own log: printed lines, annotations and debug lines. */
const shown = (view: RunnerView) => [...view.printed, ...view.annotations.map((a) => a.message), ...view.debug];

/** The action's own commands only: masks, groups, the debug line, the one failure. */
function expectOnlyOwnCommands(view: RunnerView) {
  expect(view.commands.filter((c) => c.form === "##[")).toEqual([]);
  expect([...new Set(view.commands.map((c) => c.name))].sort()).toEqual([
    "add-mask",
    "debug",
    "endgroup",
    "error",
    "group",
  ]);
  expect(view.outputs).toEqual({});
  expect(view.failures).toEqual([]);
  expect(view.matchers).toEqual([]);
  expect(view.annotations).toHaveLength(1);
  expect(view.annotations[0]?.message).toStartWith("Timed out after 3 s waiting for Flux");
}

describe("text from a hostile receiver is shown inert", () => {
  test("no command, escape, line or markup of its own; no ID token printed in clear", async () => {
    await using receiver = lookAlike({
      headers: { "X-Note": "::warning::header" },
      reason: HOSTILE,
      message: () => HOSTILE,
    });
    const { run, minted } = await runWithTokens(receiver.url);
    expect(run.exitCode).toBe(1);
    // The delivery and at least two queries, each with a token asked for after the first answer.
    expect(minted.length).toBeGreaterThanOrEqual(3);

    const view = readAsRunner(run);
    expectOnlyOwnCommands(view);
    // Every ID token was masked before it could show, and shows nowhere in clear.
    for (const token of minted) expect(shown(view).filter((line) => line.includes(token))).toEqual([]);
    // No escape sequence, carriage return or Unicode separator reaches the log.
    for (const unsafe of ["\x1b", "\r", "\u2028", "\u2029"]) expect(run.stdout).not.toContain(unsafe);
    expect(view.printed.join("\n")).toContain("\\x1b[31mred");

    // The summary keeps its table: nothing renders as a heading, a link, an image or HTML.
    expect(run.summary).toContain("GitRepository flux-system/webapp");
    expect(run.summary).not.toMatch(/^#+ Injected/m);
    expect(run.summary).not.toContain("](https://evil.example");
    expect(run.summary).not.toContain("<img");
    expect(run.summary).not.toContain("\n\n#");
  });

  test("the legacy ##[ form anywhere in a line (headers, the reason, Flux's messages) is no command", async () => {
    await using receiver = lookAlike({
      headers: { "X-Rev": LEGACY[0] as string, "X-Err": LEGACY[1] as string, "X-Path": LEGACY[2] as string },
      reason: `ok ${LEGACY.join(" ")}`,
      message: () => LEGACY.join(" "),
    });
    const { run } = await runWithTokens(receiver.url);
    expect(run.exitCode).toBe(1);
    const view = readAsRunner(run);
    expectOnlyOwnCommands(view);
    // Shown, as text: the receiver's words are still there to read.
    expect(view.printed.join("\n")).toContain("set-output name=revision;]");
    for (const written of [run.stdout, run.stderr]) {
      expect(written).not.toContain("##[");
      expect(written).not.toContain("##vso[");
      expect(written).not.toContain("\u200b");
    }
  });

  test("a stop-commands in a header cannot unmask the ID tokens each later query asks for", async () => {
    // Every query's answer quotes the query's own Authorization header back in Flux's message.
    await using receiver = lookAlike({
      headers: { "X-Note": "##[stop-commands]pwned-stop" },
      message: (req) => `seen ${req.headers.authorization}`,
    });
    const { run, minted } = await runWithTokens(receiver.url);
    expect(run.exitCode).toBe(1);
    expect(minted.length).toBeGreaterThanOrEqual(3);
    const view = readAsRunner(run);
    for (const token of minted) expect(shown(view).filter((line) => line.includes(token))).toEqual([]);
    expectOnlyOwnCommands(view);
  });

  test("refreshed ID tokens quoted back are not in the job summary as it renders", async () => {
    await using receiver = lookAlike({ message: (req) => `seen ${req.headers.authorization}` });
    const { run, minted } = await runWithTokens(receiver.url);
    expect(run.exitCode).toBe(1);
    expect(minted.length).toBeGreaterThanOrEqual(3);
    const view = readAsRunner(run);
    // The runner masks the summary's lines, then it renders (`&#95;` reads as `_`).
    const summary = renderedSummary(run.summary, view.masks);
    expect(summary).toContain("GitRepository flux-system/webapp");
    for (const token of minted) expect(summary).not.toContain(token);
    // Nor anywhere the action writes, the runner's masking aside.
    expect(leaks(run, minted)).toEqual([]);
  });
});
