/**
 * The import direction of server/ (README "Architecture"): a module imports only modules of a
 * lower layer, or of its own group. Each violation is reported with its file, line and the layers
 * involved, so a failing run says which import to move.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, normalize, relative } from "node:path";

const ROOT = join(import.meta.dir, "../..");

/**
 * Groups of server/, lowest first. A module may import a module of a lower rank, or of its own
 * group; two groups of one rank (receivers/ and targets/) may not import each other.
 */
const LAYERS: readonly { readonly group: string; readonly rank: number }[] = [
  // The Flux contract and the named limits: they import nothing of server/.
  { group: "server/api/", rank: 0 },
  { group: "server/limits.ts", rank: 0 },
  // Data: the version `fluxhook --version` prints, bundled into the executable.
  { group: "package.json", rank: 0 },
  // Flags parsed once; the logger is configured by them and used by every layer above.
  { group: "server/config.ts", rank: 1 },
  // What every layer above runs on: the logger and the keyed work queue.
  { group: "server/runtime/", rank: 2 },
  // Self-contained engines: CEL and token verification.
  { group: "server/cel/", rank: 3 },
  { group: "server/jwt/", rank: 3 },
  { group: "server/kube/", rank: 4 },
  // One validator per receiver type, over api/ types, cel/ and jwt/.
  { group: "server/providers/", rank: 5 },
  { group: "server/receivers/", rank: 6 },
  { group: "server/targets/", rank: 6 },
  // The outcome vocabulary: what delivery/ makes and observe/ reports, below both.
  { group: "server/outcome/", rank: 7 },
  { group: "server/delivery/", rank: 8 },
  // Metrics, Events and the recent deliveries read outcomes, beside delivery/ and never from it.
  { group: "server/observe/", rank: 8 },
  { group: "server/http/", rank: 9 },
  // Where Receivers come from: each mode wires kube/, receivers/ and observe/ once.
  { group: "server/sources/", rank: 10 },
  { group: "server/server.ts", rank: 11 },
  { group: "server/main.ts", rank: 12 },
  // `fluxhook send`: the entry point dispatches to the sender's CLI, which imports nothing of server/.
  { group: "action/cli.ts", rank: 11 },
];

/** The group of a server/ file: the longest matching entry (a file named alone before its folder). */
function layerOf(file: string) {
  let best: (typeof LAYERS)[number] | undefined;
  for (const l of LAYERS)
    if ((file === l.group || file.startsWith(l.group)) && (!best || l.group.length > best.group.length)) best = l;
  return best;
}

export interface Violation {
  readonly at: string;
  readonly message: string;
}

const IMPORT = /\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The imports of one file against the layering; `file` is relative to the repository root. */
export function violations(file: string, source: string): Violation[] {
  const from = layerOf(file);
  const found: Violation[] = [];
  source.split("\n").forEach((line, i) => {
    if (/^\s*(\*|\/\/)/.test(line)) return;
    for (const m of line.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      const at = `${file}:${i + 1}: ${line.trim()}`;
      if (!spec.startsWith(".")) {
        // The contract imports no package: it is plain data and parsing.
        if (from?.rank === 0) found.push({ at, message: `${from.group} imports the package ${spec}` });
        continue;
      }
      const target = normalize(join(file, "..", spec)).replaceAll("\\", "/");
      if (target === "shared" || target.startsWith("shared/")) continue; // the wire contract, below everything
      const to = layerOf(target.endsWith(".ts") ? target : `${target}.ts`) ?? layerOf(`${target}/`);
      if (!from || !to) {
        found.push({ at, message: `${file} or ${target} is in no layer of the table` });
        continue;
      }
      if (from.group === to.group || to.rank < from.rank) continue;
      found.push({ at, message: `${from.group} (layer ${from.rank}) imports ${to.group} (layer ${to.rank})` });
    }
  });
  return found;
}

/** The folder of server/ a file is in (`server/delivery/`), or the file itself when it is directly in server/. */
function folderOf(file: string): string {
  const parts = file.split("/");
  return parts.length > 2 && parts[0] === "server" ? `${parts[0]}/${parts[1]}/` : file;
}

/** Where a relative import of `file` points, with `.ts` (a folder's import names its index.ts). */
function resolved(file: string, spec: string, files: ReadonlySet<string>): string {
  const target = normalize(join(file, "..", spec)).replaceAll("\\", "/");
  if (target.endsWith(".ts")) return target;
  return files.has(`${target}.ts`) ? `${target}.ts` : `${target}/index.ts`;
}

/**
 * Folders of server/ that import each other, whatever the layers say: a pair is reported with one
 * import line each way. The layers alone cannot see it when a table entry names a file apart from
 * its folder (observe/log.ts stood at layer 2, so delivery/ imported observe/ and observe/
 * imported delivery/ with every line "legal").
 */
export function mutualImports(sources: Readonly<Record<string, string>>): string[] {
  const files = new Set(Object.keys(sources));
  /** "from -> to" of folders, with the first line that makes the edge. */
  const edges = new Map<string, string>();
  for (const [file, source] of Object.entries(sources)) {
    source.split("\n").forEach((line, i) => {
      if (/^\s*(\*|\/\/)/.test(line)) return;
      for (const m of line.matchAll(IMPORT)) {
        const spec = (m[1] ?? m[2] ?? m[3])!;
        if (!spec.startsWith(".")) continue;
        const target = resolved(file, spec, files);
        if (!target.startsWith("server/")) continue;
        const [from, to] = [folderOf(file), folderOf(target)];
        if (from !== to && !edges.has(`${from} -> ${to}`)) edges.set(`${from} -> ${to}`, `${file}:${i + 1}`);
      }
    });
  }
  const found: string[] = [];
  for (const [edge, at] of edges) {
    const [from, to] = edge.split(" -> ") as [string, string];
    const back = edges.get(`${to} -> ${from}`);
    if (back && from < to) found.push(`${from} <-> ${to} (${at}; ${back})`);
  }
  return found;
}

function serverFiles(dir = join(ROOT, "server")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return serverFiles(path);
    return d.name.endsWith(".ts") ? [relative(ROOT, path).replaceAll("\\", "/")] : [];
  });
}

describe("layering of server/", () => {
  test("every import of server/ follows the layers", () => {
    const found = serverFiles().flatMap((f) => violations(f, readFileSync(join(ROOT, f), "utf8")));
    expect(found.map((v) => `${v.at}\n    ${v.message}`)).toEqual([]);
  });

  test("every file of server/ is in a layer", () => {
    expect(serverFiles().filter((f) => !layerOf(f))).toEqual([]);
  });

  test("no two folders of server/ import each other", () => {
    const sources = Object.fromEntries(serverFiles().map((f) => [f, readFileSync(join(ROOT, f), "utf8")]));
    expect(mutualImports(sources)).toEqual([]);
  });

  test("the layers carry no exception: an entry names a whole folder, or a file directly in server/", () => {
    const inFolder = LAYERS.filter(
      (l) => l.group.startsWith("server/") && !l.group.endsWith("/") && folderOf(l.group) !== l.group,
    );
    expect(inFolder).toEqual([]);
  });

  test("mutual imports are found where the layers allowed each line (observe/log.ts at layer 2)", () => {
    expect(
      mutualImports({
        "server/delivery/delivery.ts": 'import type { Logger } from "../observe/log";',
        "server/observe/log.ts": "export type Logger = unknown;",
        "server/observe/events.ts": 'import { OUTCOMES } from "../delivery/outcomes";\nimport { x } from "../api";',
        "server/delivery/outcomes.ts": "export const OUTCOMES = {};",
        "server/api/index.ts": 'import { y } from "../kube/port";',
        "server/kube/port.ts": "export const y = 1;",
      }),
    ).toEqual(["server/delivery/ <-> server/observe/ (server/delivery/delivery.ts:1; server/observe/events.ts:1)"]);
  });

  test.each([
    {
      name: "the contract importing a layer above it",
      file: "server/api/receiver.ts",
      source: 'import { x } from "../targets/requested-at";',
      want: ["server/api/ (layer 0) imports server/targets/ (layer 6)"],
    },
    {
      name: "the contract importing a package",
      file: "server/api/secret.ts",
      source: '\nimport { KubeConfig } from "@kubernetes/client-node";',
      want: ["server/api/ imports the package @kubernetes/client-node"],
    },
    {
      name: "kube importing receivers",
      file: "server/kube/port.ts",
      source: 'import type { ReceiverEntry } from "../receivers/index";',
      want: ["server/kube/ (layer 4) imports server/receivers/ (layer 6)"],
    },
    {
      name: "targets importing receivers, a group of the same layer",
      file: "server/targets/annotate.ts",
      source: 'export { type ServingEntry } from "../receivers/index";',
      want: ["server/targets/ (layer 6) imports server/receivers/ (layer 6)"],
    },
    {
      name: "observe importing http",
      file: "server/observe/metrics.ts",
      source: 'const m = await import("../http/json-response");',
      want: ["server/observe/ (layer 8) imports server/http/ (layer 9)"],
    },
    {
      name: "http importing delivery",
      file: "server/http/app.ts",
      source: 'import { a } from "../delivery/x";',
      want: [],
    },
    {
      name: "api importing shared",
      file: "server/api/receiver.ts",
      source: 'import { a } from "../../shared";',
      want: [],
    },
  ])("$name", ({ file, source, want }) => {
    const found = violations(file, source);
    expect(found.map((v) => v.message)).toEqual([...want]);
    // The offending line is named, with its number.
    for (const v of found) expect(v.at).toMatch(new RegExp(`^${file}:\\d+: `));
  });
});
