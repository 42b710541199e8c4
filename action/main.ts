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
import {
  escapeHtml,
  failureMessage,
  outputsFor,
  receiverReason,
  receiverTargets,
  scrub,
  summaryTable,
  truncate,
} from "./report";
import { buildRequest, checkPayload, redactHeaders, type OutgoingRequest } from "./request";
import { createTransport, describeRoute } from "./transport";

/** Names the action and its version, as GitHub's `GitHub-Hookshot/<id>` names the sender. */
export const USER_AGENT = `fluxhook-action/${version}`;

export interface RunDeps {
  readonly get: InputGetter;
  readonly env: Env;
}

const defaultDeps = (): RunDeps => ({
  // Untrimmed: inputs.ts decides how each input is trimmed (the token only loses ASCII whitespace).
  get: (name) => core.getInput(name, { trimWhitespace: false }),
  env: process.env,
});

/** Expected failures (an unreadable file, a bad payload) are values, reported as the step's error. */
type Loaded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** What the request and the transport need from files: read once, before anything is sent. */
interface Material {
  readonly payload: Uint8Array;
  readonly extraCa: readonly string[];
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
  readonly nodeExtraCaPem: string | undefined;
}

const errorCode = (err: unknown) => (err as { code?: string }).code ?? String(err);

async function loadPayload(config: ActionConfig): Promise<Loaded<Uint8Array>> {
  const source = config.payload;
  let bytes: Uint8Array;
  if (source.kind === "inline") bytes = new TextEncoder().encode(source.text);
  else {
    try {
      // The exact bytes: never decoded and re-encoded, so the signature covers what is sent.
      bytes = new Uint8Array(await readFile(source.path));
    } catch (err) {
      return { ok: false, error: `Cannot read the payload from "${source.path}" (${source.from}): ${errorCode(err)}.` };
    }
  }
  const check = checkPayload(bytes);
  return check.ok ? { ok: true, value: bytes } : { ok: false, error: `Cannot send the payload: ${check.reason}.` };
}

const PEM = {
  certificate: "-----BEGIN CERTIFICATE-----",
  "private key": "PRIVATE KEY-----",
} as const;

async function loadPem(source: PemSource, input: string, holds: keyof typeof PEM): Promise<Loaded<string>> {
  let pem: string;
  if (source.kind === "inline") pem = source.pem;
  else {
    try {
      pem = await readFile(source.path, "utf8");
    } catch (err) {
      return { ok: false, error: `Cannot read \`${input}\` from "${source.path}" (${errorCode(err)}).` };
    }
  }
  return pem.includes(PEM[holds])
    ? { ok: true, value: pem }
    : { ok: false, error: `\`${input}\` does not hold a PEM ${holds}.` };
}

async function loadMaterial(config: ActionConfig): Promise<Loaded<Material>> {
  const payload = await loadPayload(config);
  if (!payload.ok) return payload;
  const extraCa: string[] = [];
  for (const source of config.tls.ca) {
    const pem = await loadPem(source, source.kind === "file" ? Input.caFile : Input.ca, "certificate");
    if (!pem.ok) return pem;
    extraCa.push(pem.value);
  }
  let clientCert: string | undefined;
  let clientKey: string | undefined;
  if (config.tls.clientCert && config.tls.clientKey) {
    const cert = await loadPem(config.tls.clientCert, Input.clientCert, "certificate");
    if (!cert.ok) return cert;
    const key = await loadPem(config.tls.clientKey, Input.clientKey, "private key");
    if (!key.ok) return key;
    [clientCert, clientKey] = [cert.value, key.value];
  }
  // Older Node cannot list NODE_EXTRA_CA_CERTS, and an explicit CA list would drop it: read it here.
  const listsDefaults = typeof (tls as { getCACertificates?: unknown }).getCACertificates === "function";
  const nodeExtraCaPem =
    extraCa.length > 0 && !listsDefaults && config.tls.nodeExtraCaCerts
      ? await readFile(config.tls.nodeExtraCaCerts, "utf8").catch(() => undefined)
      : undefined;
  return { ok: true, value: { payload: payload.value, extraCa, clientCert, clientKey, nodeExtraCaPem } };
}

function logRequest(config: ActionConfig, req: OutgoingRequest, material: Material, deliveryId: string): void {
  const target = new URL(config.url);
  const from =
    config.payload.kind === "inline" ? "the `payload` input" : `${config.payload.path} (${config.payload.from})`;
  core.startGroup("Request");
  core.info(
    `Receiver: ${maskUrl(config.url)}${config.target.kind === "receiver" ? ` (Receiver ${config.target.namespace}/${config.target.receiver})` : ""}`,
  );
  core.info(`Receiver type: ${config.receiverType}`);
  core.info(
    `Event: ${config.event}${config.eventFrom === "GITHUB_EVENT_NAME" ? ` (from GITHUB_EVENT_NAME=${config.context.actionsEvent})` : ""}`,
  );
  core.info(
    `Payload: ${material.payload.byteLength} bytes from ${from}, sent as ${config.contentType} (${req.body.byteLength} bytes)`,
  );
  core.info(`Delivery ID: ${deliveryId}`);
  core.info(`Route: ${describeRoute(target, config.proxy)}`);
  if (target.protocol === "https:") {
    const trust = config.tls.insecureSkipVerify
      ? "certificate NOT verified"
      : `verified against the default roots${material.extraCa.length ? ` + ${material.extraCa.length} extra CA input(s)` : ""}`;
    core.info(`TLS: ${trust}${material.clientCert ? ", client certificate presented" : ""}`);
  }
  core.info(
    `Timeout: ${config.timeoutMs / 1000} s per attempt; ${config.retries === 0 ? "no retries" : `up to ${config.retries} retries`}`,
  );
  core.endGroup();
}

function logDryRun(config: ActionConfig, req: OutgoingRequest): void {
  core.startGroup("Dry run: this request is not sent");
  core.info(`${req.method} ${maskUrl(config.url)}`);
  for (const [name, value] of Object.entries(redactHeaders(req.headers))) core.info(`${name}: ${value}`);
  core.info("");
  const preview =
    new TextDecoder().decode(req.body.subarray(0, 4096)) + (req.body.byteLength > 4096 ? "\n… (truncated)" : "");
  core.info(scrub(preview, config.secrets));
  core.endGroup();
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

    const loaded = await loadMaterial(config);
    if (!loaded.ok) {
      core.setFailed(loaded.error);
      return;
    }
    const material = loaded.value;
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
      material.payload,
      deliveryId,
      USER_AGENT,
    );
    logRequest(config, req, material, deliveryId);

    if (config.dryRun) {
      logDryRun(config, req);
      await report(config, deliveryId, undefined);
      return;
    }

    const transport = createTransport(new URL(config.url), {
      proxy: config.proxy,
      extraCa: material.extraCa,
      nodeExtraCaPem: material.nodeExtraCaPem,
      clientCert: material.clientCert,
      clientKey: material.clientKey,
      insecureSkipVerify: config.tls.insecureSkipVerify,
      timeoutMs: config.timeoutMs,
    });
    if ("invalidProxy" in transport) {
      core.setFailed(`${transport.invalidProxy} is set but is not an http:// or https:// proxy URL.`);
      return;
    }

    let outcome: Outcome;
    try {
      outcome = await core.group("Delivery", () =>
        deliver(
          req,
          { retries: config.retries, timeoutMs: config.timeoutMs },
          {
            send: transport.send,
            sleep: (ms) => sleep(ms),
            now: Date.now,
            random: Math.random,
            log: (line) => core.info(scrub(line, config.secrets)),
          },
        ),
      );
    } finally {
      await transport.close();
    }
    await report(config, deliveryId, outcome);
  } catch (error) {
    // Only bugs get here: expected failures are values above. Keep the stack for a debug run.
    if (error instanceof Error && error.stack) core.debug(error.stack);
    core.setFailed(`Unexpected error: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Outputs, the response in the log, the job summary, then success, a warning or a failure. */
async function report(config: ActionConfig, deliveryId: string, outcome: Outcome | undefined): Promise<void> {
  const clean = (text: string) => scrub(text, config.secrets);
  for (const [name, value] of Object.entries(outputsFor(config, deliveryId, outcome)))
    core.setOutput(name, clean(value));

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
      clean(
        `Delivered ${config.event} to ${maskUrl(config.url)}: HTTP ${outcome.status} after ${outcome.attempts.length} attempt(s)${reason ? ` (${reason})` : ""}.`,
      ),
    );
    return;
  }
  const message = clean(failureMessage(outcome, config));
  if (config.failOnError) core.setFailed(message);
  else core.warning(`${message} (fail-on-error is false: the step succeeds.)`);
}
