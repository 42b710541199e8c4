/**
 * @module action/main
 * The sender's `run`, shared by the action and the CLI: inputs read and every secret masked, files
 * and route checked, the ID token obtained for generic-oidc, then each receiver delivered to,
 * reported, and waited for, all through an `Io` (the runner's commands, or plain lines). Each
 * step is a module of its own (preflight, plan, deliver-all, wait-all, step-report), and every
 * decision lives in a pure module (inputs, request, deliver, wait, report) tested on its own.
 */
import * as core from "@actions/core";
import { reusedToken } from "./id-token";
import { deliverAll } from "./deliver-all";
import { parseInputs, type ActionConfig } from "./inputs";
import { actionsIo, plainIo, type Io } from "./io";
import { logDryRun, logPlan, planDeliveries, unsent, type Step } from "./plan";
import { preflight, type Material } from "./preflight";
import { reportDeliveries, reportWaits } from "./step-report";
import { createTransport, type Route } from "./transport";
import { waitForAll } from "./wait-all";
import { Exit, type Env, type ExitCode, type IdTokenResult, type InputGetter } from "./vocabulary";

export interface RunDeps {
  readonly get: InputGetter;
  readonly env: Env;
  readonly io: Io;
  /** The ID token for `audience` (generic-oidc only). */
  readonly idToken: (audience: string) => Promise<IdTokenResult>;
}

/** Delivers, reports and returns the exit code; every failure is reported through `deps.io`. */
export async function run(deps: RunDeps = defaultDeps()): Promise<ExitCode> {
  const { io } = deps;
  try {
    const ready = await prepare(deps);
    if (!ready.ok) {
      io.fail(ready.failure);
      return Exit.usage;
    }
    const { config, material, route } = ready;
    const credential = credentialOf(config, deps);
    const first = await credential();
    if (!first.ok) {
      io.fail(first.error);
      return first.usage ? Exit.usage : Exit.failed;
    }
    const step: Step = { io, config };

    const planned = planDeliveries(config, material.payload, first.value);
    logPlan(step, planned, material, route);
    if (config.dryRun) {
      logDryRun(step, planned);
      return await reportDeliveries(step, unsent(planned));
    }
    const { insecureSkipVerify } = config.tls;
    const transport = createTransport(route, { ...material.tls, insecureSkipVerify, timeoutMs: config.timeoutMs });
    try {
      const results = await deliverAll(step, planned, transport.send);
      const code = await reportDeliveries(step, results);
      if (config.waitFor === "none" || code !== Exit.delivered) return code;
      const waitIo = { send: transport.send, credential };
      const waited = await waitForAll(step, config.waitFor, planned, results, waitIo);
      return await reportWaits(step, config.waitFor, waited);
    } finally {
      await transport.close();
    }
  } catch (error) {
    // Only bugs get here: expected failures are values above. Keep the stack for a debug run.
    if (error instanceof Error && error.stack) io.debug(error.stack);
    io.fail(`Unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    return Exit.failed;
  }
}

/**
 * The credential of the delivery and of every status query after it: the token, or for
 * generic-oidc one ID token, reused until shortly before it expires (each new one masked first).
 */
function credentialOf(config: ActionConfig, { idToken, io }: RunDeps): () => Promise<IdTokenResult> {
  const audience = config.oidcAudience;
  if (audience === undefined) return async () => ({ ok: true, value: config.token });
  return reusedToken(
    () => idToken(audience),
    Date.now,
    (token) => io.setSecret(token),
  );
}

type Prepared =
  | { readonly ok: true; readonly config: ActionConfig; readonly material: Material; readonly route: Route }
  | { readonly ok: false; readonly failure: string };

/**
 * Inputs parsed, every secret masked before anything else is written, the route taken and the
 * files read: the problems of all three in one failure, so a user fixes them in one round.
 */
async function prepare({ get, env, io }: RunDeps): Promise<Prepared> {
  const parsed = parseInputs(get, env);
  // Before any other output: the runner then masks these values in every later log line.
  for (const secret of parsed.secrets) io.setSecret(secret);
  if (parsed.ok) for (const warning of parsed.config.warnings) io.warning(warning);
  const checked = await preflight(parsed.preflight);
  if (parsed.ok && checked.ok)
    return { ok: true, config: parsed.config, material: checked.material, route: checked.route };
  return { ok: false, failure: startFailure(parsed.ok ? [] : parsed.errors, checked.ok ? [] : checked.errors) };
}

/**
 * The failure for problems found before sending: every one listed under "Invalid inputs:", except
 * a lone problem of a file or the route, which reads as itself.
 */
function startFailure(inputErrors: readonly string[], preflightErrors: readonly string[]): string {
  if (inputErrors.length === 0 && preflightErrors.length === 1) return preflightErrors[0] as string;
  return ["Invalid inputs:", ...[...inputErrors, ...preflightErrors].map((error) => `  - ${error}`)].join("\n");
}

/**
 * The runner's ID token, as `core.getIDToken` asks for it (ACTIONS_ID_TOKEN_REQUEST_URL with
 * `&audience=`, authorized by ACTIONS_ID_TOKEN_REQUEST_TOKEN); the runner sets both only for a
 * job with `permissions: id-token: write`. core masks the token before returning it.
 */
export async function runnerIdToken(env: Env, audience: string): Promise<IdTokenResult> {
  if (!env.ACTIONS_ID_TOKEN_REQUEST_URL || !env.ACTIONS_ID_TOKEN_REQUEST_TOKEN)
    return {
      ok: false,
      usage: true,
      error:
        "receiver-type generic-oidc needs the runner's ID token, and the runner offers none: give the job " +
        "`permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL is not set).",
    };
  try {
    return { ok: true, value: await core.getIDToken(audience) };
  } catch (err) {
    return {
      ok: false,
      usage: false,
      error: `Cannot get the runner's ID token for audience "${audience}": ${err instanceof Error ? err.message.replace(/\s+/g, " ") : String(err)}`,
    };
  }
}

/** Whether the runner's workflow commands are understood here (the runner sets GITHUB_ACTIONS). */
export const inGitHubActions = (env: Env): boolean => env.GITHUB_ACTIONS === "true";

/**
 * The action's dependencies. Outside a runner (someone running the bundle by hand) nothing reads
 * `::add-mask::`, so the plain Io prints lines with every secret replaced instead.
 */
export const defaultDeps = (): RunDeps => ({
  // Untrimmed: inputs.ts decides how each input is trimmed (the token only loses ASCII whitespace).
  get: (name) => core.getInput(name, { trimWhitespace: false }),
  env: process.env,
  io: inGitHubActions(process.env) ? actionsIo() : plainIo(),
  idToken: (audience) => runnerIdToken(process.env, audience),
});
