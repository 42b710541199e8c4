/**
 * The CLI for other CI systems, as they run it: `node action/dist/cli.js` on Node 20 (the oldest
 * it supports) outside GitHub Actions, and `fluxhook send` (server/main.ts on Bun, what the image
 * runs), delivering to fluxhook's real server. Every byte either printed is checked for the
 * token, the digests, the URLs and the ID token, and for workflow commands.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAIN, runToEnd } from "../support/process";
import type { Stack } from "../support/stack";
import { startFluxhook, type FluxhookFixture } from "./fluxhook-fixture";
import { GIT } from "../support/kinds";
import { CLI, events, makePki, startConnectProxy, startReceiver } from "./harness";
import { nodeFor } from "./node-versions";
import { parseArgs } from "../../action/cli";
import { Input } from "../../action/vocabulary";
import { version as packageVersion } from "../../package.json";

const CLI_NODE = nodeFor(20);
const TOKEN = "cli-e2e-token-0123456789";

let fixture: FluxhookFixture;
let stack: Stack;
let dir: string;
let payloadFile: string;
/** The secrets every check looks for, filled in as the Receivers become Ready. */
const secrets: string[] = [TOKEN];

beforeAll(async () => {
  fixture = await startFluxhook();
  stack = fixture.stack;
  const webapp = { apiVersion: GIT, kind: "GitRepository", name: "webapp" };
  const paths = await Promise.all([
    stack.readyReceiver("flux-system", "github-receiver", {
      type: "github",
      token: TOKEN,
      events: ["push"],
      targets: [webapp],
    }),
    // A GitLab CI job's id_tokens entry: `aud` as declared there, the project in `project_path`.
    stack.readyReceiver("flux-system", "gitlab-oidc", {
      type: "generic-oidc",
      oidcProviders: [
        {
          issuerURL: fixture.issuer.url,
          audience: "fluxhook",
          validations: [{ expression: "claims.project_path == 'group/webapp'", message: "wrong project" }],
        },
      ],
      targets: [webapp],
    }),
  ]);
  for (const path of paths) secrets.push(path.slice("/hook/".length), `${fixture.address}${path}`);
  dir = mkdtempSync(join(tmpdir(), "fluxhook-cli-"));
  payloadFile = join(dir, "push.json");
  writeFileSync(payloadFile, JSON.stringify(events().push));
});
afterAll(async () => {
  await fixture.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface CliRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` with a clean environment: a CI job's, not this test runner's. */
async function spawn(command: readonly string[], env: Record<string, string> = {}, cwd = dir): Promise<CliRun> {
  return runToEnd(command, { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...env } });
}

const runCli = (args: readonly string[], env: Record<string, string> = {}) => spawn([CLI_NODE.path, CLI, ...args], env);

/** What a CI log would show that it should not: secrets, or workflow commands nobody reads. */
function exposed(run: CliRun, extra: readonly string[] = []): string[] {
  const printed = `${run.stdout}\n${run.stderr}`;
  const found = [...secrets, ...extra]
    .filter((s) => s !== "" && printed.includes(s))
    .map((s) => `secret ${s.slice(0, 8)}…`);
  for (const line of printed.split("\n"))
    if (line.startsWith("::")) found.push(`workflow command: ${line.slice(0, 40)}`);
  return found;
}

const deliveryFlags = (receiver = "github-receiver", event = "push") => [
  "--address",
  stack.fluxhook.receiverUrl,
  "--receiver",
  receiver,
  "--event",
  event,
  "--payload-file",
  payloadFile,
];

describe("the CLI on Node 20, outside GitHub Actions", () => {
  test(`runs on Node 20 (${CLI_NODE.version})`, () => {
    if (!CLI_NODE.exact) console.log("note: Node 20 not found; the CLI tests ran on the machine's node");
    expect(CLI_NODE.version).toStartWith(CLI_NODE.exact ? "v20." : "v");
  });

  test("--help names every input as a flag, and exits 0", async () => {
    const run = await runCli(["--help"]);
    expect(run.exitCode).toBe(0);
    for (const name of [...Object.values(Input), "oidc-token-env"]) expect(run.stdout).toContain(`--${name} `);
    expect(run.stdout).toContain("Exit codes: 0 delivered, 1 a delivery failed, 2 bad usage");
  });

  test("--version prints package.json's version, and exits 0", async () => {
    const run = await runCli(["--version"]);
    expect({ exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr }).toEqual({
      exitCode: 0,
      stdout: `${packageVersion}\n`,
      stderr: "",
    });
    expect((await runCli(["send", "--version"])).stdout).toBe(`${packageVersion}\n`);
  });

  test("delivers with FLUXHOOK_TOKEN: exit 0, the results on stdout, the target annotated, no secret printed", async () => {
    const before = stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp");
    const run = await runCli(deliveryFlags(), { FLUXHOOK_TOKEN: TOKEN });
    expect(run.stderr).toContain("Delivered push to");
    expect(run.exitCode).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([
      { receiver: "flux-system/github-receiver", status: 200, "delivery-id": expect.any(String), attempts: 1 },
    ]);
    expect(stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp")).not.toBe(before);
    expect(run.stderr).toContain(`${stack.fluxhook.receiverUrl}/hook/***`);
    expect(exposed(run)).toEqual([]);
  });

  test("a refused delivery exits 1 with the receiver's reason, and prints no secret", async () => {
    const run = await runCli(deliveryFlags("github-receiver", "release"), { FLUXHOOK_TOKEN: TOKEN });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain("error: Delivery to flux-system/github-receiver");
    expect(run.stderr).toContain('event "release" is not accepted by this receiver');
    expect(exposed(run)).toEqual([]);
  });

  test("--token on the command line and a dry run: the request printed, redacted", async () => {
    const run = await runCli([
      ...deliveryFlags(),
      "--token",
      TOKEN,
      "--dry-run",
      "--headers",
      "X-Api-Key: k3y-0123456789",
    ]);
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toContain("X-Hub-Signature-256: sha256=<redacted>");
    expect(run.stderr).toContain("X-Api-Key: <redacted>");
    expect(exposed(run, ["k3y-0123456789"])).toEqual([]);
  });

  test("generic-oidc with GitLab CI's id_tokens (--oidc-token-env): 200, and the ID token is never printed", async () => {
    const idToken = await fixture.issuer.sign({
      iss: fixture.issuer.url,
      aud: "fluxhook",
      sub: "project_path:group/webapp",
      project_path: "group/webapp",
    });
    const wrong = await fixture.issuer.sign({
      iss: fixture.issuer.url,
      aud: "fluxhook",
      sub: "x",
      project_path: "evil/fork",
    });
    const flags = [
      ...deliveryFlags("gitlab-oidc"),
      "--receiver-type",
      "generic-oidc",
      "--oidc-token-env",
      "FLUX_ID_TOKEN",
    ];
    const ok = await runCli(flags, { FLUX_ID_TOKEN: idToken });
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout)[0].status).toBe(200);
    expect(exposed(ok, [idToken])).toEqual([]);
    const refused = await runCli(flags, { FLUX_ID_TOKEN: wrong });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("token validation failed: wrong project");
    expect(exposed(refused, [wrong])).toEqual([]);
  });

  test.each<{ name: string; args: string[]; env: Record<string, string>; says: string }>([
    { name: "an unknown flag", args: ["--tokn", "x"], env: {}, says: "unknown flag --tokn" },
    { name: "a flag without its value", args: ["--retries"], env: {}, says: "--retries needs a value" },
    { name: "a flag given twice", args: ["--event", "a", "--event", "b"], env: {}, says: "--event is given twice" },
    { name: "a positional argument", args: ["push"], env: {}, says: "unexpected argument #1" },
    { name: "a second positional after send", args: ["send", "push"], env: {}, says: "unexpected argument #2" },
    {
      name: "a bad value for a true-or-false flag",
      args: ["--dry-run=maybe", "--event", "push"],
      env: {},
      says: "`dry-run` must be true or false",
    },
    { name: "an unknown flag with a value", args: ["--tokn=s3cr3t"], env: {}, says: "unknown flag --tokn" },
    {
      name: "no event outside Actions",
      args: ["--address", "http://127.0.0.1:9", "--receiver", "r", "--payload", "{}"],
      env: { FLUXHOOK_TOKEN: TOKEN },
      says: "`event` is required",
    },
    {
      name: "a payload file that is missing",
      args: [
        "--address",
        "http://127.0.0.1:9",
        "--receiver",
        "r",
        "--event",
        "push",
        "--payload-file",
        "/nonexistent.json",
      ],
      env: { FLUXHOOK_TOKEN: TOKEN },
      says: "Cannot read the payload",
    },
    {
      name: "generic-oidc without a token variable",
      args: [
        "--address",
        "http://127.0.0.1:9",
        "--receiver",
        "r",
        "--event",
        "push",
        "--payload",
        "{}",
        "--receiver-type",
        "generic-oidc",
      ],
      env: {},
      says: "--oidc-token-env NAME",
    },
    {
      name: "an empty token variable",
      args: [
        "--address",
        "http://127.0.0.1:9",
        "--receiver",
        "r",
        "--event",
        "push",
        "--payload",
        "{}",
        "--receiver-type",
        "generic-oidc",
        "--oidc-token-env",
        "NOPE",
      ],
      env: {},
      says: "the variable NOPE is not set or empty",
    },
  ])("bad usage exits 2: $name", async ({ args, env, says }) => {
    const run = await runCli(args, env);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(says);
    expect(exposed(run)).toEqual([]);
  });

  test("cli.js alone in an empty directory (no package.json, nothing installed) runs", async () => {
    const alone = mkdtempSync(join(tmpdir(), "fluxhook-cli-alone-"));
    try {
      copyFileSync(CLI, join(alone, "cli.js"));
      const run = await spawn([CLI_NODE.path, join(alone, "cli.js"), "--help"], {}, alone);
      expect(run.stderr).toBe("");
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toStartWith("Usage: fluxhook send");
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });

  test("a hostile receiver's answer makes no Azure Pipelines command and no Buildkite section", async () => {
    await using receiver = startReceiver({
      respond: () =>
        new Response("ok ##vso[task.setvariable variable=deploy]pwned\n--- pwned\n+++ pwned\n~~~ pwned\n^^^ +++", {
          headers: { "X-Note": "##vso[task.complete result=Succeeded]pwned" },
        }),
    });
    const run = await runCli(
      ["--url", `${receiver.url}/hook/0123abcd`, "--event", "push", "--payload-file", payloadFile],
      { FLUXHOOK_TOKEN: TOKEN },
    );
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toContain("task.setvariable variable=deploy]pwned");
    expect(run.stderr).not.toContain("##vso[");
    // The CLI's own groups are the only sections.
    expect(run.stderr.split("\n").filter((line) => /^\s*(---|\+\+\+|~~~|\^\^\^)/.test(line))).toEqual([
      "--- Request",
      "--- Delivery",
      "--- Response: HTTP 200",
    ]);
    expect(exposed(run, ["/hook/0123abcd"])).toEqual([]);
  });

  test("inside GitHub Actions it speaks the runner's commands, masking first", async () => {
    const run = await runCli([...deliveryFlags(), "--dry-run"], { FLUXHOOK_TOKEN: TOKEN, GITHUB_ACTIONS: "true" });
    expect(run.exitCode).toBe(0);
    expect(run.stdout.split("\n")[0]).toStartWith("::add-mask::");
  });
});

describe("fluxhook send (server/main.ts, as the image's binary runs it)", () => {
  const send = (args: string[], env: Record<string, string> = {}) =>
    spawn([process.execPath, MAIN, "send", ...args], env);

  test("--version, through the same code", async () => {
    expect((await send(["--version"])).stdout).toBe(`${packageVersion}\n`);
  });

  test("--help", async () => {
    const run = await send(["--help"]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toStartWith("Usage: fluxhook send");
  });

  test("a real delivery", async () => {
    const before = stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp");
    const run = await send(deliveryFlags(), { FLUXHOOK_TOKEN: TOKEN });
    expect(run.stderr).toContain("Delivered push");
    expect(run.exitCode).toBe(0);
    expect(JSON.parse(run.stdout)[0]).toMatchObject({ receiver: "flux-system/github-receiver", status: 200 });
    expect(stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp")).not.toBe(before);
    expect(exposed(run)).toEqual([]);
  });

  test("bad usage exits 2", async () => {
    expect((await send(["--nope"])).exitCode).toBe(2);
  });

  // On Bun, a bare "undici" is Bun's stand-in without Agent or ProxyAgent: this shows the sender
  // gets the real one (transport.ts), with its CA, client certificate and CONNECT tunnel.
  test("mTLS with a private CA through an HTTP CONNECT proxy, on Bun", async () => {
    const pki = makePki();
    try {
      await using receiver = startReceiver({
        tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true },
      });
      await using proxy = await startConnectProxy();
      const run = await send(
        [
          "--address",
          `https://receiver.fluxhook.test:${receiver.port}`,
          "--receiver",
          "r",
          "--event",
          "push",
          "--payload",
          "{}",
          "--ca-file",
          pki.caFile,
          "--client-cert",
          pki.clientCertFile,
          "--client-key",
          pki.clientKeyFile,
        ],
        { FLUXHOOK_TOKEN: TOKEN, HTTPS_PROXY: proxy.url },
      );
      expect(run.exitCode).toBe(0);
      expect(receiver.requests).toHaveLength(1);
      expect(proxy.tunnels.map((t) => t.authority)).toEqual([`receiver.fluxhook.test:${receiver.port}`]);
    } finally {
      pki.cleanup();
    }
  });
});

describe("parseArgs (node:util's, strict)", () => {
  test.each<{ name: string; argv: string[]; want: Record<string, string> }>([
    {
      name: "--name value and --name=value",
      argv: ["--event", "push", "--retries=2"],
      want: { event: "push", retries: "2" },
    },
    {
      name: "a true-or-false flag alone",
      argv: ["--dry-run", "--event", "push"],
      want: { "dry-run": "true", event: "push" },
    },
    { name: "one given =false (Node 20 too)", argv: ["--fail-on-error=false"], want: { "fail-on-error": "false" } },
    { name: "one followed by its value", argv: ["--dry-run", "false"], want: { "dry-run": "false" } },
    {
      name: "repeatable flags, one line each",
      argv: ["--receiver", "a", "--receiver", "b"],
      want: { receiver: "a\nb" },
    },
    { name: "the send command first", argv: ["send", "--event", "push"], want: { event: "push" } },
  ])("$name", ({ argv, want }) => {
    const parsed = parseArgs(argv);
    expect(parsed.ok && Object.fromEntries(parsed.values)).toEqual(want);
  });

  test("an error never shows a value", () => {
    const parsed = parseArgs(["--token", "s3cr3t", "--token=t0ken"]);
    expect(parsed).toEqual({ ok: false, error: "--token is given twice" });
  });
});
