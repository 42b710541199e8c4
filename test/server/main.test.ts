/**
 * The entry point as a process: `bun server/main.ts` with flags, exit codes, and a clean SIGTERM.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
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

function run(args: string[], env: Record<string, string | undefined> = {}) {
  const cleanEnv = { ...process.env, KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: undefined, ...env };
  return Bun.spawnSync([BUN, MAIN, ...args], {
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

  test("--help exits 0 and lists the flags", () => {
    const r = run(["--help"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("--no-cross-namespace-refs");
  });

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
  test("npm start serves its demo token on 127.0.0.1 only, at the default ports", () => {
    const start = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { scripts: { start: string } }).scripts
      .start;
    const words = start.split(/\s+/);
    expect(words.slice(0, 2)).toEqual(["bun", "server/main.ts"]);
    const parsed = parseConfig(words.slice(2), {});
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

  // Node.js runs npm, the type checker and linter, and the sender (action/dist/*.js); the server and
  // its dependencies (client-node's undici, which asks for Node 22.19) run on Bun, which npm installs.
  test("package.json's engines accepts every dependency that runs on Node.js, and no older Node", () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { engines: { node: string } };
    const lock = JSON.parse(readFileSync(`${ROOT}package-lock.json`, "utf8")) as {
      packages: Record<string, { engines?: { node?: string } | string[]; dependencies?: Record<string, string> }>;
    };
    const floor = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
    expect(floor).not.toBeNull();
    const [major, minor] = [Number(floor![1]), Number(floor![2])];
    // The packages the sender's sources import (they are bundled into action/dist), and the tools.
    const imported = new Set(["typescript", "@biomejs/biome", "bun"]);
    for (const dir of ["action", "shared"])
      for (const file of readdirSync(`${ROOT}${dir}`).filter((f) => f.endsWith(".ts")))
        for (const m of readFileSync(`${ROOT}${dir}/${file}`, "utf8").matchAll(
          /from "((?:@[^/"]+\/)?[^/".][^/"]*)[^"]*"/g,
        ))
          if (!m[1]!.startsWith("node:")) imported.add(m[1]!);
    expect([...imported]).toContain("@actions/core");
    const onNode = new Map<string, string | undefined>();
    const stack = [...imported];
    while (stack.length > 0) {
      const name = stack.pop()!;
      const entry = lock.packages[`node_modules/${name}`];
      if (!entry || onNode.has(name)) continue;
      onNode.set(name, Array.isArray(entry.engines) ? undefined : entry.engines?.node);
      stack.push(...Object.keys(entry.dependencies ?? {}));
    }
    const refusing = (version: string) =>
      [...onNode].filter(([, range]) => range !== undefined && !Bun.semver.satisfies(version, range));
    expect(refusing(`${major}.${minor}.0`)).toEqual([]);
    // The floor is the sender's own: cli.js is an ES module, which Node loads from 20.18 on
    // (action/README.md), and the CI runs the CLI on Node 20.
    expect(pkg.engines.node).toBe(">=20.18");
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
