/**
 * action/io.ts: both Ios hide every value given to setSecret (every ID token of a wait, not only
 * the first) in every line, summary cell and output, before any escaping can change how the value
 * is written; and the plain Io (the CLI outside Actions) writes no line another CI reads as a
 * command or a log section, its own group headers aside.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actionsIo, plainIo } from "../../action/io";
import { parseOutputFile } from "./harness";
import { renderedSummary } from "./runner-model";

/** Two ID tokens as a wait mints them: base64url, so with `_` and `-`, which a summary cell escapes. */
const TOKENS = ["eyJ_first-token_aaaa.eyJ_b.sig_1", "eyJ_second-token_bbbb.eyJ_c.sig_2"];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fluxhook-io-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the Actions Io", () => {
  const saved = { summary: process.env.GITHUB_STEP_SUMMARY, output: process.env.GITHUB_OUTPUT };
  afterEach(() => {
    process.env.GITHUB_STEP_SUMMARY = saved.summary;
    process.env.GITHUB_OUTPUT = saved.output;
    if (saved.summary === undefined) delete process.env.GITHUB_STEP_SUMMARY;
    if (saved.output === undefined) delete process.env.GITHUB_OUTPUT;
  });

  test("every registered value is out of the summary's cells and the outputs, before they are escaped", async () => {
    const summaryFile = join(dir, "summary.md");
    const outputFile = join(dir, "output");
    writeFileSync(summaryFile, "");
    writeFileSync(outputFile, "");
    process.env.GITHUB_STEP_SUMMARY = summaryFile;
    process.env.GITHUB_OUTPUT = outputFile;
    const io = actionsIo();
    const write = process.stdout.write;
    // core prints ::add-mask:: for each; this test reads the files, not stdout.
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      for (const token of TOKENS) io.setSecret(token);
      await io.writeSummary(
        [["Object", "Ready"], ...TOKENS.map((token) => ["GitRepository a/b", `Unknown: seen Bearer ${token}`])],
        `wait-for ${TOKENS[1]}`,
      );
      io.setOutput("response", `{"echo":"Bearer ${TOKENS[1]}"}`);
    } finally {
      process.stdout.write = write;
    }
    // The runner masks the file's lines before it renders them; this masks nothing, so what shows is the Io's own doing.
    const shown = renderedSummary(readFileSync(summaryFile, "utf8"), []);
    expect(shown).toContain("Unknown: seen Bearer ***");
    for (const token of TOKENS) expect(shown).not.toContain(token);
    expect(parseOutputFile(readFileSync(outputFile, "utf8"))).toEqual({ response: '{"echo":"Bearer ***"}' });
    expect(io.scrub(`a ${TOKENS[0]} b ${TOKENS[1]}`)).toBe("a *** b ***");
  });
});

describe("the plain Io", () => {
  /** What a plain Io writing to a file shows, after `use` has written through it. */
  const written = (use: (io: ReturnType<typeof plainIo>) => void): string[] => {
    const file = join(dir, "log");
    const fd = openSync(file, "w");
    try {
      use(plainIo(fd));
    } finally {
      closeSync(fd);
    }
    return readFileSync(file, "utf8").split("\n").slice(0, -1);
  };

  test("Azure Pipelines' ##vso[ anywhere and Buildkite's section markers at a line's start are neutralised", () => {
    const lines = written((io) => {
      io.startGroup("Response: HTTP 200");
      io.info("x-note: ##vso[task.setvariable variable=deploy]pwned");
      io.info("--- pwned section\n+++ pwned\n~~~ pwned\n^^^ +++\n  --- pwned");
      io.warning("ok\n--- pwned");
      io.endGroup();
    });
    expect(lines).toEqual([
      "--- Response: HTTP 200",
      "x-note: #\\x23vso[task.setvariable variable=deploy]pwned",
      "> --- pwned section",
      "> +++ pwned",
      "> ~~~ pwned",
      "> ^^^ +++",
      ">   --- pwned",
      "warning: ok",
      "> --- pwned",
    ]);
  });

  test("a group's name is one inert line after the CLI's own marker", () => {
    expect(written((io) => io.startGroup("a\n--- b ##vso[x]"))).toEqual(["--- a\\n--- b #\\x23vso[x]"]);
  });

  test("every registered value is replaced, in lines and outputs", () => {
    let outputs: ReadonlyMap<string, string> = new Map();
    const lines = written((io) => {
      for (const token of TOKENS) io.setSecret(token);
      io.info(`seen ${TOKENS[0]} and ${TOKENS[1]}`);
      io.setOutput("response", TOKENS[1] as string);
      outputs = io.outputs;
    });
    expect(lines).toEqual(["seen *** and ***"]);
    expect([...outputs]).toEqual([["response", "***"]]);
  });
});
