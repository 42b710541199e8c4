#!/usr/bin/env node
/**
 * `node scripts/bun.js <args>` runs `bun <args>` with the Bun that package-lock.json pins, taken
 * straight from its platform package (`@oven/bun-<os>-<arch>`, an optional dependency of the npm
 * package `bun` that npm installs without running any script). So the npm scripts work when npm runs
 * no install scripts (`npm ci --ignore-scripts`, or an allowScripts policy that leaves bun's out):
 * bun's postinstall (node_modules/bun/install.js) does nothing more than link that same executable
 * over node_modules/bun/bin/bun.exe, which is a placeholder script until then.
 *
 * Hand-written because no package finds Bun's platform executable without that postinstall; the
 * choice is npm's own (the platform package whose os, cpu and libc fields match this machine).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** glibc or musl on Linux (Node's report names the glibc it runs on), as npm's libc check reads it. */
function libc() {
  if (process.platform !== "linux") return undefined;
  // The report would otherwise look up every network interface's host name.
  process.report.excludeNetwork = true;
  return process.report.getReport().header.glibcVersionRuntime ? "glibc" : "musl";
}

/**
 * A real executable, not bun's placeholder script (a few hundred bytes): Bun is about 100 MB.
 * Bun's postinstall moves the executable out of the platform package into node_modules/bun/bin.
 */
const isBun = (path) => existsSync(path) && statSync(path).size > 1024 * 1024;

/** The Bun executable for this machine, or the reason there is none. */
function findBun() {
  const bunManifest = require.resolve("bun/package.json");
  const bun = JSON.parse(readFileSync(bunManifest, "utf8"));
  const exe = process.platform === "win32" ? "bun.exe" : "bun";
  const runtimeLibc = libc();
  const installed = [];
  for (const name of Object.keys(bun.optionalDependencies ?? {})) {
    let manifest;
    try {
      manifest = require.resolve(`${name}/package.json`);
    } catch {
      continue; // not installed: npm leaves out the packages of other platforms
    }
    installed.push(name);
    const pkg = JSON.parse(readFileSync(manifest, "utf8"));
    const fits =
      (pkg.os ?? [process.platform]).includes(process.platform) &&
      (pkg.cpu ?? [process.arch]).includes(process.arch) &&
      (pkg.libc === undefined || pkg.libc.includes(runtimeLibc));
    const path = join(dirname(manifest), "bin", exe);
    if (fits && isBun(path)) return { path };
  }
  // After bun's postinstall: the same executable, moved.
  const moved = join(dirname(bunManifest), "bin", "bun.exe");
  if (isBun(moved)) return { path: moved };
  return {
    error:
      `no Bun ${bun.version} executable for ${process.platform}-${process.arch}${runtimeLibc ? `-${runtimeLibc}` : ""} ` +
      `in node_modules (platform packages installed: ${installed.join(", ") || "none"}). ` +
      "Run `npm ci` without --omit=optional or --no-optional.",
  };
}

const found = findBun();
if (found.error) {
  console.error(`scripts/bun.js: ${found.error}`);
  process.exit(1);
}
const child = spawn(found.path, process.argv.slice(2), { stdio: "inherit" });
// A signal sent to this process alone (`kill <pid>`) reaches Bun too; the server shuts down on it.
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];
const forward = (signal) => child.kill(signal);
for (const signal of SIGNALS) process.on(signal, forward);
child.on("error", (err) => {
  console.error(`scripts/bun.js: cannot run ${found.path}: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  for (const s of SIGNALS) process.off(s, forward);
  // Ended by a signal: end the same way, so the caller (npm, a shell) sees what happened.
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
