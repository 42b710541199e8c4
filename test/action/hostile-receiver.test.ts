/**
 * A hostile receiver (or a proxy, or a man in the middle on http://) answers the delivery and every
 * status query with text made to be read as something else: workflow commands, `::stop-commands::`,
 * ANSI escapes, CR and Unicode line separators, and Markdown that would break out of the job
 * summary's table. The bundle runs as the runner runs it (generic-oidc, so that each ID token it
 * asks for is registered with `::add-mask::`), and runnerView reads stdout as the runner does.
 */
import { describe, expect, test } from "bun:test";
import { runAction, runnerView, startIdTokenEndpoint, startReceiver, type ReceivedRequest } from "./harness";

const HOSTILE =
  "ok\n::stop-commands::pwned\n::error::pwned\r\x1b[2K\x1b[31mred\u2028::warning::pwned" +
  "\n\n# Injected heading\n[link](https://evil.example) ![image](https://evil.example/x.png) <img src=x>";
const REQUESTED_AT = "2026-12-01T00:00:00.000000000Z";
const TARGET = { kind: "GitRepository", namespace: "flux-system", name: "webapp" };

/** A fluxhook look-alike: the delivery's 200 lists the target; each query says it is not handled yet. */
function hostile(req: ReceivedRequest): Response {
  if (req.path.endsWith("/status"))
    return Response.json({
      status: 200,
      reason: HOSTILE,
      targets: [
        {
          ...TARGET,
          requestedAt: REQUESTED_AT,
          found: true,
          handled: false,
          lastHandledReconcileAt: HOSTILE,
          ready: { status: "Unknown", reason: "Progressing", message: HOSTILE },
          revision: HOSTILE,
        },
      ],
    });
  return Response.json(
    { status: 200, reason: HOSTILE, targets: [{ ...TARGET, outcome: "annotated", requestedAt: REQUESTED_AT }] },
    { headers: { "X-Note": "::warning::header" } },
  );
}

/** An unsigned JWT whose payload expires in 30 s: the action asks for a fresh one before each query. */
const shortLivedToken = (n: number) =>
  [
    Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url"),
    Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 30, jti: `token-${n}` })).toString("base64url"),
    `signature-${n}-${crypto.randomUUID()}`,
  ].join(".");

describe("text from a hostile receiver is shown inert", () => {
  test("no command, escape, line or markup of its own; no ID token printed in clear", async () => {
    const minted: string[] = [];
    await using endpoint = startIdTokenEndpoint(async () => {
      const token = shortLivedToken(minted.length);
      minted.push(token);
      return token;
    });
    await using receiver = startReceiver({ respond: hostile });
    const run = await runAction({
      inputs: {
        address: receiver.url,
        receiver: "webapp",
        "receiver-type": "generic-oidc",
        "wait-for": "reconciled",
        "wait-timeout-seconds": "3",
      },
      env: endpoint.env,
    });
    expect(run.exitCode).toBe(1);
    // The delivery and at least two queries, each with a token asked for after the first answer.
    expect(minted.length).toBeGreaterThanOrEqual(3);

    const view = runnerView(run.stdout);
    // Only the action's own commands: its masks, groups and the one failure.
    expect([...new Set(view.commands.map((c) => c.name))].sort()).toEqual([
      "add-mask",
      "debug",
      "endgroup",
      "error",
      "group",
    ]);
    const errors = view.commands.filter((c) => c.name === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.value).toStartWith("Timed out after 3 s waiting for Flux");
    // Every ID token was masked before it could show, and shows nowhere in clear.
    const shown = [...view.printed, ...view.commands.filter((c) => c.name !== "add-mask").map((c) => c.value)];
    for (const token of minted) expect(shown.filter((line) => line.includes(token))).toEqual([]);
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
});
