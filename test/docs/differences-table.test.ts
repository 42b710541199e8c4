/**
 * README's table of deliberate differences from notification-controller, as the cluster tier's
 * differential suite reads it (test/cluster/differences-table.ts): it parses, and a difference is
 * listed only when every cell of a row matches it.
 */
import { describe, expect, test } from "bun:test";
import { type Difference, listedDifferences, listingOf, SIDES } from "../cluster/differences-table";

const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
const readme = (...rows: string[][]) =>
  [
    "# x",
    "",
    "### Differences from notification-controller, on purpose",
    "",
    row(["case", "compared", "notification-controller", "fluxhook", "why"]),
    row(["--", "--", "--", "--", "--"]),
    ...rows.map(row),
    "",
    "after the table",
  ].join("\n");

const difference = (c: string, compared: string, nc: string, fh: string): Difference => ({
  case: c,
  compared,
  values: { "notification-controller": nc, fluxhook: fh },
});

describe("README's differences table", () => {
  test("README.md has it, every row with a case, a compared value, both sides and a reason", () => {
    const rows = listedDifferences();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect([r.case, r.compared, ...SIDES.map((s) => r.values[s]), r.why].every((c) => c.length > 0)).toBe(true);
      expect(r.why).not.toContain("`*`");
    }
  });

  test("cells in backticks, `*` matching any text (line breaks too), escaped pipes literal", () => {
    const rows = listedDifferences(
      readme(
        ["`*`", "`condition *`", "`a \\| b*`", "`False TokenNotFound: *`", "why"],
        ["`#11 x`", "`status`", "`400`", "`404`", "why"],
      ),
    );
    expect(rows.map((r) => [r.case, r.compared, r.values["notification-controller"]])).toEqual([
      ["*", "condition *", "a | b*"],
      ["#11 x", "status", "400"],
    ]);
    expect(listingOf(difference("any", "condition Ready", "a | b\nmore", "False TokenNotFound: gone"), rows)?.row).toBe(
      1,
    );
    expect(listingOf(difference("#11 x", "status", "400", "404"), rows)?.row).toBe(2);
  });

  test("a difference is listed only when every cell matches", () => {
    const rows = listedDifferences(readme(["`#11 x`", "`status`", "`400`", "`404`", "why"]));
    expect(listingOf(difference("#11 x", "status", "400", "405"), rows)).toBeUndefined();
    expect(listingOf(difference("#11 x", "status", "4000", "404"), rows)).toBeUndefined();
    expect(listingOf(difference("#11 xy", "status", "400", "404"), rows)).toBeUndefined();
    expect(listingOf(difference("#11 x", "status code", "400", "404"), rows)).toBeUndefined();
    // Patterns are literal apart from `*`: regex characters match themselves only.
    const dotted = listedDifferences(readme(["`a.c`", "`(x)+`", "`1`", "`2`", "why"]));
    expect(listingOf(difference("abc", "(x)+", "1", "2"), dotted)).toBeUndefined();
    expect(listingOf(difference("a.c", "(x)+", "1", "2"), dotted)?.row).toBe(1);
  });

  test("a README without the section, or with other columns, is an error", () => {
    expect(() => listedDifferences("# nothing here")).toThrow(/no "### Differences from notification-controller/);
    expect(() => listedDifferences(readme().replace("| case | compared |", "| kase | compared |"))).toThrow(
      /columns kase/,
    );
  });
});
