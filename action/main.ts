/**
 * @module action/main
 * The action's only impure layer: reads inputs once, masks every secret, loads the payload and TLS
 * material, then delivers and reports through `@actions/core`. Every decision lives in a pure
 * module (inputs, request, deliver, transport helpers, report) that is tested on its own.
 */
import * as core from "@actions/core";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as tls from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { version } from "../package.json";
import { deliver, type Outcome } from "./deliver";
import { Input, maskUrl, parseInputs, type ActionConfig, type Env, type InputGetter, type PemSource } from "./inputs";
import { escapeHtml, failureMessage, outputsFor, receiverReason, receiverTargets, scrub, summaryTable, truncate } from "./report";
import { buildRequest, checkPayload, redactHeaders } from "./request";
import { createTransport, describeRoute } from "./transport";

/** Names the action and its version, as GitHub's `GitHub-Hookshot/<id>` names the sender. */
export const USER_AGENT = `fluxhook-action/${version}`;

/** A failure the user can fix (bad input, unreadable file): reported without a stack. */
class ConfigError extends Error {}

export interface RunDeps {
  readonly get: InputGetter;
  readonly env: Env;
}

const defaultDeps = (): RunDeps => ({
  // Untrimmed: inputs.ts decides how each input is trimmed (the token only loses ASCII whitespace).
  get: (name) => core.getInput(name, { trimWhitespace: false }),
  env: process.env,
});

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code ?? String(err);
    throw new ConfigError(`Cannot read ${what} from "${path}" (${code}).`);
  }
}

async function loadPayload(config: ActionConfig): Promise<Uint8Array> {
  const source = config.payload;
  if (source.kind === "inline") return new TextEncoder().encode(source.text);
  try {
    // The exact bytes: never decoded and re-encoded, so the signature covers what is sent.
    return new Uint8Array(await readFile(source.path));
  } catch (err) {
    const code = (err as { code?: string }).code ?? String(err);
    throw new ConfigError(`Cannot read the payload from "${source.path}" (${source.from}): ${code}.`);
  }
}

async function loadPem(source: PemSource, what: string, expect: string): Promise<string> {
  const pem = source.kind === "inline" ? source.pem : await readText(source.path, what);
  if (!pem.includes(expect)) throw new ConfigError(`${what} does not hold a PEM ${expect.replace(/-/g, "").trim().toLowerCase()}.`);
  return pem;
}

const PEM_CERT = "-----BEGIN CERTIFICATE-----";
const PEM_KEY = "PRIVATE KEY-----";

function describePayload(config: ActionConfig, size: number): string {
  const from = config.payload.kind === "inline" ? "the `payload` input" : `${config.payload.path} (${config.payload.from})`;
  return `${size} bytes from ${from}`;
}

export async function run(deps: RunDeps = defaultDeps()): Promise<void> {
  try {
    const parsed = parseInputs(deps.get, deps.env);
    // Before any other output: the runner then masks these values in every later log line.
    for (const secret of parsed.ok ? parsed.config.secrets : parsed.secrets) core.setSecret(secret);
    if (!parsed.ok) {
      core.setFailed(["Invalid inputs:", ...parsed.errors.map((e) => `  - ${e}`)].join("\n"));
      return;
    }
    const config = parsed.config;
    for (const warning of config.warnings) core.warning(warning);

    const payload = await loadPayload(config);
    const check = checkPayload(payload);
    if (!check.ok) throw new ConfigError(`Cannot send the payload: ${check.reason}.`);

    const extraCa = await Promise.all(config.tls.ca.map((s) => loadPem(s, s.kind === "file" ? `\`${Input.caFile}\`` : `\`${Input.ca}\``, PEM_CERT)));
    const clientCert = config.tls.clientCert ? await loadPem(config.tls.clientCert, `\`${Input.clientCert}\``, PEM_CERT) : undefined;
    const clientKey = config.tls.clientKey ? await loadPem(config.tls.clientKey, `\`${Input.clientKey}\``, PEM_KEY) : undefined;
    const needsExtraFile = extraCa.length > 0 && typeof (tls as { getCACertificates?: unknown }).getCACertificates !== "function";
    const nodeExtraCaPem =
      needsExtraFile && config.tls.nodeExtraCaCerts ? await readFile(config.tls.nodeExtraCaCerts, "utf8").catch(() => undefined) : undefined;

    const deliveryId = randomUUID();
    const req = buildRequest(
      {
        url: config.url,
        token: config.token,
        receiverType: config.receiverType,
        event: config.event,
        contentType: config.contentType,
        repositoryId: config.context.repositoryId,
      },
      payload,
      deliveryId,
      USER_AGENT,
    );
    const target = new URL(config.url);

    core.startGroup("Request");
    core.info(`Receiver: ${maskUrl(config.url)}${config.target.kind === "receiver" ? ` (Receiver ${config.target.namespace}/${config.target.receiver})` : ""}`);
    core.info(`Receiver type: ${config.receiverType}`);
    core.info(`Event: ${config.event}${config.eventFrom === "GITHUB_EVENT_NAME" ? ` (from GITHUB_EVENT_NAME=${config.context.actionsEvent})` : ""}`);
    core.info(`Payload: ${describePayload(config, payload.byteLength)}, sent as ${config.contentType} (${req.body.byteLength} bytes)`);
    core.info(`Delivery ID: ${deliveryId}`);
    core.info(`Route: ${describeRoute(target, config.proxy)}`);
    if (target.protocol === "https:")
      core.info(
        `TLS: ${config.tls.insecureSkipVerify ? "certificate NOT verified" : `verified against the default roots${extraCa.length ? ` + ${extraCa.length} extra CA input(s)` : ""}`}` +
          `${clientCert ? ", client certificate presented" : ""}`,
      );
    core.info(`Timeout: ${config.timeoutMs / 1000} s per attempt; ${config.retries === 0 ? "no retries" : `up to ${config.retries} retries`}`);
    core.endGroup();

    if (config.dryRun) {
      core.startGroup("Dry run: this request is not sent");
      core.info(`${req.method} ${maskUrl(config.url)}`);
      for (const [name, value] of Object.entries(redactHeaders(req.headers))) core.info(`${name}: ${value}`);
      core.info("");
      core.info(new TextDecoder().decode(req.body.subarray(0, 4096)) + (req.body.byteLength > 4096 ? "\n… (truncated)" : ""));
      core.endGroup();
      await report(config, deliveryId, undefined);
      return;
    }

    const transport = createTransport(target, {
      proxy: config.proxy,
      extraCa,
      nodeExtraCaPem,
      clientCert,
      clientKey,
      insecureSkipVerify: config.tls.insecureSkipVerify,
      timeoutMs: config.timeoutMs,
    });
    if ("invalidProxy" in transport) throw new ConfigError(`${transport.invalidProxy} is set but is not an http:// or https:// proxy URL.`);

    let outcome: Outcome;
    try {
      outcome = await core.group("Delivery", () =>
        deliver(
          req,
          { retries: config.retries, timeoutMs: config.timeoutMs },
          { send: transport.send, sleep: (ms) => sleep(ms), now: Date.now, random: Math.random, log: (line) => core.info(scrub(line, config.secrets)) },
        ),
      );
    } finally {
      await transport.close();
    }
    await report(config, deliveryId, outcome);
  } catch (error) {
    // Expected, user-fixable failures come as ConfigError; anything else is a bug worth its stack in debug.
    if (!(error instanceof ConfigError) && error instanceof Error && error.stack) core.debug(error.stack);
    core.setFailed(error instanceof Error ? error.message : String(error));
  }
}

/** Outputs, the response in the log, the job summary, then success, a warning or a failure. */
async function report(config: ActionConfig, deliveryId: string, outcome: Outcome | undefined): Promise<void> {
  const clean = (text: string) => scrub(text, config.secrets);
  for (const [name, value] of Object.entries(outputsFor(config, deliveryId, outcome))) core.setOutput(name, clean(value));

  const last = outcome?.attempts[outcome.attempts.length - 1]?.result;
  if (last?.kind === "response") {
    core.startGroup(`Response: HTTP ${last.status}`);
    for (const [name, value] of Object.entries(last.headers)) core.info(clean(`${name}: ${value}`));
    core.info("");
    core.info(last.body === "" ? "(empty body)" : clean(truncate(last.body, 4096)));
    core.endGroup();
  }

  try {
    const [head = [], row = []] = summaryTable(config, deliveryId, outcome, config.dryRun);
    await core.summary
      .addHeading("fluxhook delivery", 3)
      .addTable([head.map((h) => ({ data: escapeHtml(h), header: true })), row.map(escapeHtml)])
      .write();
  } catch (err) {
    // Outside a runner there is no GITHUB_STEP_SUMMARY; the summary is a convenience, not the result.
    core.debug(`No job summary written: ${err instanceof Error ? err.message : String(err)}`);
  }

  if (outcome === undefined) {
    core.info("Dry run: nothing was sent.");
    return;
  }
  const targets = last?.kind === "response" ? receiverTargets(last.body) : [];
  if (targets.length > 0) core.info(clean(`Targets: ${targets.join(", ")}`));
  if (outcome.ok) {
    const reason = last?.kind === "response" ? receiverReason(last.body) : undefined;
    core.info(
      clean(`Delivered ${config.event} to ${maskUrl(config.url)}: HTTP ${outcome.status} after ${outcome.attempts.length} attempt(s)${reason ? ` (${reason})` : ""}.`),
    );
    return;
  }
  const message = clean(failureMessage(outcome, config));
  if (config.failOnError) core.setFailed(message);
  else core.warning(`${message} (fail-on-error is false: the step succeeds.)`);
}
