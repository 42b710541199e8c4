/**
 * The sender's modules import each other without a cycle: types and names every module needs sit
 * in action/vocabulary.ts, below them all, so a change to one module never makes another's
 * imports circular. Type-only imports count: a cycle through them is still a knot a
 * reader has to untie. A failing run names the modules of each cycle, in import order.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, normalize } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const IMPORT = /\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** The action/ modules each action/ module imports (packages, shared/ and server/ left out). */
export function importGraph(sources: Readonly<Record<string, string>>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, source] of Object.entries(sources)) {
    const imported = new Set<string>();
    for (const m of source.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? "";
      if (!spec.startsWith(".")) continue;
      const target = `${normalize(join(file, "..", spec))
        .replaceAll("\\", "/")
        .replace(/\.ts$/, "")}.ts`;
      if (target in sources) imported.add(target);
    }
    graph.set(file, [...imported].sort());
  }
  return graph;
}

/** Every cycle, each once, as the modules along it starting from its smallest name. */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles = new Map<string, string[]>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const done = new Set<string>();
  const visit = (module: string) => {
    path.push(module);
    onPath.add(module);
    for (const next of graph.get(module) ?? []) {
      if (onPath.has(next)) {
        const cycle = path.slice(path.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0] as string);
        const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
        cycles.set(rotated.join(" → "), rotated);
      } else if (!done.has(next)) visit(next);
    }
    path.pop();
    onPath.delete(module);
    done.add(module);
  };
  for (const module of [...graph.keys()].sort()) if (!done.has(module)) visit(module);
  return [...cycles.values()];
}

const actionSources = (): Record<string, string> =>
  Object.fromEntries(
    readdirSync(join(ROOT, "action"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => [`action/${f}`, readFileSync(join(ROOT, "action", f), "utf8")]),
  );

describe("imports of action/", () => {
  test("no module of action/ imports itself back through others", () => {
    expect(importCycles(importGraph(actionSources())).map((c) => [...c, c[0]].join(" → "))).toEqual([]);
  });

  test("vocabulary.ts imports no other module of action/", () => {
    expect(importGraph(actionSources()).get("action/vocabulary.ts")).toEqual([]);
  });

  test("finds every cycle of a tree, each once, type imports included", () => {
    const sources = {
      "action/inputs.ts": 'import { isCredentialHeader } from "./request";\nimport { WAIT_FOR } from "./wait";',
      "action/request.ts": 'import type { ContentTypeName } from "./inputs";',
      "action/transport.ts": 'import type { ProxySettings } from "./inputs";',
      "action/wait.ts": 'import type { SendResult } from "./transport";\nimport { x } from "../shared";',
      "action/main.ts": 'import { run } from "./inputs";',
    };
    expect(importCycles(importGraph(sources))).toEqual([
      ["action/inputs.ts", "action/request.ts"],
      ["action/inputs.ts", "action/wait.ts", "action/transport.ts"],
    ]);
  });

  test("a tree without a cycle has none", () => {
    const sources = {
      "action/a.ts": 'import { b } from "./b";\nimport { c } from "./c.ts";',
      "action/b.ts": 'import { c } from "./c";',
      "action/c.ts": 'import * as core from "@actions/core";',
    };
    expect(importCycles(importGraph(sources))).toEqual([]);
  });
});
