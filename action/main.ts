/**
 * @module action/main
 * The sender's only impure layer, shared by the action and the CLI: reads inputs once, masks
 * every secret, loads the payload and TLS material, obtains the ID token for generic-oidc, then
 * delivers to each receiver and reports through an `Io` (the runner's commands, or plain lines).
 * Every decision lives in a pure module (inputs, request, deliver, transport helpers, report)
 * that is tested on its own.
 */
import * as core from "@actions/core";
import { createHash, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { version } from "../package.json";
import { deliver } from "./deliver";
import { reusedToken } from "./id-token";
import { maskUrl } from "./destination";
import { parseInputs, type ActionConfig } from "./inputs";
import { actionsIo, plainIo, type Io } from "./io";
import {
  bodyExcerpt,
  failureMessage,
  receiverReason,
  receiverTargets,
  resultName,
  revisionOutput,
  scrub,
  stepOutputs,
  summaryTable,
  type DeliveryResult,
  type ReportContext,
} from "./report";
import { buildRequest, buildStatusQuery, hookId, redactHeaders, type RequestSettings } from "./request";
import { MAX_STATUS_ANSWER_BYTES, annotatedTargets, mapPool } from "../shared";
import { MAX_DELIVERY_ANSWER_BYTES, MAX_WAITED_TARGETS, chainRows, waitForFlux, type WaitResult } from "./wait";
import { preflight, type Material } from "./preflight";
import { createTransport, describeRoute, type Route } from "./transport";
import { Output, type Env, type InputGetter, type OutgoingRequest, type Send, type SendResult } from "./vocabulary";

/**
 * GitHub's `User-Agent` is `GitHub-Hookshot/<short id of its build>`, and some consumers only
 * accept that form; the id here names this fluxhook version the same way (seven hex digits).
 */
export const USER_AGENT = `GitHub-Hookshot/${createHash("sha256").update(`fluxhook-action/${version}`).digest("hex").slice(0, 7)}`;

/** Deliveries in flight at once when `receiver` lists several: quick, without a burst. */
export const MAX_PARALLEL_DELIVERIES = 4;

/** Exit codes (the CLI's; the action only fails or succeeds): delivered, failed, bad usage. */
export const Exit = { delivered: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An ID token for generic-oidc; `usage` when the caller did not make one available at all. */
export type IdTokenResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly error: string; readonly usage: boolean };

export interface RunDeps {
  readonly get: InputGetter;
  readonly env: Env;
  readonly io: Io;
  /** The ID token for `audience` (generic-oidc only). */
  readonly idToken: (audience: string) => Promise<IdTokenResult>;
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

/** A delivery of the step, before it is sent. */
interface Planned {
  readonly ctx: ReportContext;
  readonly deliveryId: string;
  readonly req: OutgoingRequest;
  /** What the request was built from: status queries are built from it too. */
  readonly settings: RequestSettings;
}

function logRequest(io: Io, config: ActionConfig, planned: readonly Planned[], material: Material, route: Route): void {
  const first = planned[0] as Planned;
  const target = new URL(first.ctx.url);
  const from =
    config.payload.kind === "inline" ? "the `payload` input" : `${config.payload.path} (${config.payload.from})`;
  io.startGroup("Request");
  if (planned.length === 1) {
    const t = first.ctx.target;
    io.info(
      `Receiver: ${maskUrl(first.ctx.url)}${t.kind === "receiver" ? ` (Receiver ${t.namespace}/${t.receiver})` : ""}`,
    );
  } else {
    io.info(`Receivers: ${planned.length} at ${maskUrl(first.ctx.url)}, ${MAX_PARALLEL_DELIVERIES} at a time`);
  }
  io.info(
    `Receiver type: ${config.receiverType}${config.oidcAudience !== undefined ? ` (ID token for audience "${config.oidcAudience}")` : ""}`,
  );
  io.info(
    `Event: ${config.event}${config.eventFrom === "GITHUB_EVENT_NAME" ? ` (from GITHUB_EVENT_NAME=${config.context.actionsEvent})` : ""}`,
  );
  io.info(
    `Payload: ${material.payload.byteLength} bytes from ${from}, sent as ${config.contentType} (${first.req.body.byteLength} bytes)`,
  );
  if (config.extraHeaders.length > 0)
    io.info(
      `Extra headers: ${Object.entries(redactHeaders(Object.fromEntries(config.extraHeaders)))
        .map(([n, v]) => `${n}: ${v}`)
        .join(", ")}`,
    );
  for (const p of planned)
    io.info(
      planned.length === 1 ? `Delivery ID: ${p.deliveryId}` : `Delivery ID for ${resultName(p.ctx)}: ${p.deliveryId}`,
    );
  io.info(`Route: ${describeRoute(route)}`);
  if (target.protocol === "https:") {
    const trust = config.tls.insecureSkipVerify
      ? "certificate NOT verified"
      : `verified against the default roots${material.tls.extraCa.length ? ` + ${material.tls.extraCa.length} extra CA input(s)` : ""}`;
    io.info(`TLS: ${trust}${material.tls.clientCert ? ", client certificate presented" : ""}`);
  }
  io.info(
    `Timeout: ${config.timeoutMs / 1000} s per attempt; ${config.retries === 0 ? "no retries" : `up to ${config.retries} retries`}`,
  );
  io.endGroup();
}

function logDryRun(io: Io, config: ActionConfig, { ctx, req }: Planned, several: boolean): void {
  io.startGroup(
    several ? `Dry run for ${resultName(ctx)}: this request is not sent` : "Dry run: this request is not sent",
  );
  io.info(`${req.method} ${maskUrl(req.url)}`);
  for (const [name, value] of Object.entries(redactHeaders(req.headers))) io.info(`${name}: ${value}`);
  io.info("");
  const preview =
    new TextDecoder().decode(req.body.subarray(0, 4096)) + (req.body.byteLength > 4096 ? "\n… (truncated)" : "");
  io.info(scrub(preview, config.secrets));
  io.endGroup();
}

/** Names a receiver's progress lines when several deliver or wait at once. */
const progressPrefix = (p: Planned, several: boolean) => (several ? `${resultName(p.ctx)}: ` : "");

/** `promise`'s value, or `fallback` once `ms` have passed (the promise is left to settle unheard). */
async function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
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

    // generic-oidc: one ID token for the delivery and the queries after it, until near its expiry.
    const audience = config.oidcAudience;
    const idToken =
      audience === undefined
        ? undefined
        : reusedToken(
            () => deps.idToken(audience),
            Date.now,
            (token) => io.setSecret(token),
          );
    let credential = config.token;
    if (idToken) {
      const first = await idToken();
      if (!first.ok) {
        io.fail(first.error);
        return first.usage ? Exit.usage : Exit.failed;
      }
      credential = first.value;
    }
    const secrets = [...config.secrets, credential];
    const clean = (text: string) => scrub(text, secrets);

    const planned = config.destinations.map((destination): Planned => {
      const ctx: ReportContext = {
        ...destination,
        event: config.event,
        receiverType: config.receiverType,
        timeoutMs: config.timeoutMs,
      };
      const deliveryId = randomUUID();
      const label =
        destination.target.kind === "receiver"
          ? `${resultName(ctx)} at ${maskUrl(destination.url)}`
          : maskUrl(destination.url);
      const settings: RequestSettings = {
        url: destination.url,
        credential,
        receiverType: config.receiverType,
        event: config.event,
        contentType: config.contentType,
        repositoryId: config.context.repositoryId,
        hookId: hookId(label),
        userAgent: config.userAgent ?? USER_AGENT,
        enterprise: config.context.enterprise,
        extraHeaders: config.extraHeaders,
      };
      return { ctx, deliveryId, req: buildRequest(settings, material.payload, deliveryId), settings };
    });
    const several = planned.length > 1;
    logRequest(io, config, planned, material, route);

    if (config.dryRun) {
      for (const p of planned) logDryRun(io, config, p, several);
      if (config.waitFor !== "none") io.info(`Dry run: not waiting for Flux (wait-for: ${config.waitFor}).`);
      return await report(
        io,
        config,
        clean,
        planned.map((p) => ({ ctx: p.ctx, deliveryId: p.deliveryId, outcome: undefined })),
      );
    }

    const { insecureSkipVerify } = config.tls;
    const transport = createTransport(route, { ...material.tls, insecureSkipVerify, timeoutMs: config.timeoutMs });

    let results: DeliveryResult[];
    try {
      const deliverOne = (p: Planned, log: (line: string) => void) =>
        deliver(
          p.req,
          {
            retries: config.retries,
            timeoutMs: config.timeoutMs,
            // Waiting needs the answer's whole list of targets and their requestedAt.
            ...(config.waitFor !== "none" ? { maxAnswerBytes: MAX_DELIVERY_ANSWER_BYTES } : {}),
          },
          { send: transport.send, sleep: (ms) => sleep(ms), now: Date.now, random: Math.random, log },
        );
      // Deliveries run side by side, each line written as it comes, named by its receiver when several.
      io.startGroup(several ? "Deliveries" : "Delivery");
      results = await mapPool(planned, MAX_PARALLEL_DELIVERIES, async (p) => {
        const outcome = await deliverOne(p, (line) => io.info(clean(`${progressPrefix(p, several)}${line}`)));
        return { ctx: p.ctx, deliveryId: p.deliveryId, outcome };
      });
      io.endGroup();
      const code = await report(io, config, clean, results);
      if (config.waitFor === "none" || code !== Exit.delivered) return code;
      return await waitPhase(io, config, clean, planned, results, {
        send: transport.send,
        credential: async () => (idToken ? idToken() : { ok: true, value: credential }),
      });
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

interface WaitIo {
  readonly send: Send;
  /** The credential for one query: the token, or for generic-oidc an ID token not near its expiry. */
  readonly credential: () => Promise<IdTokenResult>;
}

/**
 * wait-for: polls fluxhook's status query for each delivery that succeeded, writes the chain to
 * the job summary and `revision`, and fails (or warns, with fail-on-error false) with Flux's own
 * message or with the object still behind at the deadline.
 */
async function waitPhase(
  io: Io,
  config: ActionConfig,
  clean: (text: string) => string,
  planned: readonly Planned[],
  results: readonly DeliveryResult[],
  waitIo: WaitIo,
): Promise<ExitCode> {
  const mode = config.waitFor === "none" ? undefined : config.waitFor;
  if (!mode) return Exit.delivered;
  const several = results.length > 1;
  // Every receiver's poll lines are written as they come (a wait of minutes must not look hung),
  // named by their receiver when several wait at once.
  io.startGroup(`Waiting for Flux: ${mode}`);
  const failures: string[] = [];
  let revision: string | undefined;
  const waits = await mapPool(results, MAX_PARALLEL_DELIVERIES, async (result) => {
    const p = planned.find((x) => x.deliveryId === result.deliveryId) as Planned;
    const log = (line: string) => io.info(clean(`${progressPrefix(p, several)}${line}`));
    const last = result.outcome?.ok ? result.outcome.attempts[result.outcome.attempts.length - 1]?.result : undefined;
    if (last?.kind !== "response") return { p, wait: undefined };
    let body: unknown;
    try {
      body = JSON.parse(last.body);
    } catch {
      body = undefined;
    }
    const targets = annotatedTargets(body);
    if (last.bodyTruncated) {
      const message =
        `wait-for: ${mode} cannot list what to wait for: the receiver's answer to the delivery is longer than the ` +
        `${MAX_DELIVERY_ANSWER_BYTES} bytes that ${MAX_WAITED_TARGETS} targets take, the most wait-for follows.`;
      return { p, wait: { ok: false, message, answer: undefined, polls: 0 } satisfies WaitResult };
    }
    if (targets && targets.length > MAX_WAITED_TARGETS) {
      const message = `wait-for: ${mode} follows at most ${MAX_WAITED_TARGETS} targets; this delivery annotated ${targets.length}.`;
      return { p, wait: { ok: false, message, answer: undefined, polls: 0 } satisfies WaitResult };
    }
    if (!targets) {
      const message =
        `wait-for: ${mode} needs fluxhook's status query, and this receiver's answer lists no targets with ` +
        "their requestedAt (Flux's notification-controller answers without a body): use wait-for: none with it.";
      return { p, wait: { ok: false, message, answer: undefined, polls: 0 } satisfies WaitResult };
    }
    if (targets.length === 0) {
      log("Nothing was annotated: nothing to wait for.");
      return { p, wait: undefined };
    }
    const wait = await waitForFlux(targets, mode, config.waitTimeoutMs, {
      query: async (batch, left) => {
        const timeoutMs = Math.min(config.timeoutMs, left);
        const credential = await withTimeout(waitIo.credential(), timeoutMs, {
          ok: false,
          usage: false,
          error: `no ID token within ${timeoutMs} ms`,
        });
        if (!credential.ok)
          return {
            kind: "error",
            error: { code: "ID_TOKEN", message: credential.error, retryable: true },
          } as SendResult;
        const query = buildStatusQuery({ ...p.settings, credential: credential.value }, batch, p.deliveryId);
        return waitIo.send(query, timeoutMs, MAX_STATUS_ANSWER_BYTES);
      },
      sleep: (ms) => sleep(ms),
      now: Date.now,
      random: Math.random,
      log,
    });
    return { p, wait };
  });
  io.endGroup();
  for (const { p, wait } of waits) {
    if (!wait) continue;
    // The chain in the log too: outside Actions (the CLI) there is no job summary.
    if (wait.answer) {
      io.startGroup(`Flux${several ? ` for ${resultName(p.ctx)}` : ""}: ${mode}`);
      for (const [object, rev, ready] of chainRows(wait.answer).slice(1))
        io.info(clean(`${object}: ${rev || "no revision"}; Ready ${ready}`));
      io.endGroup();
    }
    if (wait.answer)
      await io.writeSummary(
        chainRows(wait.answer).map((row) => row.map(clean)),
        `Flux${several ? ` for ${resultName(p.ctx)}` : ""}, wait-for ${mode}: ${wait.ok ? (wait.revision ?? "done") : "failed"}`,
      );
    if (wait.ok) {
      revision ??= wait.revision;
      io.info(
        clean(
          `Flux ${mode === "ready" ? "is Ready" : "reconciled"}${several ? ` for ${resultName(p.ctx)}` : ""}${wait.revision ? ` at ${wait.revision}` : ""} (${wait.polls} poll(s)).`,
        ),
      );
    } else failures.push(clean(`${several ? `${resultName(p.ctx)}: ` : ""}${wait.message}`));
  }
  if (revision !== undefined) {
    const checked = revisionOutput(revision);
    if (checked.ok) io.setOutput(Output.revision, revision);
    else io.warning(checked.warning);
  }
  if (failures.length === 0) return Exit.delivered;
  const message =
    failures.length === 1
      ? (failures[0] as string)
      : ["Flux did not get there:", ...failures.map((f) => `  - ${f}`)].join("\n");
  if (config.failOnError) {
    io.fail(message);
    return Exit.failed;
  }
  io.warning(`${message} (fail-on-error is false: the step succeeds.)`);
  return Exit.delivered;
}

/** Outputs, each response in the log, the job summary, then success, a warning or a failure. */
async function report(
  io: Io,
  config: ActionConfig,
  clean: (text: string) => string,
  results: readonly DeliveryResult[],
): Promise<ExitCode> {
  for (const [name, value] of Object.entries(stepOutputs(results))) io.setOutput(name, clean(value));
  const several = results.length > 1;

  for (const { ctx, outcome } of results) {
    const last = outcome?.attempts[outcome.attempts.length - 1]?.result;
    if (last?.kind !== "response") continue;
    io.startGroup(`Response${several ? ` from ${resultName(ctx)}` : ""}: HTTP ${last.status}`);
    for (const [name, value] of Object.entries(last.headers)) io.info(clean(`${name}: ${value}`));
    io.info("");
    io.info(last.body === "" ? "(empty body)" : clean(bodyExcerpt(last, 4096)));
    io.endGroup();
  }

  await io.writeSummary(summaryTable(results, config.dryRun).map((row) => row.map(clean)));

  if (config.dryRun) {
    io.info("Dry run: nothing was sent.");
    return Exit.delivered;
  }
  const failures: string[] = [];
  for (const { ctx, outcome } of results) {
    if (!outcome) continue;
    const last = outcome.attempts[outcome.attempts.length - 1]?.result;
    const body = last?.kind === "response" ? last.body : "";
    const targets = receiverTargets(body);
    if (targets.length > 0) io.info(clean(`Targets${several ? ` of ${resultName(ctx)}` : ""}: ${targets.join(", ")}`));
    if (outcome.ok) {
      const reason = receiverReason(body);
      io.info(
        clean(
          `Delivered ${config.event} to ${several ? `${resultName(ctx)} at ` : ""}${maskUrl(ctx.url)}: HTTP ${outcome.status} after ${outcome.attempts.length} attempt(s)${reason ? ` (${reason})` : ""}.`,
        ),
      );
    } else failures.push(clean(failureMessage(outcome, ctx)));
  }
  if (failures.length === 0) return Exit.delivered;
  const message = several
    ? [`${failures.length} of ${results.length} deliveries failed:`, ...failures.map((f) => `  - ${f}`)].join("\n")
    : (failures[0] as string);
  if (config.failOnError) {
    io.fail(message);
    return Exit.failed;
  }
  io.warning(`${message} (fail-on-error is false: the step succeeds.)`);
  return Exit.delivered;
}
