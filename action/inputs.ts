/**
 * @module action/inputs
 * Reads the action's inputs and the runner's environment once, at the edge, into a typed readonly
 * `ActionConfig`. Both sources are injected (`get` for inputs, `env` for the environment), so this
 * module does no I/O and tests need no mocks. Nothing downstream reads `process.env` or
 * `core.getInput`.
 *
 * `parseInputs` reads one concern after another (credential, destination, headers, event,
 * payload, delivery options, wait, TLS, proxy); each adds its problems to one list, so a user
 * fixes every mistake in one round. No error message echoes the token or a URL that could carry
 * the webhook digest.
 */
import { isCredentialHeader, reservedHeaderNames } from "./request";
import { DEFAULTS, LIMITS } from "./defaults";
import { cleartextWarning, readDestinations, type Destination } from "./destination";
import {
  asciiTrim,
  envValue,
  HEADER_SAFE,
  isOneOf,
  parseHttpUrl,
  parseNumber,
  startReading,
  type Reading,
} from "./reading";
import {
  CONTENT_TYPES,
  Input,
  SUPPORTED_RECEIVER_TYPES,
  WAIT_FOR,
  type ContentTypeName,
  type Env,
  type InputGetter,
  type ProxySettings,
  type SupportedReceiverType,
  type WaitFor,
} from "./vocabulary";

/**
 * Where the Actions event name differs from the webhook event GitHub would deliver for the same
 * occurrence. A Receiver's `spec.events` filters on the webhook name.
 */
export const ACTIONS_TO_WEBHOOK_EVENT: Readonly<Record<string, string>> = {
  registry_package: "package",
  pull_request_target: "pull_request",
};

export type PayloadSource =
  | { readonly kind: "inline"; readonly text: string }
  | { readonly kind: "file"; readonly path: string; readonly from: "payload-file" | "GITHUB_EVENT_PATH" };

/** A PEM given inline or as a path to a file holding it. */
export type PemSource =
  | { readonly kind: "inline"; readonly pem: string }
  | { readonly kind: "file"; readonly path: string };

export interface TlsSettings {
  /** Extra trust anchors, added to (never replacing) the default roots. */
  readonly ca: readonly PemSource[];
  readonly clientCert: PemSource | undefined;
  readonly clientKey: PemSource | undefined;
  readonly insecureSkipVerify: boolean;
  /** `NODE_EXTRA_CA_CERTS`, which Node only honours while `ca` is not set explicitly. */
  readonly nodeExtraCaCerts: string | undefined;
}

export interface RunContext {
  /** `GITHUB_EVENT_NAME` as the runner set it. */
  readonly actionsEvent: string | undefined;
  readonly repository: string | undefined;
  readonly repositoryId: string | undefined;
  /** GitHub Enterprise Server: the host of GITHUB_SERVER_URL, and its version when known. */
  readonly enterprise: { readonly host: string; readonly version: string | undefined } | undefined;
}

export interface ActionConfig {
  /**
   * The token as the receiver's Secret should hold it (surrounding ASCII whitespace removed);
   * "" for generic-oidc, which has no Secret.
   */
  readonly token: string;
  /** generic-oidc: the audience to ask the ID token for; undefined for the other types. */
  readonly oidcAudience: string | undefined;
  /** One or more deliveries (several with `receiver` listing several names). */
  readonly destinations: readonly Destination[];
  readonly receiverType: SupportedReceiverType;
  /** The `headers` input, in order, after the action's own. */
  readonly extraHeaders: readonly (readonly [name: string, value: string])[];
  /** The `user-agent` input; undefined for the default. */
  readonly userAgent: string | undefined;
  readonly event: string;
  readonly eventFrom: "input" | "GITHUB_EVENT_NAME";
  readonly payload: PayloadSource;
  readonly contentType: ContentTypeName;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly failOnError: boolean;
  readonly dryRun: boolean;
  /** What to wait for after delivering (fluxhook's status query); `none` does not wait. */
  readonly waitFor: WaitFor;
  readonly waitTimeoutMs: number;
  readonly tls: TlsSettings;
  readonly proxy: ProxySettings;
  readonly context: RunContext;
  /** Every value to register with the runner as a secret before anything is printed. */
  readonly secrets: readonly string[];
  /** Things worth a `core.warning` that do not stop the run. */
  readonly warnings: readonly string[];
}

/**
 * What preflight.ts checks before anything is sent (the files the inputs name, the proxy route),
 * known also when another input is wrong, so that one run reports every problem.
 */
export interface PreflightSources {
  /** Undefined when the payload inputs are wrong (their error says why). */
  readonly payload: PayloadSource | undefined;
  readonly tls: TlsSettings;
  /** The first receiver URL (every destination shares its origin); undefined when none was read. */
  readonly target: string | undefined;
  readonly proxy: ProxySettings;
}

export type ParseResult = {
  /** Every value to mask, also when an input is wrong: registered before anything is printed. */
  readonly secrets: readonly string[];
  readonly preflight: PreflightSources;
} & ({ readonly ok: true; readonly config: ActionConfig } | { readonly ok: false; readonly errors: readonly string[] });

/**
 * Parses every input and the environment into an `ActionConfig`, or returns all the errors found.
 * `secrets` and `preflight` are returned in both cases: the caller masks before printing anything,
 * and checks the files and the proxy whatever else is wrong.
 */
export function parseInputs(get: InputGetter, env: Env): ParseResult {
  const reading = startReading(get, env);
  const credential = readCredential(reading);
  const destinations = readDestinations(reading, credential.pathToken);
  const headers = readHeaders(reading, credential.receiverType);
  const event = readEvent(reading);
  const payload = readPayload(reading);
  const delivery = readDeliveryOptions(reading);
  const wait = readWait(reading);
  const tls = readTls(reading);
  const inClear = credential.receiverType && cleartextWarning(destinations, credential.receiverType);
  if (inClear) reading.warnings.push(inClear);
  const proxy = readProxy(reading);

  const secrets = [...reading.secrets];
  const preflight: PreflightSources = { payload, tls, target: destinations[0]?.url, proxy };
  // A missing receiver type or payload always comes with its error; checked again for the compiler.
  if (reading.errors.length > 0 || credential.receiverType === undefined || payload === undefined)
    return { ok: false, errors: reading.errors, secrets, preflight };
  return {
    ok: true,
    secrets,
    preflight,
    config: {
      token: credential.token,
      oidcAudience: credential.oidcAudience,
      destinations,
      receiverType: credential.receiverType,
      extraHeaders: headers.extraHeaders,
      userAgent: headers.userAgent,
      event: event.name,
      eventFrom: event.from,
      payload,
      ...delivery,
      ...wait,
      tls,
      proxy,
      context: runContext(env, event.actionsEvent),
      secrets,
      warnings: reading.warnings,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Credential: the receiver type, its token or (generic-oidc) the ID token's audience

interface Credential {
  /** Undefined when the input names a type this action cannot sign for (its error says so). */
  readonly receiverType: SupportedReceiverType | undefined;
  readonly token: string;
  readonly oidcAudience: string | undefined;
  /** What Flux computes the path from: the token, "" for generic-oidc; undefined while the token is missing. */
  readonly pathToken: string | undefined;
}

function readCredential(reading: Reading): Credential {
  const { errors, warnings, secrets } = reading;
  // The token's raw and trimmed forms are masked before anything else can be printed.
  const rawToken = reading.raw(Input.token);
  const trimmedToken = reading.text(Input.token);
  if (rawToken !== "") secrets.add(rawToken);
  if (trimmedToken !== "") secrets.add(trimmedToken);

  const typeInput = reading.text(Input.receiverType) || DEFAULTS.receiverType;
  const receiverType = isOneOf(SUPPORTED_RECEIVER_TYPES, typeInput) ? typeInput : undefined;
  if (receiverType === undefined)
    errors.push(`Input \`receiver-type\` must be one of ${SUPPORTED_RECEIVER_TYPES.join(", ")}; got "${typeInput}".`);
  const oidc = receiverType === "generic-oidc";
  // generic-oidc has no Secret: Flux computes its path from an empty token.
  const token = oidc ? "" : trimmedToken;
  if (oidc) {
    if (trimmedToken !== "")
      warnings.push(
        "`token` is not used with receiver-type generic-oidc, which authenticates with an ID token; it was ignored.",
      );
  } else if (token === "") errors.push("Input `token` is required: the Receiver's Secret token.");
  else if (token !== rawToken)
    warnings.push(
      "The token had leading or trailing whitespace (for example a final newline), which was removed. " +
        "If the Receiver's Secret holds the token with that whitespace, recreate the Secret without it.",
    );
  if ((receiverType === "gitlab" || receiverType === "harbor") && token !== "" && !HEADER_SAFE.test(token))
    errors.push(
      `Receiver type ${receiverType} sends the token in a header, so it must be printable ASCII on one line.`,
    );
  const oidcAudience = oidc ? reading.text(Input.oidcAudience) || DEFAULTS.oidcAudience : undefined;
  if (oidcAudience !== undefined && !HEADER_SAFE.test(oidcAudience))
    errors.push("Input `oidc-audience` must be printable ASCII on one line.");
  return { receiverType, token, oidcAudience, pathToken: oidc || token !== "" ? token : undefined };
}

// ---------------------------------------------------------------------------------------------
// Headers: the `headers` input (for a gateway in front of the receiver) and `user-agent`

// `Name: value`, the name an RFC 9110 token.
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*)$/;

interface HeaderSettings {
  readonly extraHeaders: ReadonlyArray<readonly [string, string]>;
  readonly userAgent: string | undefined;
}

/** Extra headers, refused where they would override the action's own; values never echoed in errors. */
function readHeaders(reading: Reading, receiverType: SupportedReceiverType | undefined): HeaderSettings {
  const { errors } = reading;
  const extraHeaders: Array<readonly [string, string]> = [];
  const reserved = new Set(reservedHeaderNames(receiverType ?? "generic").map((name) => name.toLowerCase()));
  const names = new Set<string>();
  reading
    .raw(Input.headers)
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = asciiTrim(raw);
      if (line === "") return;
      const match = HEADER_LINE.exec(line);
      if (!match) {
        errors.push(
          `Input \`headers\`, line ${i + 1}: expected \`Name: value\` (the line is not shown: it may be a secret).`,
        );
        return;
      }
      const [, name = "", value = ""] = match;
      if (isCredentialHeader(name)) reading.secrets.add(value);
      if (!HEADER_SAFE.test(value)) {
        errors.push(`Input \`headers\`, ${name}: the value must be printable ASCII, not empty.`);
        return;
      }
      const lower = name.toLowerCase();
      if (reserved.has(lower)) {
        errors.push(
          lower === "user-agent"
            ? "Input `headers` cannot set User-Agent: use the `user-agent` input."
            : lower === "content-type"
              ? "Input `headers` cannot set Content-Type: use the `content-type` input."
              : `Input \`headers\` cannot set ${name}: the action sets it (signature, event, delivery and framing headers cannot be overridden).`,
        );
        return;
      }
      if (names.has(lower)) {
        errors.push(`Input \`headers\` sets ${name} twice.`);
        return;
      }
      names.add(lower);
      extraHeaders.push([name, value]);
    });
  if (extraHeaders.length > LIMITS.maxHeaders)
    errors.push(`Input \`headers\` sets ${extraHeaders.length} headers; at most ${LIMITS.maxHeaders}.`);

  const userAgent = reading.text(Input.userAgent);
  if (userAgent !== "" && !HEADER_SAFE.test(userAgent))
    errors.push("Input `user-agent` must be printable ASCII on one line.");
  return { extraHeaders, userAgent: userAgent || undefined };
}

// ---------------------------------------------------------------------------------------------
// Event and payload

interface EventSettings {
  readonly name: string;
  readonly from: ActionConfig["eventFrom"];
  readonly actionsEvent: string | undefined;
}

/** The `event` input, else the workflow's event mapped to GitHub's webhook name. */
function readEvent(reading: Reading): EventSettings {
  const input = reading.text(Input.event);
  const actionsEvent = envValue(reading.env, "GITHUB_EVENT_NAME");
  const name = input || (actionsEvent ? (ACTIONS_TO_WEBHOOK_EVENT[actionsEvent] ?? actionsEvent) : "");
  if (name === "") reading.errors.push("Input `event` is required when GITHUB_EVENT_NAME is not set.");
  else if (!HEADER_SAFE.test(name)) reading.errors.push("Input `event` must be printable ASCII on one line.");
  return { name, from: input ? "input" : "GITHUB_EVENT_NAME", actionsEvent };
}

/**
 * Inline, a file, or the workflow's event file; undefined when the inputs are wrong. The bytes are
 * sent exactly as read: not through @actions/github's context, which parses the event file again,
 * so what it gives is not the bytes the signature must cover.
 */
function readPayload(reading: Reading): PayloadSource | undefined {
  const inline = reading.raw(Input.payload);
  const hasInline = reading.text(Input.payload) !== "";
  const file = reading.text(Input.payloadFile);
  const eventPath = envValue(reading.env, "GITHUB_EVENT_PATH");
  if (hasInline && file !== "") reading.errors.push("Set either `payload` or `payload-file`, not both.");
  else if (hasInline) return { kind: "inline", text: inline };
  else if (file !== "") return { kind: "file", path: file, from: "payload-file" };
  else if (eventPath) return { kind: "file", path: eventPath, from: "GITHUB_EVENT_PATH" };
  else
    reading.errors.push("No payload: set `payload` or `payload-file`, or run inside a workflow (GITHUB_EVENT_PATH).");
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Delivery options and wait-for

type DeliveryOptions = Pick<ActionConfig, "contentType" | "timeoutMs" | "retries" | "failOnError" | "dryRun">;

function readDeliveryOptions(reading: Reading): DeliveryOptions {
  const { errors } = reading;
  const contentType = reading.text(Input.contentType) || DEFAULTS.contentType;
  if (!isOneOf(CONTENT_TYPES, contentType))
    errors.push(`Input \`content-type\` must be json or form; got "${contentType}".`);
  const timeoutSeconds = parseNumber(reading.text(Input.timeoutSeconds), DEFAULTS.timeoutSeconds);
  if (timeoutSeconds === undefined || timeoutSeconds <= 0 || timeoutSeconds > LIMITS.maxTimeoutSeconds)
    errors.push(
      `Input \`timeout-seconds\` must be a number of seconds, above 0 and at most ${LIMITS.maxTimeoutSeconds}.`,
    );
  const retries = parseNumber(reading.text(Input.retries), DEFAULTS.retries);
  if (retries === undefined || !Number.isInteger(retries) || retries < 0 || retries > LIMITS.maxRetries)
    errors.push(`Input \`retries\` must be a whole number from 0 to ${LIMITS.maxRetries}.`);
  return {
    contentType: isOneOf(CONTENT_TYPES, contentType) ? contentType : DEFAULTS.contentType,
    timeoutMs: Math.round((timeoutSeconds ?? DEFAULTS.timeoutSeconds) * 1000),
    retries: retries ?? DEFAULTS.retries,
    failOnError: reading.flag(Input.failOnError, DEFAULTS.failOnError),
    dryRun: reading.flag(Input.dryRun, DEFAULTS.dryRun),
  };
}

function readWait(reading: Reading): Pick<ActionConfig, "waitFor" | "waitTimeoutMs"> {
  const waitFor = reading.text(Input.waitFor) || DEFAULTS.waitFor;
  if (!isOneOf(WAIT_FOR, waitFor))
    reading.errors.push(`Input \`wait-for\` must be one of ${WAIT_FOR.join(", ")}; got "${waitFor}".`);
  const seconds = parseNumber(reading.text(Input.waitTimeoutSeconds), DEFAULTS.waitTimeoutSeconds);
  if (seconds === undefined || seconds <= 0 || seconds > LIMITS.maxWaitTimeoutSeconds)
    reading.errors.push(
      `Input \`wait-timeout-seconds\` must be a number of seconds, above 0 and at most ${LIMITS.maxWaitTimeoutSeconds}.`,
    );
  return {
    waitFor: isOneOf(WAIT_FOR, waitFor) ? waitFor : DEFAULTS.waitFor,
    waitTimeoutMs: Math.round((seconds ?? DEFAULTS.waitTimeoutSeconds) * 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// TLS and proxy

/** Trust anchors and the client certificate: each a PEM or a path to one (ca-file: a path). */
function readTls(reading: Reading): TlsSettings {
  const insecureSkipVerify = reading.flag(Input.insecureSkipTlsVerify, DEFAULTS.insecureSkipTlsVerify);
  const ca: PemSource[] = [];
  const caFile = reading.text(Input.caFile);
  if (caFile !== "") ca.push({ kind: "file", path: caFile });
  const caInline = reading.text(Input.ca);
  if (caInline !== "") {
    if (!caInline.includes("-----BEGIN CERTIFICATE-----"))
      reading.errors.push("Input `ca` must hold PEM certificates (use `ca-file` for a path).");
    else ca.push({ kind: "inline", pem: caInline });
  }
  const clientCert = pemOrPath(reading.text(Input.clientCert));
  const clientKey = pemOrPath(reading.text(Input.clientKey));
  if ((clientCert === undefined) !== (clientKey === undefined))
    reading.errors.push("Inputs `client-cert` and `client-key` go together: set both for mTLS, or neither.");
  if (clientKey?.kind === "inline") {
    // The key body lines, so a key pasted into a log by mistake is masked too.
    for (const line of clientKey.pem.split(/\r?\n/))
      if (line.length >= 16 && !line.startsWith("-----")) reading.secrets.add(line);
  }
  if (insecureSkipVerify)
    reading.warnings.push(
      "insecure-skip-tls-verify is true: the receiver's certificate is not verified. Prefer `ca-file` with your private CA.",
    );
  return {
    ca,
    clientCert,
    clientKey,
    insecureSkipVerify,
    nodeExtraCaCerts: envValue(reading.env, "NODE_EXTRA_CA_CERTS"),
  };
}

function pemOrPath(value: string): PemSource | undefined {
  if (value === "") return undefined;
  return value.includes("-----BEGIN ") ? { kind: "inline", pem: value } : { kind: "file", path: value };
}

/** The runner's proxy variables, lowercase first as curl reads them; a proxy's password is masked. */
function readProxy(reading: Reading): ProxySettings {
  const proxy: ProxySettings = {
    httpProxy: envValue(reading.env, "http_proxy", "HTTP_PROXY"),
    httpsProxy: envValue(reading.env, "https_proxy", "HTTPS_PROXY"),
    noProxy: envValue(reading.env, "no_proxy", "NO_PROXY"),
  };
  for (const secret of [...proxySecrets(proxy.httpProxy), ...proxySecrets(proxy.httpsProxy)])
    reading.secrets.add(secret);
  return proxy;
}

/** The credential-bearing parts of a proxy URL (`http://user:pass@proxy:3128`). */
function proxySecrets(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const url = new URL(value.includes("://") ? value : `http://${value}`);
    return [url.password, decodeURIComponent(url.password)].filter((secret) => secret.length > 0);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// The run's context

function runContext(env: Env, actionsEvent: string | undefined): RunContext {
  return {
    actionsEvent,
    repository: envValue(env, "GITHUB_REPOSITORY"),
    repositoryId: envValue(env, "GITHUB_REPOSITORY_ID"),
    enterprise: enterpriseServer(env),
  };
}

/**
 * GitHub Enterprise Server, as its webhooks name it: the host of GITHUB_SERVER_URL unless it is
 * github.com or GHE.com (Enterprise Cloud). The runner has no variable with the server's version;
 * GITHUB_ENTERPRISE_VERSION, when a workflow sets it, is sent as X-GitHub-Enterprise-Version.
 */
function enterpriseServer(env: Env): RunContext["enterprise"] {
  const server = envValue(env, "GITHUB_SERVER_URL");
  if (!server) return undefined;
  const host = parseHttpUrl(server)?.host.toLowerCase();
  if (!host || host === "github.com" || host.endsWith(".ghe.com")) return undefined;
  const version = envValue(env, "GITHUB_ENTERPRISE_VERSION");
  return { host, version: version && HEADER_SAFE.test(version) ? version : undefined };
}
