/**
 * The entry point as a process: `bun server/main.ts` with flags, exit codes, and a clean SIGTERM.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../server/config";
import { startKubeApiServer } from "../kube";
import { waitFor } from "../support/stack";
import { LOOPBACK_PORTS, MAIN, ROOT, spawnServer } from "../support/process";

const BUN = process.execPath;

/** The TCP ports a process listens on (Linux: its socket inodes matched against /proc/net/tcp{,6}). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(m[1]!);
    } catch {} // closed meanwhile
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    for (const row of readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1)) {
      const cols = row.trim().split(/\s+/);
      // cols: sl local_address rem_address st ... inode (10th); st 0A is LISTEN.
      if (cols[3] === "0A" && inodes.has(cols[9]!)) ports.add(Number.parseInt(cols[1]!.split(":")[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** A module only a running server needs: the three heavy packages, and server.ts itself. */
const SERVER_MODULE = /\/(node_modules\/(?:@kubernetes\/client-node|elysia|prom-client)|server\/server\.ts)(?:\/|$)/;

function run(args: string[], env: Record<string, string | undefined> = {}, command = [MAIN]) {
  const cleanEnv = { ...process.env, KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: undefined, ...env };
  return Bun.spawnSync([BUN, ...command, ...args], {
    env: cleanEnv as unknown as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
  });
}

describe("server/main.ts", () => {
  test.each([
    [["--nope"], "unknown flag --nope"],
    [["--log-level=verbose"], 'invalid value "verbose" for flag --log-level'],
    [["--receiverAddr", "nowhere"], 'invalid value "nowhere" for flag --receiverAddr'],
  ])("%p exits 2 with a message", (args, message) => {
    const r = run(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain(message);
  });

  test("no kubeconfig and not in a cluster exits 1 and says what to set", () => {
    const r = run(["--receiverAddr=127.0.0.1:0", "--health-addr=127.0.0.1:0"], { HOME: "/nonexistent" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("set KUBECONFIG or run in a cluster");
  });

  test("--version prints package.json's version and exits 0", () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string };
    const r = run(["--version"]);
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toEqual({
      exitCode: 0,
      stdout: `fluxhook ${version}\n`,
    });
  });

  test("--help exits 0 and lists the flags", () => {
    const r = run(["--help"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("--no-cross-namespace-refs");
  });

  // The server's modules are imported only once the flags ask for a server, so a CI step that
  // runs `fluxhook send` or `--version` does not pay for loading them.
  test.each([[["--version"]], [["--help"]], [["--nope"]], [["send", "--version"]], [["send", "--nope"]]])(
    "%p answers without loading client-node, Elysia or prom-client",
    (args) => {
      const r = run(["--preload", `${ROOT}test/server/loaded-modules-fixture.ts`, MAIN, ...args], {}, []);
      const line = r.stderr
        .toString()
        .split("\n")
        .find((text) => text.startsWith("loaded-modules "));
      const loaded = JSON.parse(line!.slice("loaded-modules ".length)) as string[];
      // The list holds the modules it should: what answers the flags is there.
      expect(loaded).toContain(`${ROOT}server/config.ts`);
      const serverModules = new Set(loaded.flatMap((path) => SERVER_MODULE.exec(path)?.[1] ?? []));
      expect([...serverModules]).toEqual([]);
    },
  );

  test("--metrics-addr=0 --health-addr=0: starts, serves webhooks, and opens no other listener", async () => {
    await using api = await startKubeApiServer();
    const server = spawnServer(["--receiverAddr=127.0.0.1:0", "--metrics-addr=0", "--health-addr=0"], {
      env: { KUBECONFIG: api.writeKubeconfig() },
    });
    const started = await server.started();
    expect(started).toMatchObject({ metricsAddr: "off", healthAddr: "off" });
    await waitFor("a webhook answered", async () => {
      const res = await fetch(`${started.receiverAddr}/hook/unknown`, { method: "POST" });
      return res.status === 404;
    });
    expect((await fetch(`${started.receiverAddr}/metrics`)).status).toBe(404);
    expect(listeningPorts(server.proc.pid)).toEqual([Number(new URL(started.receiverAddr).port)]);
    server.proc.kill("SIGTERM");
    expect(await server.proc.exited).toBe(0);
  });

  test("starts against KUBECONFIG, becomes ready, and exits 0 on SIGTERM", async () => {
    await using api = await startKubeApiServer();
    const kubeconfig = api.writeKubeconfig();
    const server = spawnServer([...LOOPBACK_PORTS, "--log-level=debug"], { env: { KUBECONFIG: kubeconfig } });
    const { proc, lines } = server;
    const started = await server.started();
    await waitFor("readyz 200", async () => (await fetch(`${started.healthAddr}/readyz`)).status === 200);
    expect((await fetch(`${started.healthAddr}/healthz`)).status).toBe(200);
    expect((await fetch(`${started.receiverAddr}/hook/unknown`, { method: "POST" })).status).toBe(404);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await server.stderrDone; // the last lines are written at exit: read them all first
    expect(lines.some((l) => l.msg === "shutting down")).toBe(true);
  });
});

describe("a newcomer's first minutes", () => {
  test("an edit of the receivers file prints the URL of each Receiver it adds or changes, and says which are gone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fluxhook-reload-"));
    const file = join(dir, "receivers.yaml");
    const example = readFileSync(`${ROOT}examples/receivers.yaml`, "utf8");
    writeFileSync(file, example);
    const server = spawnServer([`--receivers-file=${file}`, "--dry-run", ...LOOPBACK_PORTS]);
    let stdout = "";
    const reader = (async () => {
      for await (const chunk of server.proc.stdout as unknown as AsyncIterable<Uint8Array>)
        stdout += new TextDecoder().decode(chunk);
    })();
    const printedLines = () => stdout.split("\n").filter((l) => l.startsWith("receiver "));
    try {
      await waitFor("the example receivers' URLs", () => printedLines().length === 2);
      const added = `---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: added
  namespace: flux-system
spec:
  type: generic
  secretRef:
    name: webhook-token
  resources:
    - kind: GitRepository
      name: webapp
`;
      writeFileSync(file, example + added);
      const url = await waitFor(
        "the added Receiver's URL",
        () =>
          /^receiver flux-system\/added \(generic, ready\): (http:\/\/127\.0\.0\.1:\d+\/hook\/[0-9a-f]{64})$/m.exec(
            stdout,
          )?.[1],
      );
      expect((await fetch(url, { method: "POST", body: "{}" })).status).toBe(200);
      // Only the new line: the two it printed before are unchanged.
      expect(printedLines()).toHaveLength(3);

      writeFileSync(file, example);
      await waitFor("the removal", () => stdout.includes("receiver flux-system/added: no longer served\n"));
      expect(printedLines()).toHaveLength(4);
    } finally {
      server.proc.kill("SIGTERM");
      await server.proc.exited;
      await reader;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("npm start serves its demo token on 127.0.0.1 only, at the default ports", () => {
    const start = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { scripts: { start: string } }).scripts
      .start;
    const words = start.split(/\s+/);
    // scripts/bun.js is `bun` (test/deploy/first-run.test.ts runs it without install scripts).
    expect(words.slice(0, 3)).toEqual(["node", "scripts/bun.js", "server/main.ts"]);
    const parsed = parseConfig(words.slice(3), {});
    const defaults = parseConfig([], {});
    if (parsed.ok !== true || defaults.ok !== true) throw new Error("npm start's flags do not parse");
    const { config } = parsed;
    for (const addr of [config.receiverAddr, config.healthAddr, config.metricsAddr])
      expect(addr?.host).toBe("127.0.0.1");
    expect([config.receiverAddr.port, config.healthAddr?.port, config.metricsAddr?.port]).toEqual([
      defaults.config.receiverAddr.port,
      defaults.config.healthAddr?.port,
      defaults.config.metricsAddr?.port,
    ]);
    expect(config.dryRun).toBe(true);
  });

  test.each(["--receiverAddr", "--health-addr", "--metrics-addr"])(
    "an address in use (%s) is one clear line on stderr and exit 1",
    (flag) => {
      using taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
      const ports: Record<string, string> = {
        "--receiverAddr": "127.0.0.1:0",
        "--health-addr": "127.0.0.1:0",
        "--metrics-addr": "127.0.0.1:0",
        [flag]: `127.0.0.1:${taken.port}`,
      };
      const r = run([
        "--receivers-file=examples/receivers.yaml",
        "--dry-run",
        ...Object.entries(ports).map(([f, v]) => `${f}=${v}`),
      ]);
      expect(r.exitCode).toBe(1);
      const errors = r.stderr
        .toString()
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.startsWith("{"));
      expect(errors).toEqual([
        `fluxhook: ${flag} 127.0.0.1:${taken.port} is already in use; stop what listens there or choose another address`,
      ]);
      // The one line is all: no stack trace anywhere.
      expect(r.stderr.toString()).not.toContain("    at ");
      expect(r.stdout.toString()).not.toContain("    at ");
    },
  );
});
