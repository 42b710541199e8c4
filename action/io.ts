/**
 * @module action/io
 * Where the sender's words go: the runner's workflow commands (`@actions/core`) inside GitHub
 * Actions, or plain lines for a terminal and other CI systems. Everything the sender prints goes
 * through one `Io`, so the same `run` serves the action and the CLI.
 *
 * Both make every line inert (action/inert.ts) as they write it, whoever composed it: no text that
 * came from outside becomes a command, a log section, an escape sequence, a new line or summary
 * markup.
 * Outside Actions nothing understands `::add-mask::`, so the plain Io prints no workflow command
 * at all and replaces every registered secret (the token, the digest, the URL, the ID token) in
 * every line it writes.
 */
import * as core from "@actions/core";
import { writeSync } from "node:fs";
import { inert, inertLines, summaryCell } from "./inert";
import { scrub } from "./report";

export interface Io {
  info(line: string): void;
  warning(message: string): void;
  /** Reports the step's failure (the exit code is `run`'s to return). */
  fail(message: string): void;
  debug(message: string): void;
  startGroup(name: string): void;
  endGroup(): void;
  /** Registers a value to hide: called before the value could appear in any line. */
  setSecret(secret: string): void;
  setOutput(name: string, value: string): void;
  /** A table in the job summary: a header row, then data rows (already free of secrets). */
  writeSummary(rows: readonly (readonly string[])[], heading?: string): Promise<void>;
}

/**
 * A message for an annotation (`::error::`, `::warning::`): its own line breaks kept (core encodes
 * them in the command), every other unsafe character escaped.
 */
const annotation = (message: string) => inertLines(message).join("\n");

/** The runner's Io: workflow commands on stdout, outputs and summary in the runner's files. */
export function actionsIo(): Io {
  return {
    info: (line) => {
      for (const shown of inertLines(line)) core.info(shown);
    },
    warning: (message) => core.warning(annotation(message)),
    fail: (message) => core.setFailed(annotation(message)),
    debug: (message) => core.debug(annotation(message)),
    startGroup: (name) => core.startGroup(inert(name)),
    endGroup: () => core.endGroup(),
    setSecret: (secret) => core.setSecret(secret),
    setOutput: (name, value) => core.setOutput(name, value),
    async writeSummary(rows, heading = "fluxhook delivery") {
      const [head = [], ...body] = rows;
      try {
        await core.summary
          .addHeading(summaryCell(heading), 3)
          .addTable([
            head.map((h) => ({ data: summaryCell(h), header: true })),
            ...body.map((row) => row.map(summaryCell)),
          ])
          .write();
      } catch (err) {
        // Outside a runner there is no GITHUB_STEP_SUMMARY; the summary is a convenience, not the result.
        core.debug(`No job summary written: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

export interface PlainIo extends Io {
  /** The outputs set so far (the CLI prints `results`). */
  readonly outputs: ReadonlyMap<string, string>;
}

/** A group's header in plain output: Buildkite's collapsed section (`--- name`), plain text elsewhere. */
const GROUP_MARKER = "--- ";

/**
 * Plain lines on a file descriptor (stderr by default: stdout is left for the CLI's result),
 * written synchronously so that nothing is lost when the process exits right after. Every line
 * is scrubbed of every secret registered so far; debug lines are dropped. The only line that
 * starts with a section marker is a group's header, written here after the name is made inert.
 */
export function plainIo(fd = 2): PlainIo {
  const secrets: string[] = [];
  const outputs = new Map<string, string>();
  const writeLines = (lines: readonly string[]) => writeSync(fd, `${lines.join("\n")}\n`);
  const write = (text: string) => writeLines(inertLines(scrub(text, secrets)).map((line) => scrub(line, secrets)));
  return {
    outputs,
    info: (line) => write(line),
    warning: (message) => write(`warning: ${message}`),
    fail: (message) => write(`error: ${message}`),
    debug: () => {},
    startGroup: (name) => writeLines([`${GROUP_MARKER}${scrub(inert(scrub(name, secrets)), secrets)}`]),
    endGroup: () => {},
    setSecret: (secret) => {
      if (secret !== "") secrets.push(secret);
    },
    setOutput: (name, value) => {
      outputs.set(name, scrub(value, secrets));
    },
    writeSummary: async () => {},
  };
}
