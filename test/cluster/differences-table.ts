/**
 * The differential suite's list of deliberate differences: README's table under
 * README_HEADING, parsed; a difference is listed when a row's cells match it (`*` in a cell
 * matches any text, the rest literally). Kept apart from the cluster machinery so that
 * `npm test` checks the table's shape (test/docs/differences-table.test.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");

export type SideName = "notification-controller" | "fluxhook";
export const SIDES: readonly SideName[] = ["notification-controller", "fluxhook"];

/** One observed value that the sides disagree on. */
export interface Difference {
  readonly case: string;
  readonly compared: string;
  readonly values: Record<SideName, string>;
}

export interface ListedDifference {
  /** 1-based row of the table. */
  readonly row: number;
  readonly case: string;
  readonly compared: string;
  readonly values: Record<SideName, string>;
  readonly why: string;
}

export const README_HEADING = "### Differences from notification-controller, on purpose";

/** Splits a Markdown table row on the pipes that are not escaped (`\|`). */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  return inner.split(/(?<!\\)\|/).map((c) =>
    c
      .trim()
      .replaceAll("\\|", "|")
      .replace(/^`(.*)`$/, "$1"),
  );
}

/** README's table under README_HEADING: the one list of deliberate differences. */
export function listedDifferences(readme = readFileSync(join(ROOT, "README.md"), "utf8")): ListedDifference[] {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => l.trim() === README_HEADING);
  if (start < 0) throw new Error(`README.md has no "${README_HEADING}" section`);
  const first = lines.findIndex((l, i) => i > start && l.trim().startsWith("|"));
  if (first < 0) throw new Error(`README.md's "${README_HEADING}" section has no table`);
  const header = cells(lines[first]!).map((c) => c.toLowerCase());
  const expected = ["case", "compared", "notification-controller", "fluxhook", "why"];
  if (header.join("|") !== expected.join("|"))
    throw new Error(`README.md's differences table has the columns ${header.join(", ")}, not ${expected.join(", ")}`);
  const rows: ListedDifference[] = [];
  for (let i = first + 2; i < lines.length && lines[i]!.trim().startsWith("|"); i++) {
    const [c, compared, nc, fh, why] = cells(lines[i]!);
    rows.push({
      row: rows.length + 1,
      case: c!,
      compared: compared!,
      values: { "notification-controller": nc!, fluxhook: fh! },
      why: why!,
    });
  }
  return rows;
}

/** A table cell as a pattern: `*` matches any text, the rest literally. */
function matches(pattern: string, value: string): boolean {
  const regex = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${regex}$`, "s").test(value);
}

export function listingOf(d: Difference, listed: readonly ListedDifference[]): ListedDifference | undefined {
  return listed.find(
    (l) =>
      matches(l.case, d.case) &&
      matches(l.compared, d.compared) &&
      SIDES.every((s) => matches(l.values[s], d.values[s])),
  );
}

/** The differences as one text table, each with the README row that lists it (or NOT LISTED). */
export function formatDifferences(differences: readonly Difference[], listed: readonly ListedDifference[]): string {
  // One line per difference, cells as README writes them: messages (CEL's errors) may hold line
  // breaks and pipes.
  const cell = (s: string) => s.replaceAll("\n", "\\n").replaceAll("|", "\\|");
  const rows = differences.map((d) => {
    const l = listingOf(d, listed);
    return [d.case, d.compared, d.values["notification-controller"], d.values.fluxhook]
      .map(cell)
      .concat(l ? `row ${l.row}` : "NOT LISTED");
  });
  const header = ["case", "compared", "notification-controller", "fluxhook", "README"];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(all[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...all.slice(1).map(line)].join("\n");
}
