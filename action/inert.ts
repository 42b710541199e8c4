/**
 * @module action/inert
 * Text that came from outside (a receiver's or a proxy's answer, an error's message, the event
 * payload in a dry run) made inert before the sender shows it. Shown means a log line, a workflow
 * command's message (an annotation) or a job summary cell, and each of those is a language:
 *
 *   - the Actions runner reads a stdout or stderr line as a workflow command when it starts with
 *     `::` (leading whitespace trimmed), and also when `##[` appears ANYWHERE in it (the legacy
 *     form, `##[set-output name=x;]y`): `::stop-commands::` would turn off `::add-mask::` for the
 *     ID tokens that follow, `##[error]` would forge an annotation, `##[set-output]` set an output;
 *   - other CIs read their own: Azure Pipelines `##vso[` and TeamCity `##teamcity[` anywhere in a
 *     line, Buildkite a line starting `--- `, `+++ `, `~~~ ` or `^^^ +++` (a log section);
 *   - a terminal and the runner's log viewer obey ANSI escapes (colours, erasing a line);
 *   - CR, LF, NEL and the Unicode line and paragraph separators start a new line, bidi controls
 *     reorder what is read, and invisible format characters (zero-width spaces, soft hyphens, tag
 *     characters) hide text; .NET's culture-aware search, which the runner's parser uses, skips them;
 *   - the job summary is Markdown with HTML: a blank line ends the table, and what follows renders
 *     as a heading, a link or an image.
 *
 * Invariants: `inert` returns one line with no control, separator, bidi, invisible or ignorable
 * character (each is written as a visible escape such as `\x1b`, so nothing is silently dropped or
 * joined) and no `##` before `[` or a CI's command word and `[` (written `#\x23[`); `inertLines`
 * returns such lines, none of which starts with a workflow command's or a log section's marker;
 * and `summaryCell` is one line in which no character is HTML or Markdown syntax.
 */

/**
 * C0 and C1 controls (ESC, CR, LF, NEL among them), DEL, line and paragraph separators, and every
 * format character (Cf: bidi controls, BOM, zero-width spaces and joiners, soft hyphen, tag
 * characters) or default-ignorable one (variation selectors, Hangul fillers): one code point each.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;
/**
 * A command's marker wherever it is in a line: the runner's legacy `##[`, Azure Pipelines' `##vso[`,
 * TeamCity's `##teamcity[` (a word of letters between `##` and `[`). The second `#` is escaped.
 */
const COMMAND_ANYWHERE = /##(?=[A-Za-z]*\[)/g;
/** Where received text breaks into lines when shown as a block (a body, a payload). */
const LINE_BREAK = /\r\n|[\n\r\u0085\u2028\u2029]/;
/**
 * What a CI reads as a command or a log section at the start of a line, leading whitespace
 * trimmed: the runner's `::` (and `##`), Buildkite's `--- `, `+++ `, `~~~ ` and `^^^ +++`.
 */
const COMMAND_START = /^\s*(?:::|##|(?:---|\+\+\+|~~~)(?:\s|$)|\^\^\^ \+\+\+)/;
/** HTML and Markdown syntax characters, written as numeric references in a summary cell. */
const MARKUP = /[&<>"'`*_[\](){}!#|~\\]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escapeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return SHORT_ESCAPES[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`);
}

/**
 * One line of `text` with every control, separator, bidi, invisible and ignorable character
 * written as an escape, and no command marker left anywhere in it.
 */
export function inert(text: string): string {
  return text.replace(UNSAFE, escapeChar).replace(COMMAND_ANYWHERE, "#\\x23");
}

/** A line that cannot start a workflow command or a log section: one that would is quoted with `> `. */
export function guardLine(line: string): string {
  return COMMAND_START.test(line) ? `> ${line}` : line;
}

/** A block of received text as lines fit for a log, each inert and none a command or a section. */
export function inertLines(text: string): string[] {
  return text.split(LINE_BREAK).map((line) => guardLine(inert(line)));
}

/** A job summary cell or heading: one inert line, its HTML and Markdown characters escaped. */
export function summaryCell(text: string): string {
  return inert(text).replace(MARKUP, (c) => `&#${c.charCodeAt(0)};`);
}
