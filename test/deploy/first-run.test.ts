/**
 * A new user's first minutes, as README.md's first section tells them: one Node.js requirement in
 * README, CONTRIBUTING and package.json (the oldest Node.js every installed package declares it
 * supports), and the README's first command run for real in a copy of the repository installed
 * with `npm ci --ignore-scripts` (npm running no dependency's install script, as npm's allowScripts
 * policy may), then the README's signed delivery against what it printed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { parseConfig } from "../../server/config";
import { waitFor } from "../support/stack";
import { REPO } from "./kustomize";
import { codeBlocks } from "./markdown";
import { githubHeaders } from "../support/signer";

const read = (file: string) => readFileSync(join(REPO, file), "utf8");
const pkg = JSON.parse(read("package.json")) as { engines: { node: string }; scripts: Record<string, string> };

// ---- one Node.js requirement ----

/** `major.minor` of every "Node.js X.Y or later" in a document. */
const stated = (text: string) => [...text.matchAll(/Node\.js (\d+\.\d+) or later/g)].map((m) => m[1]!);

describe("the Node.js requirement", () => {
  const engines = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
  const floor = engines ? `${engines[1]}.${engines[2]}` : undefined;

  test("README, CONTRIBUTING and package.json's engines state one version", () => {
    expect(floor).toBeDefined();
    // package-lock.json repeats it (npm ci reads the lockfile's copy).
    expect(JSON.parse(read("package-lock.json")).packages[""].engines).toEqual(pkg.engines);
    expect({ readme: stated(read("README.md")), contributing: stated(read("CONTRIBUTING.md")) }).toEqual({
      readme: [floor!],
      contributing: [floor!],
    });
  });

  // npm checks every installed package's engines (EBADENGINE): below this floor `npm ci` warns,
  // and fails with engine-strict. Above it, a lower floor would be possible and the docs too strict.
  test("is the oldest Node.js every package in package-lock.json declares it supports", () => {
    const lock = JSON.parse(read("package-lock.json")) as {
      packages: Record<string, { engines?: { node?: string } | string[] }>;
    };
    const ranges = Object.entries(lock.packages)
      .filter(([path]) => path !== "")
      .map(
        ([path, entry]) =>
          [
            path.replace(/^.*node_modules\//, ""),
            Array.isArray(entry.engines) ? undefined : entry.engines?.node,
          ] as const,
      )
      .filter((e): e is readonly [string, string] => e[1] !== undefined);
    const [major, minor] = floor!.split(".").map(Number) as [number, number];
    const refusing = (version: string) => ranges.filter(([, range]) => !Bun.semver.satisfies(version, range));
    expect(refusing(`${major}.${minor}.0`)).toEqual([]);
    const below = minor > 0 ? `${major}.${minor - 1}.999` : `${major - 1}.999.999`;
    expect(refusing(below).length).toBeGreaterThan(0);
  });
});

// ---- commands in the documents ----

describe("commands the documents give", () => {
  test("none runs bare `bun`, which Node.js users do not have", () => {
    const bare = ["README.md", "CONTRIBUTING.md", "deploy/README.md"].flatMap((file) =>
      codeBlocks(read(file))
        .filter((b) => b.lang === "sh" || b.lang === "")
        .flatMap((b) => b.text.split("\n"))
        // Environment assignments before the command (KUBECONFIG=... bun ...) do not make it another.
        .map((line) => line.trim().replace(/^(?:[A-Z_]+=\S+\s+)+/, ""))
        .filter((line) => /^bunx? /.test(line))
        .map((line) => `${file}: ${line}`),
    );
    expect(bare).toEqual([]);
  });

  test("README's cluster command is `npm run server` with flags that parse, beside Flux's notification-controller", () => {
    expect(pkg.scripts.server).toBe("node scripts/bun.js server/main.ts");
    const line = codeBlocks(read("README.md"))
      .flatMap((b) => b.text.split("\n"))
      .find((l) => l.includes("npm run server"));
    expect(line).toBeDefined();
    const parsed = parseConfig(line!.split(" -- ")[1]!.trim().split(/\s+/), {});
    if (parsed.ok !== true) throw new Error(`the README's flags do not parse: ${JSON.stringify(parsed)}`);
    expect(parsed.config.statusUpdates).toBe(false);
  });
});

// ---- the README's first command, with no install scripts ----

/** Whether nothing listens on this loopback port (the README's ports are used when free). */
async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The files of the working tree that git would commit (tracked, and new ones not ignored). */
function workingTreeFiles(): string[] {
  const r = Bun.spawnSync(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: REPO });
  if (r.exitCode !== 0) throw new Error(`git ls-files: ${r.stderr}`);
  return r.stdout
    .toString()
    .split("\0")
    .filter((f) => f !== "" && statSync(join(REPO, f), { throwIfNoEntry: false })?.isFile());
}

/** The npm install takes most of this; the server prints its URLs in about a second. */
const FIRST_RUN_BUDGET_MS = 240_000;
const NPM_CI_BUDGET_MS = 200_000;

describe("README's first command", () => {
  const readme = read("README.md");
  const copy = mkdtempSync(join(tmpdir(), "fluxhook-first-run-"));
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  test("is `npm ci && npm start`, and the next block delivers to what it prints", () => {
    expect(codeBlocks(readme)[0]!.text.split("\n")[0]!.replace(/#.*$/, "").trim()).toBe("npm ci && npm start");
  });

  test(
    "works when npm runs no install scripts: it prints every example receiver's URL, and the README's signed push is answered 200",
    async () => {
      for (const file of workingTreeFiles()) {
        mkdirSync(dirname(join(copy, file)), { recursive: true });
        cpSync(join(REPO, file), join(copy, file));
      }
      const env = { ...process.env, npm_config_update_notifier: "false" };
      const install = Bun.spawn(["npm", "ci", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], {
        cwd: copy,
        env,
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => install.kill(), NPM_CI_BUDGET_MS);
      const [installOut, installErr, installed] = await Promise.all([
        new Response(install.stdout).text(),
        new Response(install.stderr).text(),
        install.exited,
      ]);
      clearTimeout(timer);
      expect({ installed, output: installed === 0 ? "" : installOut + installErr }).toEqual({
        installed: 0,
        output: "",
      });
      // No install script ran: bun's own launcher is still its placeholder script.
      expect(readFileSync(join(copy, "node_modules/bun/bin/bun.exe"), "utf8")).toContain(
        "postinstall script was not run",
      );

      // `npm start` as the README runs it; on port 0 when something here already has its ports.
      const readmePorts = [9292, 9440, 8080];
      const free = (await Promise.all(readmePorts.map(portFree))).every(Boolean);
      const args = free
        ? ["start"]
        : ["start", "--", "--receiverAddr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"];
      const server = spawn("npm", args, { cwd: copy, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      server.stdout.on("data", (chunk) => (stdout += chunk));
      server.stderr.on("data", (chunk) => (stderr += chunk));
      let running = true;
      const exited = new Promise<void>((resolve) =>
        server.on("exit", () => {
          running = false;
          resolve();
        }),
      );
      try {
        const receivers = parseAllDocuments(read("examples/receivers.yaml"))
          .map((d) => d.toJS())
          .filter((o) => o?.kind === "Receiver")
          .map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
        expect(receivers.length).toBeGreaterThan(0);
        const printed = await waitFor(
          "npm start to print every receiver's URL",
          () => {
            const urls = new Map(
              [
                ...stdout.matchAll(
                  /^receiver (\S+) \(([^,]+), ready\): (http:\/\/127\.0\.0\.1:\d+\/hook\/[0-9a-f]{64})$/gm,
                ),
              ].map((m) => [m[1]!, m[3]!]),
            );
            return receivers.every((r) => urls.has(r)) ? urls : undefined;
          },
          30_000,
        ).catch((error) => {
          throw new Error(`${error.message}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
        });

        // The README's delivery: its body, signed with its token, to its URL (our port if not 9292).
        const block = codeBlocks(readme).find((b) => b.text.includes("curl"))!.text;
        const body = /^body='(.*)'$/m.exec(block)![1]!;
        const token = /-hmac (\S+)/.exec(block)![1]!;
        const url = /curl -i (\S+)/.exec(block)![1]!;
        const served = [...printed.values()].find((u) => u.endsWith(new URL(url).pathname));
        expect(served).toBeDefined();
        const res = await fetch(served!, {
          method: "POST",
          headers: githubHeaders(token, body),
          body,
        });
        const text = await res.text();
        const answer = JSON.parse(text) as { reason: string };
        expect({ status: res.status, reason: answer.reason }).toEqual({
          status: 200,
          reason: "1 of 1 target annotated (dry run: nothing was written)",
        });
        // README quotes the answer as it starts, up to its reason.
        const quoted = text.slice(0, text.indexOf(answer.reason) + answer.reason.length + 1);
        expect(readme).toContain(quoted);
      } finally {
        // npm, the shell, scripts/bun.js and Bun: the whole process group.
        if (running && server.pid) process.kill(-server.pid, "SIGTERM");
        await exited;
      }
    },
    FIRST_RUN_BUDGET_MS,
  );
});
