/**
 * @module action/io
 * Where the sender's words go: the runner's workflow commands (`@actions/core`) inside GitHub
 * Actions, or plain lines for a terminal and other CI systems. Everything the sender prints goes
 * through one `Io`, so the same `run` serves the action and the CLI.
 *
 * Both keep every value given to `setSecret` (the token, the digest, the URL, every ID token of a
 * wait) and replace each in every line, summary cell and output they write, before any escaping:
 * the runner masks only what it finds written as registered, and a summary cell writes `_` as
 * `&#95;`, so a token escaped first would pass its mask and render in clear. Then both make every
 * line inert (action/inert.ts), whoever composed it: no text that came from outside becomes a
 * command, a log section, an escape sequence, a new line or summary markup. Outside Actions
 * nothing understands `::add-mask::`, so the plain Io prints no workflow command at all.
 */
import * as core from "@actions/core";
import { writeSync } from "node:fs";
import { inert, inertLines, summaryCell } from "./inert";
import { scrub } from "./report";

/**
 * Where the step writes. Every text it takes (lines, annotations, group names, outputs, summary
 * cells) is written without any value given to `setSecret`, replaced by `***`, so callers pass
 * text as it is.
 */
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
  /** `text` with every value registered so far replaced by `***`: what the Io does to all it writes. */
  scrub(text: string): string;
  setOutput(name: string, value: string): void;
  /** A table in the job summary: a header row, then data rows. */
  writeSummary(rows: readonly (readonly string[])[], heading?: string): Promise<void>;
}

/** The values to hide, as given to `setSecret`, and text without them. */
function secretList() {
  const secrets: string[] = [];
  return {
    add(secret: string) {
      if (secret !== "" && !secrets.includes(secret)) secrets.push(secret);
    },
    scrub: (text: string) => scrub(text, secrets),
  };
}

/**
 * How an Io shows text: every secret taken out before it is escaped (and after, should escaping
 * have written one out), as log lines, one line, or a summary cell.
 */
function displayFor(secrets: ReturnType<typeof secretList>) {
  return {
    lines: (text: string) => inertLines(secrets.scrub(text)).map(secrets.scrub),
    line: (text: string) => secrets.scrub(inert(secrets.scrub(text))),
    cell: (text: string) => secrets.scrub(summaryCell(secrets.scrub(text))),
  };
}

/** The runner's Io: workflow commands on stdout, outputs and summary in the runner's files. */
export function actionsIo(): Io {
  const secrets = secretList();
  const show = displayFor(secrets);
  /**
   * A message for an annotation (`::error::`, `::warning::`): its own line breaks kept (core
   * encodes them in the command), every other unsafe character escaped.
   */
  const annotation = (message: string) => show.lines(message).join("\n");
  return {
    info: (line) => {
      for (const text of show.lines(line)) core.info(text);
    },
    warning: (message) => core.warning(annotation(message)),
    fail: (message) => core.setFailed(annotation(message)),
    debug: (message) => core.debug(annotation(message)),
    startGroup: (name) => core.startGroup(show.line(name)),
    endGroup: () => core.endGroup(),
    setSecret: (secret) => {
      secrets.add(secret);
      core.setSecret(secret);
    },
    scrub: secrets.scrub,
    setOutput: (name, value) => core.setOutput(name, secrets.scrub(value)),
    async writeSummary(rows, heading = "fluxhook delivery") {
      const [head = [], ...body] = rows;
      try {
        await core.summary
          .addHeading(show.cell(heading), 3)
          .addTable([head.map((h) => ({ data: show.cell(h), header: true })), ...body.map((row) => row.map(show.cell))])
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
  const secrets = secretList();
  const show = displayFor(secrets);
  const outputs = new Map<string, string>();
  const write = (lines: readonly string[]) => writeSync(fd, `${lines.join("\n")}\n`);
  return {
    outputs,
    info: (line) => write(show.lines(line)),
    warning: (message) => write(show.lines(`warning: ${message}`)),
    fail: (message) => write(show.lines(`error: ${message}`)),
    debug: () => {},
    startGroup: (name) => write([`${GROUP_MARKER}${show.line(name)}`]),
    endGroup: () => {},
    setSecret: secrets.add,
    scrub: secrets.scrub,
    setOutput: (name, value) => {
      outputs.set(name, secrets.scrub(value));
    },
    writeSummary: async () => {},
  };
}
