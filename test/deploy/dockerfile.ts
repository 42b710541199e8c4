/**
 * @module test/deploy/dockerfile
 * A small Dockerfile reader for the image tests: instructions with their continuation lines
 * joined and comments dropped, grouped into stages. Enough for the Dockerfile at the repository
 * root (no heredocs, no parser directives beyond comments, `\` as the escape character).
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly from: string;
  /** FROM's `--platform=` value (e.g. `$BUILDPLATFORM`), if any. */
  readonly platform: string | undefined;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!.trim();
    if (first === "" || first.startsWith("#")) continue;
    const start = i + 1;
    let joined = first;
    while (joined.endsWith("\\") && i + 1 < lines.length) {
      joined = joined.slice(0, -1).trimEnd();
      const next = lines[++i]!.trim();
      // Comment lines inside a continued instruction are removed by Docker, not ended on.
      if (!next.startsWith("#")) joined += ` ${next}`;
      else joined += " \\";
    }
    const match = /^(\S+)\s*(.*)$/.exec(joined)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: start });
  }

  const stages: {
    from: string;
    platform: string | undefined;
    name: string | undefined;
    instructions: Instruction[];
  }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ platform: m[1], from: m[2]!, name: m[3], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

/** The arguments of every instruction with this keyword in a stage. */
export const argsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/** Splits a shell-form command list (`a && b`) into its commands, each split into words. */
export function shellCommands(run: string): string[][] {
  return run
    .split(/&&|;/)
    .map((c) =>
      c
        .trim()
        .split(/\s+/)
        .filter((w) => w !== ""),
    )
    .filter((c) => c.length > 0);
}

/** Reads `COPY [--from=x] [--chown=...] src... dest` into its parts. */
export function parseCopy(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  let from: string | undefined;
  const rest: string[] = [];
  for (const w of words) {
    if (w.startsWith("--from=")) from = w.slice("--from=".length);
    else if (!w.startsWith("--")) rest.push(w);
  }
  const dest = rest.pop()!;
  return { from, sources: rest, dest };
}
