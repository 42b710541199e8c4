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
import { DEFAULTS, LIMITS } from "./inputs";
import { actionsIo, plainIo, type Io } from "./io";
import { Exit, inGitHubActions, run, runnerIdToken, type ExitCode, type IdTokenResult } from "./main";
import { Input, SUPPORTED_RECEIVER_TYPES, type Env, type InputName, Output } from "./vocabulary";

/** The CLI's own flags, beside the inputs. */
export const CliFlag = { oidcTokenEnv: "oidc-token-env", help: "help" } as const;

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
  `  --${CliFlag.help.padEnd(26)}this text`,
  "",
  "Outside GitHub Actions, the log goes to stderr with every secret replaced by ***, and stdout gets",
  "the results as JSON: [{receiver, status, delivery-id, attempts}].",
  "Exit codes: 0 delivered, 1 a delivery failed, 2 bad usage (flags, inputs, files).",
].join("\n");

export type ParsedArgs =
  | { readonly ok: true; readonly help: boolean; readonly values: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly error: string };

const FLAG_NAMES: ReadonlySet<string> = new Set([...Object.values(Input), ...Object.values(CliFlag)]);

/**
 * `--name value`, `--name=value`, and booleans alone. Written by hand: node:util's parseArgs
 * cannot take `--dry-run=false` on Node 20, and the flags must be exactly the inputs' names.
 * Errors name the flag, never its value (a value may be the token).
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) return { ok: false, error: `unexpected argument #${i + 1} (flags start with --)` };
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!FLAG_NAMES.has(name)) return { ok: false, error: `unknown flag --${name}` };
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (BOOLEAN_FLAGS.includes(name as InputName)) {
      const next = argv[i + 1];
      value = "true";
      if (next === "true" || next === "false") {
        value = next;
        i++;
      }
    } else {
      const next = argv[++i];
      if (next === undefined) return { ok: false, error: `--${name} needs a value` };
      value = next;
    }
    const before = values.get(name);
    if (before !== undefined && !REPEATABLE_FLAGS.includes(name as InputName))
      return { ok: false, error: `--${name} is given twice` };
    values.set(name, before === undefined ? value : `${before}\n${value}`);
  }
  return { ok: true, help, values };
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
