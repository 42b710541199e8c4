/**
 * @module action/cli
 * `fluxhook send`: the action's own `run` for other CI systems (GitLab CI, Jenkins, Tekton,
 * Buildkite) and terminals. Flags are the action's input names (`--receiver-type github`,
 * `--dry-run`); the token comes from `--token` or, better (a flag shows in `ps`), FLUXHOOK_TOKEN;
 * generic-oidc takes the CI's ID token from the variable `--oidc-token-env` names.
 *
 * Outside GitHub Actions every line goes to stderr through the plain Io (no workflow commands,
 * every secret replaced), and stdout gets one line: the `results` JSON. Inside Actions it speaks
 * the runner's commands, as the action does. Exit codes: 0 delivered, 1 failed, 2 bad usage.
 */
import { writeSync } from "node:fs";
import { parseArgs as parseNodeArgs } from "node:util";
import { version } from "../package.json";
import { DEFAULTS, LIMITS } from "./defaults";
import { actionsIo, plainIo, type Io } from "./io";
import { inGitHubActions, run, runnerIdToken } from "./main";
import {
  Exit,
  Input,
  Output,
  SUPPORTED_RECEIVER_TYPES,
  type Env,
  type ExitCode,
  type IdTokenResult,
  type InputName,
} from "./vocabulary";

/** The CLI's own flags, beside the inputs. */
export const CliFlag = { oidcTokenEnv: "oidc-token-env", help: "help", version: "version" } as const;

/** The variable read when `--token` is not given. */
export const TOKEN_ENV = "FLUXHOOK_TOKEN";

/** Flags that are true or false; given alone they mean true. */
const BOOLEAN_FLAGS: readonly InputName[] = [Input.failOnError, Input.dryRun, Input.insecureSkipTlsVerify];
/** Flags that may be given several times, one line each. */
const REPEATABLE_FLAGS: readonly InputName[] = [Input.receiver, Input.headers];

/** One line per flag; a test checks that every input has one. */
const FLAG_HELP: Readonly<Record<InputName, string>> = {
  [Input.token]: `the Receiver's Secret token; default: $${TOKEN_ENV} (prefer it: flags show in ps)`,
  [Input.url]: "the full receiver URL (a secret); or --address with --receiver",
  [Input.address]: "the receiver's base URL, e.g. https://flux-webhook.corp.internal",
  [Input.receiver]: `a Receiver's name or namespace/name; repeat for several (at most ${LIMITS.maxReceivers})`,
  [Input.namespace]: `the Receivers' namespace when a name has none (default ${DEFAULTS.namespace})`,
  [Input.receiverType]: `${SUPPORTED_RECEIVER_TYPES.join(", ")} (default ${DEFAULTS.receiverType})`,
  [Input.event]: "the event name to send, e.g. push (required outside GitHub Actions)",
  [Input.payload]: "the JSON body, inline",
  [Input.payloadFile]: "a file whose exact bytes are the JSON body",
  [Input.contentType]: `json or form (default ${DEFAULTS.contentType})`,
  [Input.timeoutSeconds]: `per attempt (default ${DEFAULTS.timeoutSeconds}, at most ${LIMITS.maxTimeoutSeconds})`,
  [Input.retries]: `extra attempts after errors, 429 and 5xx (default ${DEFAULTS.retries}, at most ${LIMITS.maxRetries})`,
  [Input.failOnError]: "=false: exit 0 even when the delivery fails (default true)",
  [Input.dryRun]: "print the request (secrets redacted) and send nothing",
  [Input.caFile]: "PEM CA certificate(s) to trust, added to the default roots",
  [Input.ca]: "the same, inline",
  [Input.clientCert]: "mTLS client certificate (PEM, or a path to one)",
  [Input.clientKey]: "mTLS client key (PEM, or a path to one)",
  [Input.insecureSkipTlsVerify]: "do not verify the receiver's certificate (a last resort)",
  [Input.headers]: "an extra header, `Name: value`; repeat for several (credential values are masked)",
  [Input.oidcAudience]: `generic-oidc inside GitHub Actions: the ID token's audience (default ${DEFAULTS.oidcAudience})`,
  [Input.userAgent]: "the User-Agent to send (default GitHub-Hookshot/<id>, as GitHub's)",
  [Input.waitFor]: "none, reconciled or ready: wait for Flux through fluxhook's status query (default none)",
  [Input.waitTimeoutSeconds]: `how long to wait for Flux (default ${DEFAULTS.waitTimeoutSeconds}, at most ${LIMITS.maxWaitTimeoutSeconds})`,
};

export const HELP = [
  "Usage: fluxhook send [flags]",
  "",
  "Signs an event as GitHub (or GitLab, Bitbucket, Harbor, a generic-hmac sender) does, or presents",
  "a CI's OIDC identity, and delivers it to Flux Receivers. The flags are the GitHub Action's inputs.",
  "",
  "Flags (--name value or --name=value):",
  ...Object.entries(FLAG_HELP).map(([name, text]) => `  --${name.padEnd(26)}${text}`),
  `  --${CliFlag.oidcTokenEnv.padEnd(26)}generic-oidc: the variable holding the CI's ID token (GitLab CI: id_tokens)`,
  `  --${CliFlag.version.padEnd(26)}the version (package.json's)`,
  `  --${CliFlag.help.padEnd(26)}this text`,
  "",
  "Outside GitHub Actions, the log goes to stderr with every secret replaced by ***, and stdout gets",
  "the results as JSON: [{receiver, status, delivery-id, attempts}].",
  "Exit codes: 0 delivered, 1 a delivery failed, 2 bad usage (flags, inputs, files).",
].join("\n");

export type ParsedArgs =
  | {
      readonly ok: true;
      readonly help: boolean;
      readonly version: boolean;
      readonly values: ReadonlyMap<string, string>;
    }
  | { readonly ok: false; readonly error: string };

/** node:util's option table: every input as a string flag (booleans too: see parseArgs), the repeatable ones `multiple`. */
const OPTIONS = {
  ...Object.fromEntries(
    Object.values(Input).map((name) => [name, { type: "string" as const, multiple: REPEATABLE_FLAGS.includes(name) }]),
  ),
  [CliFlag.oidcTokenEnv]: { type: "string" as const },
  [CliFlag.help]: { type: "boolean" as const, short: "h" },
  [CliFlag.version]: { type: "boolean" as const },
};

type Token = NonNullable<ReturnType<typeof parseNodeArgs>["tokens"]>[number];

/** The flag named in one of node:util's parse errors (`Unknown option '--tokn'`), never its value. */
const flagIn = (message: string) => /'(--?[A-Za-z0-9-]+)/.exec(message)?.[1] ?? "a flag";

/**
 * `--name value`, `--name=value`, and the true-or-false inputs alone, through node:util's
 * parseArgs (strict). The server's flags have their own scanner (server/config.ts scanFlags):
 * they follow Flux's Go flag syntax, which parseArgs does not read. Those inputs are string options, so that `--dry-run=false` works on Node 20
 * too (its boolean options take no value); a bare one is given the value "true" first. Errors name
 * the flag, never its value (a value may be the token). An optional leading `send` is the command.
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const args = argv.flatMap((arg, i) =>
    BOOLEAN_FLAGS.some((name) => arg === `--${name}`) && !["true", "false"].includes(argv[i + 1] ?? "")
      ? [arg, "true"]
      : [arg],
  );
  let parsed: { values: Record<string, unknown>; tokens: Token[] };
  try {
    parsed = parseNodeArgs({ args, options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    const { code, message } = err as { code?: string; message?: string };
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return { ok: false, error: `unknown flag ${flagIn(message ?? "")}` };
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
      return {
        ok: false,
        error: /ambiguous/.test(message ?? "")
          ? `${flagIn(message ?? "")} needs a value (one that starts with - is given as ${flagIn(message ?? "")}=VALUE)`
          : `${flagIn(message ?? "")} needs a value`,
      };
    throw err;
  }
  const values = new Map<string, string>();
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind === "positional" && !(token.index === 0 && token.value === "send"))
      return { ok: false, error: `unexpected argument #${token.index + 1} (flags start with --)` };
    if (token.kind !== "option" || token.name === CliFlag.help || token.name === CliFlag.version) continue;
    if (seen.has(token.name) && !REPEATABLE_FLAGS.includes(token.name as InputName))
      return { ok: false, error: `--${token.name} is given twice` };
    seen.add(token.name);
    const before = values.get(token.name);
    values.set(token.name, before === undefined ? (token.value ?? "") : `${before}\n${token.value ?? ""}`);
  }
  return { ok: true, help: parsed.values.help === true, version: parsed.values.version === true, values };
}

export interface CliStreams {
  /** The results line (stdout). */
  readonly out: (text: string) => void;
  /** Usage errors and help when they cannot go through an Io (stderr). */
  readonly err: (text: string) => void;
}

const defaultStreams: CliStreams = {
  out: (text) => writeSync(1, text),
  err: (text) => writeSync(2, text),
};

/** Runs `fluxhook send` with `argv` (the arguments after `send`) and returns the exit code. */
export async function cli(argv: readonly string[], env: Env, streams: CliStreams = defaultStreams): Promise<ExitCode> {
  const args = parseArgs(argv);
  if (!args.ok) {
    streams.err(`fluxhook send: ${args.error}\nRun \`fluxhook send --help\` for the flags.\n`);
    return Exit.usage;
  }
  if (args.help) {
    streams.out(`${HELP}\n`);
    return Exit.delivered;
  }
  if (args.version) {
    streams.out(`${version}\n`);
    return Exit.delivered;
  }
  const { values } = args;
  const inActions = inGitHubActions(env);
  const plain = inActions ? undefined : plainIo();
  const io: Io = plain ?? actionsIo();

  const tokenEnv = values.get(CliFlag.oidcTokenEnv);
  const receiverType = values.get(Input.receiverType) ?? DEFAULTS.receiverType;
  if (tokenEnv !== undefined && receiverType !== "generic-oidc") {
    streams.err(`fluxhook send: --${CliFlag.oidcTokenEnv} is only used with --receiver-type generic-oidc\n`);
    return Exit.usage;
  }
  const idToken = async (audience: string): Promise<IdTokenResult> => {
    if (tokenEnv !== undefined) {
      const value = env[tokenEnv]?.trim() ?? "";
      return value !== ""
        ? { ok: true, value }
        : {
            ok: false,
            usage: true,
            error: `--${CliFlag.oidcTokenEnv} ${tokenEnv}: the variable ${tokenEnv} is not set or empty.`,
          };
    }
    if (inActions) return runnerIdToken(env, audience);
    return {
      ok: false,
      usage: true,
      error: `receiver-type generic-oidc needs an ID token: pass --${CliFlag.oidcTokenEnv} NAME, the variable that holds your CI's token (GitLab CI: an id_tokens entry with aud: ${audience}).`,
    };
  };

  const code = await run({
    get: (name) => values.get(name) ?? (name === Input.token ? (env[TOKEN_ENV] ?? "") : ""),
    env,
    io,
    idToken,
  });
  const results = plain?.outputs.get(Output.results);
  if (results !== undefined) streams.out(`${results}\n`);
  return code;
}
