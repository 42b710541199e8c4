/**
 * @module test/support/promtool
 * Prometheus' promtool (Debian's `prometheus` package; .ci/run installs it), for the tests that
 * check a real scrape and the alerting rules. Where it is missing the tests skip, except under
 * CI=true, where a test fails so that a CI without it cannot pass unnoticed.
 */

export const PROMTOOL = Bun.which("promtool");
export const REQUIRE_PROMTOOL = process.env.CI === "true";

/** Runs promtool with `args`, `stdin` as its input; exit code and what it printed. */
export function promtool(args: string[], stdin?: string): { exitCode: number; output: string } {
  if (!PROMTOOL) throw new Error("promtool is not on PATH");
  const r = Bun.spawnSync([PROMTOOL, ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  return { exitCode: r.exitCode ?? -1, output: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}
