/**
 * How the GitHub Actions runner reads what a step writes: a model for tests, so that a test asks
 * "what would the runner do with this output?" instead of looking for strings.
 *
 * Ported, not copied: written here from reading actions/runner at 258d6c8 (src/Runner.Common/
 * ActionCommand.cs `TryParseV2` and `TryParse`, src/Runner.Worker/ActionCommandManager.cs
 * `TryProcessCommand` and its command extensions, Handlers/OutputManager.cs `OnDataReceived`,
 * src/Sdk/DTLogging/Logging/SecretMasker.cs `MaskSecrets`, FileCommandManager.cs's step summary).
 * What it keeps of them:
 *
 *   - Both streams are read line by line (.NET's ReadLine: CR, LF or CRLF ends a line), stderr as
 *     well as stdout. A line is tried as a command only when it contains `##[` or `::`.
 *   - `::name k=v,k=v::data` is a command when the line starts with `::` once leading whitespace
 *     is trimmed (TryParseV2); else the legacy `##[name k=v;k=v]data` is one wherever `##[` first
 *     appears in the line (TryParse). The name must be registered (case-insensitively), and each
 *     form unescapes its own `%XX` sequences in properties and data.
 *   - `stop-commands` turns every command off until a line whose command is its token; meanwhile
 *     every line is printed as it is, `add-mask` ones included. A token that is empty, a command's
 *     name or `pause-logging` fails the step instead. Longer than 6 characters, it is masked.
 *   - `add-mask` masks a value in every later line; `set-output` and `save-state` set what their
 *     `name` says; `set-env` and `add-path` fail the step (ACTIONS_ALLOW_UNSECURE_COMMANDS unset);
 *     `error`, `warning` and `notice` make annotations; `group` and `endgroup` print `##[group]…`;
 *     `echo on` makes commands print themselves.
 *   - Printed lines, annotations and the step summary (line by line, before it is rendered) are
 *     masked as SecretMasker does: every occurrence of every value, overlaps merged, is `***`.
 *
 * Left out, each on the safe side for a test that asserts something is absent: the masker's
 * encoded forms of a value (base64, JSON, URI escapes: more masking than here), problem matchers
 * (their files are recorded, not read), and .NET's culture-sensitive `IndexOf`/`StartsWith`, which
 * under ICU skip default-ignorable characters (U+200B, U+00AD, ...). action/inert.ts escapes every
 * one of those, so no line the action writes holds one for the difference to matter.
 */

/** Commands the runner registers at start: `stop-commands` and one per command extension. */
const REGISTERED_COMMANDS = [
  "stop-commands",
  "set-env",
  "set-output",
  "save-state",
  "add-path",
  "add-mask",
  "add-matcher",
  "remove-matcher",
  "warning",
  "error",
  "notice",
  "debug",
  "group",
  "endgroup",
  "echo",
] as const;

/** Stop tokens the runner refuses (besides any registered command's name). */
const REFUSED_STOP_TOKENS = ["pause-logging"];

export interface RunnerCommand {
  /** The name as written (the runner matches it case-insensitively). */
  readonly name: string;
  /** Keys lowercased: the runner's property dictionary ignores case. */
  readonly properties: Readonly<Record<string, string>>;
  readonly data: string;
  /** The line it was read from, as written. */
  readonly line: string;
  /** `::` for `::name::data`, `##[` for the legacy `##[name]data`. */
  readonly form: "::" | "##[";
  readonly stream: "stdout" | "stderr";
}

export interface Annotation {
  readonly type: "error" | "warning" | "notice";
  /** Masked. */
  readonly message: string;
  readonly properties: Readonly<Record<string, string>>;
}

export interface RunnerView {
  /** Every command the runner carried out, in order. */
  readonly commands: readonly RunnerCommand[];
  /** The log's lines as shown, masked. */
  readonly printed: readonly string[];
  /** Every value masked, in the order registered. */
  readonly masks: readonly string[];
  /** Outputs set by `set-output` lines (the GITHUB_OUTPUT file's are apart from these). */
  readonly outputs: Readonly<Record<string, string>>;
  readonly state: Readonly<Record<string, string>>;
  readonly annotations: readonly Annotation[];
  /** `debug` lines (shown with step debug logging on), masked. */
  readonly debug: readonly string[];
  /** Why the step failed because of a command (a disabled one, a missing `name`, a refused token). */
  readonly failures: readonly string[];
  /** Problem-matcher files the runner would load or unload. */
  readonly matchers: readonly string[];
}

export interface RunnerOptions {
  /** `::echo::on` already given (ACTIONS_STEP_DEBUG turns it on). */
  readonly echo?: boolean;
}

// ---------------------------------------------------------------------------------------------
// .NET string behaviour the parser relies on

/** char.IsWhiteSpace: Unicode space separators, line and paragraph separators, TAB to CR, NEL. */
const NET_WHITESPACE = /[\p{Zs}\p{Zl}\p{Zp}\t\n\v\f\r\u0085]/u;
const netTrimStart = (s: string) => {
  let i = 0;
  while (i < s.length && NET_WHITESPACE.test(s[i] as string)) i++;
  return s.slice(i);
};
const netTrim = (s: string) => {
  let end = s.length;
  while (end > 0 && NET_WHITESPACE.test(s[end - 1] as string)) end--;
  return netTrimStart(s.slice(0, end));
};

/**
 * String.Split(separator, count, StringSplitOptions.RemoveEmptyEntries): empty pieces dropped, and
 * once count - 1 pieces are taken the empty ones after them are skipped and the rest is the last
 * piece (so `a==b` split on `=` in 2 is `a` and `b`).
 */
function netSplit(s: string, separator: string, count = Number.POSITIVE_INFINITY): string[] {
  const pieces: string[] = [];
  const at: number[] = [];
  for (let i = s.indexOf(separator); i >= 0; i = s.indexOf(separator, i + separator.length)) at.push(i);
  let current = 0;
  for (let i = 0; i < at.length; i++) {
    const piece = s.slice(current, at[i]);
    if (piece !== "") pieces.push(piece);
    current = (at[i] as number) + separator.length;
    if (pieces.length === count - 1) {
      while (++i < at.length && s.slice(current, at[i]) === "") current = (at[i] as number) + separator.length;
      break;
    }
  }
  const last = s.slice(current);
  if (last !== "") pieces.push(last);
  return pieces;
}

/** Each `[escaped, character]` replaced in order, as the runner's EscapeMapping lists are applied. */
const unescapeWith = (mappings: readonly (readonly [string, string])[]) => (s: string) =>
  mappings.reduce((text, [escaped, character]) => text.split(escaped).join(character), s);
/** `::` data; its properties also unescape `:` and `,`, and the `##[` form `;` and `]` in both. */
const unescapeData = unescapeWith([
  ["%0D", "\r"],
  ["%0A", "\n"],
  ["%25", "%"],
]);
const unescapeV2Property = unescapeWith([
  ["%0D", "\r"],
  ["%0A", "\n"],
  ["%3A", ":"],
  ["%2C", ","],
  ["%25", "%"],
]);
const unescapeV1 = unescapeWith([
  ["%3B", ";"],
  ["%0D", "\r"],
  ["%0A", "\n"],
  ["%5D", "]"],
  ["%25", "%"],
]);

// ---------------------------------------------------------------------------------------------
// ActionCommand.TryParseV2 and TryParse

type Parsed = Omit<RunnerCommand, "line" | "stream">;

function properties(pairs: readonly string[], unescapeValue: (s: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const [key, value] = netSplit(pair, "=", 2);
    if (key !== undefined && value !== undefined) out[key.toLowerCase()] = unescapeValue(value);
  }
  return out;
}

/** `::name props::data`, at the start of the line once leading whitespace is trimmed. */
function parseV2(line: string, registered: ReadonlySet<string>): Parsed | undefined {
  const message = netTrimStart(line);
  if (!message.startsWith("::")) return undefined;
  const end = message.indexOf("::", 2);
  if (end < 0) return undefined;
  const info = message.slice(2, end);
  const space = info.indexOf(" ");
  const name = space < 0 ? info : info.slice(0, space);
  if (name === "" || !registered.has(name.toLowerCase())) return undefined;
  const props = space > 0 ? properties(netSplit(netTrim(info.slice(space + 1)), ","), unescapeV2Property) : {};
  return { name, properties: props, data: unescapeData(message.slice(end + 2)), form: "::" };
}

/** `##[name props]data`, wherever the first `##[` of the line is. */
function parseV1(line: string, registered: ReadonlySet<string>): Parsed | undefined {
  const prefix = line.indexOf("##[");
  if (prefix < 0) return undefined;
  const bracket = line.indexOf("]", prefix);
  if (bracket < 0) return undefined;
  const info = line.slice(prefix + 3, bracket);
  const space = info.indexOf(" ");
  const name = space < 0 ? info : info.slice(0, space);
  if (name === "" || !registered.has(name.toLowerCase())) return undefined;
  const props = space > 0 ? properties(netSplit(info.slice(space + 1), ";"), unescapeV1) : {};
  return { name, properties: props, data: unescapeV1(line.slice(bracket + 1)), form: "##[" };
}

// ---------------------------------------------------------------------------------------------
// SecretMasker

/** Every occurrence of every value replaced by `***`, overlapping occurrences merged into one. */
export function maskSecrets(text: string, values: readonly string[]): string {
  const ranges: Array<[start: number, end: number]> = [];
  for (const value of values) {
    if (value === "") continue;
    for (let at = text.indexOf(value); at >= 0; at = text.indexOf(value, at + 1)) ranges.push([at, at + value.length]);
  }
  if (ranges.length === 0) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of ranges) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  let out = "";
  let from = 0;
  for (const [start, end] of merged) {
    out += `${text.slice(from, start)}***`;
    from = end;
  }
  return out + text.slice(from);
}

/** .NET ReadLine: CR, LF or CRLF ends a line; a final line break adds no empty line. */
const readLines = (text: string): string[] => {
  if (text === "") return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (/[\r\n]$/.test(text)) lines.pop();
  return lines;
};

/**
 * What the step summary shows: each line masked as the runner masks the file before it uploads it,
 * then rendered, so that character references (`&#95;`, `&lt;`) read as the characters they are.
 */
export function renderedSummary(summary: string, masks: readonly string[]): string {
  const masked = readLines(summary)
    .map((line) => maskSecrets(line, masks))
    .join("\n");
  const named: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
  return masked.replace(/&(?:#(\d+)|#[xX]([0-9a-fA-F]+)|([A-Za-z]+));/g, (ref, dec, hex, name) => {
    if (dec !== undefined || hex !== undefined) {
      const code = dec !== undefined ? Number(dec) : Number.parseInt(hex, 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : ref;
    }
    return named[name] ?? ref;
  });
}

// ---------------------------------------------------------------------------------------------
// ActionCommandManager.TryProcessCommand and OutputManager.OnDataReceived

/**
 * What the runner makes of a step's output. stderr is read first: the runner hands each batch of
 * stderr lines on before the batch of stdout lines, and a command on stderr then acts on all of
 * stdout, the order least kind to the step.
 */
export function readAsRunner(output: { stdout: string; stderr?: string }, options: RunnerOptions = {}): RunnerView {
  const registered = new Set<string>(REGISTERED_COMMANDS);
  const masks: string[] = [];
  const commands: RunnerCommand[] = [];
  const printed: string[] = [];
  const outputs: Record<string, string> = {};
  const state: Record<string, string> = {};
  const annotations: Annotation[] = [];
  const debug: string[] = [];
  const failures: string[] = [];
  const matchers: string[] = [];
  let echo = options.echo ?? false;
  let stopToken: string | undefined;

  const print = (line: string) => printed.push(maskSecrets(line, masks));
  const fail = (message: string) => {
    failures.push(message);
    annotations.push({ type: "error", message: maskSecrets(message, masks), properties: {} });
  };
  const addMask = (value: string) => {
    if (value !== "" && !masks.includes(value)) masks.push(value);
  };

  /** A command extension's work; throws where the runner's extension throws. */
  const carryOut = (command: RunnerCommand) => {
    const name = command.name.toLowerCase();
    const named = () => {
      const value = command.properties.name;
      if (value === undefined || value === "")
        throw new Error(`Required field 'name' is missing in ##[${name}] command.`);
      return value;
    };
    switch (name) {
      case "add-mask":
        if (command.data.trim() === "") annotations.push({ type: "warning", message: "empty mask", properties: {} });
        else {
          if (echo) print("::add-mask::***");
          addMask(command.data);
        }
        return;
      case "set-output":
        outputs[named()] = command.data;
        return;
      case "save-state":
        state[named()] = command.data;
        return;
      case "set-env":
      case "add-path":
        throw new Error(`The \`${name}\` command is disabled.`);
      case "add-matcher":
      case "remove-matcher":
        matchers.push(`${name} ${command.data}`);
        return;
      case "debug":
        debug.push(maskSecrets(command.data, masks));
        return;
      case "error":
      case "warning":
      case "notice":
        annotations.push({ type: name, message: maskSecrets(command.data, masks), properties: command.properties });
        return;
      case "group":
        print(`##[group]${command.data}`);
        return;
      case "endgroup":
        print("##[endgroup]");
        return;
      case "echo": {
        const value = command.data.trim().toUpperCase();
        if (value !== "ON" && value !== "OFF") throw new Error(`Invalid echo command value: '${command.data}'.`);
        echo = value === "ON";
        return;
      }
    }
  };
  /** Commands that do not print themselves when echo is on. */
  const omitEcho = new Set(["add-mask", "debug", "error", "warning", "notice"]);

  /** True when the line was taken as a command (and so not printed as output). */
  const tryCommand = (line: string, stream: RunnerCommand["stream"]): boolean => {
    const parsed = parseV2(line, registered) ?? parseV1(line, registered);
    if (!parsed) return false;
    const command: RunnerCommand = { ...parsed, line, stream };
    const name = command.name.toLowerCase();
    if (stopToken !== undefined) {
      if (stopToken === "" || name !== stopToken.toLowerCase()) return false;
      print(line);
      registered.delete(stopToken.toLowerCase());
      stopToken = undefined;
      commands.push(command);
      return true;
    }
    commands.push(command);
    if (name === "stop-commands") {
      const token = command.data;
      if (token === "" || registered.has(token.toLowerCase()) || REFUSED_STOP_TOKENS.includes(token.toLowerCase())) {
        fail(`stop-commands with the token "${token}" is refused`);
        return true;
      }
      stopToken = token;
      registered.add(token.toLowerCase());
      if (token.length > 6) addMask(token);
      print(line);
      return true;
    }
    if (echo && !omitEcho.has(name)) print(line);
    try {
      carryOut(command);
    } catch (error) {
      fail(`Unable to process command '${omitEcho.has(name) ? name : line}' successfully: ${(error as Error).message}`);
    }
    return true;
  };

  for (const [stream, text] of [
    ["stderr", output.stderr ?? ""],
    ["stdout", output.stdout],
  ] as const)
    for (const line of readLines(text)) {
      const mayBeCommand = line !== "" && (line.includes("##[") || line.includes("::"));
      if (!(mayBeCommand && tryCommand(line, stream))) print(line);
    }
  return { commands, printed, masks, outputs, state, annotations, debug, failures, matchers };
}
