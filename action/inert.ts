/**
 * @module action/inert
 * Text that came from outside (a receiver's or a proxy's answer, an error's message, the event
 * payload in a dry run) made inert before the sender shows it. Shown means a log line, a workflow
 * command's message (an annotation) or a job summary cell, and each of those is a language:
 *
 *   - the runner reads every stdout line that starts with `::` (or `##[`) as a workflow command:
 *     `::stop-commands::` would turn off `::add-mask::` for the ID tokens that follow, `::error::`
 *     would forge an annotation;
 *   - a terminal and the runner's log viewer obey ANSI escapes (colours, erasing a line);
 *   - CR, LF, NEL and the Unicode line and paragraph separators start a new line, bidi controls
 *     reorder what is read;
 *   - the job summary is Markdown with HTML: a blank line ends the table, and what follows renders
 *     as a heading, a link or an image.
 *
 * Invariants: `inert` returns one line with no control, separator or bidi character (each is
 * written as a visible escape such as `\x1b`, so nothing is silently dropped or joined);
 * `inertLines` returns such lines, none of which starts with a workflow command's marker; and
 * `summaryCell` is one line in which no character is HTML or Markdown syntax.
 */

/** C0 and C1 controls (ESC, CR, LF, NEL among them), DEL, line and paragraph separators, bidi controls, BOM. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
/** Where received text breaks into lines when shown as a block (a body, a payload). */
const LINE_BREAK = /\r\n|[\n\r\u0085\u2028\u2029]/;
/** What the runner reads as a command at the start of a line, leading whitespace trimmed. */
const COMMAND_START = /^\s*(::|##)/;
/** HTML and Markdown syntax characters, written as numeric references in a summary cell. */
const MARKUP = /[&<>"'`*_[\](){}!#|~\\]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return SHORT_ESCAPES[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`);
}

/** One line of `text` with every control, separator and bidi character written as an escape. */
export function inert(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** A line that cannot start a workflow command: one that would is quoted with `> `. */
export function guardLine(line: string): string {
  return COMMAND_START.test(line) ? `> ${line}` : line;
}

/** A block of received text as lines fit for a log, each inert and none a workflow command. */
export function inertLines(text: string): string[] {
  return text.split(LINE_BREAK).map((line) => guardLine(inert(line)));
}

/** A job summary cell or heading: one inert line, its HTML and Markdown characters escaped. */
export function summaryCell(text: string): string {
  return inert(text).replace(MARKUP, (c) => `&#${c.charCodeAt(0)};`);
}
