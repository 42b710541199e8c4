/**
 * Test harness for the bundled action: runs `action/dist/index.js` with `node`, the way the runner
 * does (INPUT_* variables with action.yml's defaults, GITHUB_EVENT_PATH, GITHUB_OUTPUT and
 * GITHUB_STEP_SUMMARY files), plus the local fixtures deliveries go to: a receiver that checks
 * signatures (test/support/signer.ts), a TLS CA made with openssl, and an HTTP CONNECT proxy.
 *
 * For an end-to-end test against another receiver (e.g. fluxhook's server):
 *
 *   const run = await runAction({ url: `${base}/hook/${digest}`, inputs: { token } });
 *   // or: inputs: { token, address: base, receiver: "app", namespace: "default" }
 *   expect(run.exitCode).toBe(0);
 *   expect(run.outputs.status).toBe("200");
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import {
  createServer as createNetServer,
  connect as netConnect,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import examples from "@octokit/webhooks-examples";
import type { Io } from "../../action/io";
import { scrub } from "../../action/report";
import { lowercaseNames, signatureHeaders } from "../support/signer";
import { nodeFor } from "./node-versions";
import { renderedSummary } from "./runner-model";

export const ROOT = resolve(import.meta.dir, "../..");
export const BUNDLE = join(ROOT, "action/dist/index.js");
export const CLI = join(ROOT, "action/dist/cli.js");
/** The runtime action.yml declares (`node24`); see node-versions.ts. */
export const ACTION_NODE = nodeFor(24);

/** action.yml, parsed: the runner's view of the action. */
export function actionYml(): {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string };
  [key: string]: unknown;
} {
  return Bun.YAML.parse(readFileSync(join(ROOT, "action.yml"), "utf8")) as never;
}

export interface RunActionOptions {
  /** Shorthand for `inputs.url`. */
  readonly url?: string;
  /** Input name → value, as in a workflow's `with:`. action.yml's defaults fill the rest. */
  readonly inputs?: Readonly<Record<string, string>>;
  /** GITHUB_EVENT_NAME; default "push". */
  readonly eventName?: string;
  /** The event file's content (GITHUB_EVENT_PATH): raw bytes, a string, or an object written as the runner does (2-space JSON). Default: a push example. */
  readonly event?: Uint8Array | string | object;
  /** Extra environment (HTTPS_PROXY, NO_PROXY, ...). The child gets nothing else from this process. */
  readonly env?: Readonly<Record<string, string>>;
  readonly bundle?: string;
  /** The node binary; default ACTION_NODE. */
  readonly node?: string;
}

export interface ActionRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Step outputs read back from GITHUB_OUTPUT. */
  readonly outputs: Record<string, string>;
  /** The job summary (GITHUB_STEP_SUMMARY) content. */
  readonly summary: string;
  /** The exact bytes of the event file the action was given. */
  readonly eventBytes: Uint8Array;
}

/** Parses the `name<<delimiter` blocks @actions/core writes to GITHUB_OUTPUT. */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i] ?? "");
    if (!m) continue;
    const [, name = "", delimiter] = m;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i] ?? "");
    out[name] = value.join("\n");
  }
  return out;
}

/** Runs the built action once with Node 24 and returns what a workflow would see. */
export function runAction(options: RunActionOptions = {}): Promise<ActionRun> {
  return startAction(options).finished;
}

/** A running action: its stdout so far, read as it comes, and what it leaves when it ends. */
export interface RunningAction {
  stdoutSoFar(): string;
  readonly finished: Promise<ActionRun>;
}

/** Starts the built action as the runner does; `finished` resolves when it has exited. */
export function startAction(options: RunActionOptions = {}): RunningAction {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-action-"));
  const eventBytes = toBytes(options.event ?? events().push);
  const eventPath = join(dir, "event.json");
  writeFileSync(eventPath, eventBytes);
  const outputPath = join(dir, "output");
  const summaryPath = join(dir, "summary.md");
  writeFileSync(outputPath, "");
  writeFileSync(summaryPath, "");

  const inputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(actionYml().inputs))
    if (spec.default !== undefined) inputs[name] = String(spec.default);
  Object.assign(inputs, options.inputs);
  if (options.url !== undefined) inputs.url = options.url;

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_EVENT_NAME: options.eventName ?? "push",
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_OUTPUT: outputPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    GITHUB_REPOSITORY: "octo-org/fluxhook-test",
    GITHUB_REPOSITORY_ID: "123456789",
    RUNNER_TEMP: dir,
    ...options.env,
  };
  // The runner upper-cases the name and keeps hyphens: INPUT_TIMEOUT-SECONDS.
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] = value;

  const child = Bun.spawn([options.node ?? ACTION_NODE.path, options.bundle ?? BUNDLE], {
    cwd: dir,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  let stdout = "";
  const decoder = new TextDecoder();
  const readStdout = (async () => {
    for await (const chunk of child.stdout as unknown as AsyncIterable<Uint8Array>)
      stdout += decoder.decode(chunk, { stream: true });
  })();
  const finished = (async () => {
    try {
      const [stderr, exitCode] = await Promise.all([new Response(child.stderr).text(), child.exited, readStdout]);
      return {
        exitCode,
        stdout,
        stderr,
        outputs: parseOutputFile(readFileSync(outputPath, "utf8")),
        summary: readFileSync(summaryPath, "utf8"),
        eventBytes,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return { stdoutSoFar: () => stdout, finished };
}

function toBytes(event: Uint8Array | string | object): Uint8Array {
  if (event instanceof Uint8Array) return event;
  return new TextEncoder().encode(typeof event === "string" ? event : JSON.stringify(event, null, 2));
}

/**
 * Where a secret appears in the action's visible output other than inside `::add-mask::`
 * commands: stdout, stderr, the summary and the outputs. Empty when nothing leaked.
 */
export function leaks(run: ActionRun, secrets: readonly string[]): string[] {
  const visible = (text: string) =>
    text
      .split("\n")
      .filter((line) => !line.startsWith("::add-mask::"))
      .join("\n");
  const places: Record<string, string> = {
    stdout: visible(run.stdout),
    stderr: visible(run.stderr),
    // As it renders: a secret written as character references (`&#95;` for `_`) shows too.
    summary: renderedSummary(run.summary, []),
    outputs: JSON.stringify(run.outputs),
  };
  const found: string[] = [];
  for (const secret of secrets)
    for (const [place, text] of Object.entries(places))
      if (secret !== "" && text.includes(secret)) found.push(`${place} contains a secret`);
  return found;
}

/** The `::add-mask::` values the action registered. */
export function maskedValues(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("::add-mask::"))
    .map((l) => l.slice("::add-mask::".length).replace(/%0A/g, "\n").replace(/%0D/g, "\r").replace(/%25/g, "%"));
}

// ---------------------------------------------------------------------------------------------
// Payloads

type Example = Record<string, unknown>;
const definitions = examples as unknown as Array<{ name: string; examples: Example[] }>;
const example = (name: string, pick: (e: Example) => boolean = () => true): Example => {
  const found = definitions.find((d) => d.name === name)?.examples.find(pick);
  if (!found) throw new Error(`no ${name} example in @octokit/webhooks-examples`);
  return found;
};

/**
 * Real event payloads, as the runner writes them to GITHUB_EVENT_PATH. Actions' `registry_package`
 * event carries the webhook `package` payload under a `registry_package` key (the webhook has both
 * names; the examples package only has `package`), so it is derived from the `package` example.
 */
export function events() {
  const pkg = example("package", (e) => e.action === "published");
  const { package: registryPackage, ...rest } = pkg;
  return {
    push: example("push", (e) => typeof e.ref === "string" && Array.isArray(e.commits) && e.commits.length > 0),
    registry_package: { ...rest, registry_package: registryPackage },
    release: example("release", (e) => e.action === "published"),
    workflow_dispatch: example("workflow_dispatch"),
  };
}

// ---------------------------------------------------------------------------------------------
// Checks made without shared/: a bug there must not hide on both sides.

/** Flux's path: /hook/ + sha256hex(token + name + namespace). */
export const fluxPath = (token: string, name: string, namespace: string) =>
  `/hook/${createHash("sha256").update(`${token}${name}${namespace}`).digest("hex")}`;

/** A signature header's value (`sha256=<hex>`), its HMAC computed by the openssl CLI over the exact bytes. */
export const opensslSignature = (algorithm: "sha1" | "sha256", key: string, body: Uint8Array) =>
  `${algorithm}=${opensslHmac(algorithm, key, body)}`;

/** HMAC computed by the openssl CLI over exact bytes. */
function opensslHmac(algorithm: "sha1" | "sha256", key: string, body: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-hmac-"));
  try {
    const file = join(dir, "body");
    writeFileSync(file, body);
    const out = Bun.spawnSync(["openssl", "dgst", `-${algorithm}`, "-hmac", key, "-r", file]);
    if (out.exitCode !== 0) throw new Error(out.stderr.toString());
    return out.stdout.toString().split(" ")[0] ?? "";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A local receiver

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

export interface ReceiverOptions {
  /** Decides the answer to the n-th request (0-based). Default: `githubReceiver(token)`. */
  readonly respond?: (req: ReceivedRequest, n: number) => Response | Promise<Response>;
  readonly tls?: { cert: string; key: string; ca?: string; requestCert?: boolean };
}

export interface Receiver extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  stop(): Promise<void>;
}

/** Verifies like Flux's `github` type: undefined when both signatures match, else the reason. */
export function githubCheck(token: string, req: ReceivedRequest): string | undefined {
  const expected = lowercaseNames(signatureHeaders("github", token, req.body));
  if (req.headers["x-hub-signature-256"] !== expected["x-hub-signature-256"]) return "signature mismatch";
  if (req.headers["x-hub-signature"] !== expected["x-hub-signature"]) return "sha1 signature mismatch";
  return undefined;
}

export function startReceiver(options: ReceiverOptions = {}): Receiver {
  const requests: ReceivedRequest[] = [];
  const respond = options.respond ?? (() => new Response("ok"));
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    ...(options.tls
      ? {
          tls: {
            cert: options.tls.cert,
            key: options.tls.key,
            ...(options.tls.ca ? { ca: options.tls.ca } : {}),
            ...(options.tls.requestCert ? { requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {}),
    async fetch(request) {
      const url = new URL(request.url);
      const received: ReceivedRequest = {
        method: request.method,
        path: url.pathname + url.search,
        headers: Object.fromEntries([...request.headers].map(([k, v]) => [k.toLowerCase(), v])),
        body: new Uint8Array(await request.arrayBuffer()),
      };
      requests.push(received);
      return respond(received, requests.length - 1);
    },
  });
  const port = server.port ?? 0;
  const stop = async () => {
    await server.stop(true);
  };
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    requests,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Test PKI (openssl, at test time)

export interface Pki {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly clientKey: string;
  cleanup(): void;
}

/** A throwaway CA, a server certificate for `hosts` and a client certificate. */
export function makePki(hosts: readonly string[] = ["receiver.fluxhook.test", "localhost", "127.0.0.1"]): Pki {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-pki-"));
  const f = (name: string) => join(dir, name);
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  writeFileSync(f("server.ext"), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  writeFileSync(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const steps = [
    ["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=fluxhook test CA"],
    ["req", ...ec, "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", `/CN=${hosts[0]}`],
    [
      "x509",
      "-req",
      "-in",
      f("server.csr"),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-set_serial",
      "2",
      "-days",
      "2",
      "-extfile",
      f("server.ext"),
      "-out",
      f("server.pem"),
    ],
    ["req", ...ec, "-keyout", f("client.key"), "-out", f("client.csr"), "-subj", "/CN=fluxhook-action-client"],
    [
      "x509",
      "-req",
      "-in",
      f("client.csr"),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-set_serial",
      "3",
      "-days",
      "2",
      "-extfile",
      f("client.ext"),
      "-out",
      f("client.pem"),
    ],
  ];
  for (const args of steps) {
    const out = Bun.spawnSync(["openssl", ...args]);
    if (out.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${out.stderr.toString()}`);
  }
  const read = (name: string) => readFileSync(f(name), "utf8");
  return {
    dir,
    caFile: f("ca.pem"),
    ca: read("ca.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server.key"),
    clientCertFile: f("client.pem"),
    clientKeyFile: f("client.key"),
    clientKey: read("client.key"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// An HTTP CONNECT proxy

export interface ConnectProxy extends AsyncDisposable {
  readonly url: string;
  /** One entry per CONNECT: the requested authority and the Proxy-Authorization header. */
  readonly tunnels: Array<{ authority: string; proxyAuthorization: string | undefined }>;
  stop(): Promise<void>;
}

/**
 * A minimal CONNECT proxy that sends every tunnel to 127.0.0.1 on the requested port, whatever
 * the host name: a host name only it can "resolve" proves the request went through it.
 */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: ConnectProxy["tunnels"] = [];
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const lines = head.subarray(0, end).toString("latin1").split("\r\n");
      const [method, authority = ""] = (lines[0] ?? "").split(" ");
      const auth = lines.find((l) => /^proxy-authorization:/i.test(l))?.replace(/^[^:]+:\s*/, "");
      tunnels.push({ authority, proxyAuthorization: auth });
      const port = Number(authority.split(":").pop());
      if (method !== "CONNECT" || !port) {
        client.end("HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
      }
      const upstream = netConnect(port, "127.0.0.1", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  return { url: `http://127.0.0.1:${port}`, tunnels, stop, [Symbol.asyncDispose]: stop };
}

// ---------------------------------------------------------------------------------------------
// The runner's ID-token endpoint

export interface IdTokenEndpoint extends AsyncDisposable {
  /** What the runner puts in the job's environment for `permissions: id-token: write`. */
  readonly env: { ACTIONS_ID_TOKEN_REQUEST_URL: string; ACTIONS_ID_TOKEN_REQUEST_TOKEN: string };
  /** The audience of each request, as the endpoint received it. */
  readonly audiences: Array<string | null>;
  stop(): Promise<void>;
}

/**
 * A stand-in for the runner's ID-token service, as `core.getIDToken` calls it: GET
 * ACTIONS_ID_TOKEN_REQUEST_URL (which already has a query) + `&audience=...`, with
 * `Authorization: Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the answer is `{"value": "<JWT>"}`.
 * `mint` makes the token for the requested audience (a local issuer signs it).
 */
export function startIdTokenEndpoint(mint: (audience: string) => Promise<string>): IdTokenEndpoint {
  const requestToken = `runtime-${crypto.randomUUID()}`;
  const audiences: Array<string | null> = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/idtoken" || url.searchParams.get("api-version") !== "2.0")
        return new Response("not found", { status: 404 });
      if (req.headers.get("authorization") !== `Bearer ${requestToken}`) return new Response("no", { status: 401 });
      const audience = url.searchParams.get("audience");
      audiences.push(audience);
      return Response.json({ count: 1, value: await mint(audience ?? "") });
    },
  });
  const stop = async () => {
    await server.stop(true);
  };
  return {
    env: {
      ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${server.port}/idtoken?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
    },
    audiences,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

// ---------------------------------------------------------------------------------------------
// An Io that records, for `run` in process

export interface RecordedIo {
  readonly io: Io;
  /** Every call in order, as `kind:text` (`info:…`, `fail:…`, `setSecret:…`, `group:…`). */
  readonly calls: string[];
  readonly failures: string[];
  readonly warnings: string[];
  readonly outputs: Map<string, string>;
  /** Job summary tables written. */
  readonly summaries: Array<{ heading: string | undefined; rows: readonly (readonly string[])[] }>;
}

/** An Io that keeps what `run` reports, for tests that run it in process (no runner, no bundle). */
export function recordingIo(): RecordedIo {
  const calls: string[] = [];
  const failures: string[] = [];
  const warnings: string[] = [];
  const outputs = new Map<string, string>();
  const summaries: RecordedIo["summaries"] = [];
  const secrets: string[] = [];
  // As the real Ios do: nothing recorded carries a value given to setSecret.
  const hide = (text: string) => scrub(text, secrets);
  const io: Io = {
    info: (line) => calls.push(`info:${hide(line)}`),
    warning: (message) => {
      calls.push(`warning:${hide(message)}`);
      warnings.push(hide(message));
    },
    fail: (message) => {
      calls.push(`fail:${hide(message)}`);
      failures.push(hide(message));
    },
    debug: (message) => calls.push(`debug:${hide(message)}`),
    startGroup: (name) => calls.push(`group:${hide(name)}`),
    endGroup: () => calls.push("endgroup:"),
    setSecret: (secret) => {
      calls.push(`setSecret:${secret}`);
      secrets.push(secret);
    },
    scrub: hide,
    setOutput: (name, value) => {
      calls.push(`output:${name}`);
      outputs.set(name, hide(value));
    },
    writeSummary: async (rows, heading) => {
      calls.push(`summary:${heading ?? ""}`);
      summaries.push({ heading, rows: rows.map((row) => row.map(hide)) });
    },
  };
  return { io, calls, failures, warnings, outputs, summaries };
}
