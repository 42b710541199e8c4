/**
 * @module action/inputs
 * Reads the action's inputs and the runner's environment once, at the edge, into a typed readonly
 * `ActionConfig`. Both sources are injected (`get` for inputs, `env` for the environment), so this
 * module does no I/O and tests need no mocks. Nothing downstream reads `process.env` or
 * `core.getInput`.
 *
 * Expected failures (a missing or malformed input) are collected and returned as values, all at
 * once, so a user fixes every mistake in one round. No error message echoes the token or a URL
 * that could carry the webhook digest.
 */
import { WEBHOOK_PATH_PREFIX, webhookDigest, type ReceiverType } from "../shared";

/** Input names: part of the action's public contract (`action.yml` documents each of them). */
export const Input = {
  token: "token",
  url: "url",
  address: "address",
  receiver: "receiver",
  namespace: "namespace",
  receiverType: "receiver-type",
  event: "event",
  payload: "payload",
  payloadFile: "payload-file",
  contentType: "content-type",
  timeoutSeconds: "timeout-seconds",
  retries: "retries",
  failOnError: "fail-on-error",
  dryRun: "dry-run",
  caFile: "ca-file",
  ca: "ca",
  clientCert: "client-cert",
  clientKey: "client-key",
  insecureSkipTlsVerify: "insecure-skip-tls-verify",
} as const;
export type InputName = (typeof Input)[keyof typeof Input];

/**
 * Defaults applied when an input is empty. The runner applies `action.yml`'s defaults first; a
 * test keeps the two in step, and these keep the bundle usable outside a runner too.
 */
export const DEFAULTS = {
  namespace: "flux-system",
  receiverType: "github",
  contentType: "json",
  timeoutSeconds: 10, // GitHub's own webhook delivery timeout
  retries: 3,
  failOnError: true,
  dryRun: false,
  insecureSkipTlsVerify: false,
} as const;

/** Upper bounds, so the total time a step can spend is bounded (see deliver.ts). */
export const LIMITS = {
  maxTimeoutSeconds: 300,
  maxRetries: 10,
} as const;

/** The receiver types this action can sign for; the others need a sender it cannot impersonate. */
export const SUPPORTED_RECEIVER_TYPES = [
  "github",
  "generic-hmac",
  "gitlab",
  "bitbucket",
  "harbor",
  "generic",
] as const satisfies readonly ReceiverType[];
export type SupportedReceiverType = (typeof SUPPORTED_RECEIVER_TYPES)[number];

export const CONTENT_TYPES = ["json", "form"] as const;
export type ContentTypeName = (typeof CONTENT_TYPES)[number];

/**
 * Where the Actions event name differs from the webhook event GitHub would deliver for the same
 * occurrence. A Receiver's `spec.events` filters on the webhook name.
 */
export const ACTIONS_TO_WEBHOOK_EVENT: Readonly<Record<string, string>> = {
  registry_package: "package",
  pull_request_target: "pull_request",
};

/** Reads one input, raw (untrimmed); "" when unset. */
export type InputGetter = (name: InputName) => string;
export type Env = Readonly<Record<string, string | undefined>>;

export type PayloadSource =
  | { readonly kind: "inline"; readonly text: string }
  | { readonly kind: "file"; readonly path: string; readonly from: "payload-file" | "GITHUB_EVENT_PATH" };

/** A PEM given inline or as a path to a file holding it. */
export type PemSource =
  | { readonly kind: "inline"; readonly pem: string }
  | { readonly kind: "file"; readonly path: string };

export type Target =
  | { readonly kind: "url" }
  | { readonly kind: "receiver"; readonly address: string; readonly receiver: string; readonly namespace: string };

export interface TlsSettings {
  /** Extra trust anchors, added to (never replacing) the default roots. */
  readonly ca: readonly PemSource[];
  readonly clientCert: PemSource | undefined;
  readonly clientKey: PemSource | undefined;
  readonly insecureSkipVerify: boolean;
  /** `NODE_EXTRA_CA_CERTS`, which Node only honours while `ca` is not set explicitly. */
  readonly nodeExtraCaCerts: string | undefined;
}

export interface ProxySettings {
  readonly httpProxy: string | undefined;
  readonly httpsProxy: string | undefined;
  readonly noProxy: string | undefined;
}

export interface RunContext {
  /** `GITHUB_EVENT_NAME` as the runner set it. */
  readonly actionsEvent: string | undefined;
  readonly repository: string | undefined;
  readonly repositoryId: string | undefined;
}

export interface ActionConfig {
  /** The token as the receiver's Secret should hold it (surrounding ASCII whitespace removed). */
  readonly token: string;
  /** The full receiver URL. A credential: it carries the webhook digest. */
  readonly url: string;
  readonly target: Target;
  readonly receiverType: SupportedReceiverType;
  readonly event: string;
  readonly eventFrom: "input" | "GITHUB_EVENT_NAME";
  readonly payload: PayloadSource;
  readonly contentType: ContentTypeName;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly failOnError: boolean;
  readonly dryRun: boolean;
  readonly tls: TlsSettings;
  readonly proxy: ProxySettings;
  readonly context: RunContext;
  /** Every value to register with the runner as a secret before anything is printed. */
  readonly secrets: readonly string[];
  /** Things worth a `core.warning` that do not stop the run. */
  readonly warnings: readonly string[];
}

export type ParseResult =
  | { readonly ok: true; readonly config: ActionConfig }
  | { readonly ok: false; readonly errors: readonly string[]; readonly secrets: readonly string[] };

// core.getInput()'s default trim is String.prototype.trim, which also strips Unicode spaces such
// as NBSP or a BOM. We strip only the ASCII whitespace that copy-paste, `echo` and YAML block
// scalars add, and warn when we did, since a receiver Secret created from a file that ends in a
// newline then no longer matches (see the `token` input in action.yml).
const ASCII_SPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
const asciiTrim = (value: string) => value.replace(ASCII_SPACE, "");

// Kubernetes object names: an RFC 1123 subdomain (Receiver) and label (namespace). Anything else
// can never match a real Receiver, so it is a typo worth reporting before the request.
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const K8S_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// Header values we generate from inputs must be printable ASCII on one line.
const HEADER_SAFE = /^[\x20-\x7e]+$/;

const TRUE = ["true", "True", "TRUE"];
const FALSE = ["false", "False", "FALSE"];

function isOneOf<T extends string>(list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value);
}

/** The secret-free form of a receiver URL, fit for logs, outputs and the job summary. */
export function maskUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "***";
  }
  const at = parsed.pathname.indexOf(WEBHOOK_PATH_PREFIX);
  // Keep an address's path prefix (`/flux/hook/***`); any other path may be the secret itself.
  const path =
    at >= 0 ? `${parsed.pathname.slice(0, at)}${WEBHOOK_PATH_PREFIX}***` : parsed.pathname === "/" ? "" : "/***";
  return `${parsed.protocol}//${parsed.host}${path}`;
}

/** The credential-bearing parts of a proxy URL (`http://user:pass@proxy:3128`). */
function proxySecrets(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const url = new URL(value.includes("://") ? value : `http://${value}`);
    return [url.password, decodeURIComponent(url.password)].filter((s) => s.length > 0);
  } catch {
    return [];
  }
}

const envValue = (env: Env, ...names: string[]): string | undefined => {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
};

/**
 * Parses every input and the environment into an `ActionConfig`, or returns all the errors found.
 * `secrets` is returned in both cases, so the caller can mask before printing anything.
 */
export function parseInputs(get: InputGetter, env: Env): ParseResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const secrets = new Set<string>();
  const text = (name: InputName) => asciiTrim(get(name));

  // Token: mask the raw and the trimmed forms before anything else can be printed.
  const rawToken = get(Input.token);
  const token = asciiTrim(rawToken);
  if (rawToken !== "") secrets.add(rawToken);
  if (token !== "") secrets.add(token);
  if (token === "") errors.push("Input `token` is required: the Receiver's Secret token.");
  else if (token !== rawToken)
    warnings.push(
      "The token had leading or trailing whitespace (for example a final newline), which was removed. " +
        "If the Receiver's Secret holds the token with that whitespace, recreate the Secret without it.",
    );

  const rawUrl = get(Input.url);
  const urlInput = asciiTrim(rawUrl);
  if (rawUrl !== "") secrets.add(rawUrl);
  if (urlInput !== "") secrets.add(urlInput);
  const address = text(Input.address);
  const receiver = text(Input.receiver);
  const namespace = text(Input.namespace) || DEFAULTS.namespace;

  // Where to deliver: exactly one of `url` or `address` + `receiver`.
  let url = "";
  let target: Target = { kind: "url" };
  if (urlInput !== "" && (address !== "" || receiver !== "")) {
    errors.push("Set either `url`, or `address` with `receiver` (and `namespace`), not both.");
  } else if (urlInput !== "") {
    const parsed = parseHttpUrl(urlInput);
    if (!parsed)
      errors.push("Input `url` must be an absolute http:// or https:// URL (its value is not shown: it is a secret).");
    else if (parsed.username !== "" || parsed.password !== "")
      errors.push("Input `url` must not contain user:password@.");
    else {
      url = parsed.href;
      secrets.add(url);
      const at = parsed.pathname.indexOf(WEBHOOK_PATH_PREFIX);
      const digest = at >= 0 ? parsed.pathname.slice(at + WEBHOOK_PATH_PREFIX.length) : "";
      if (digest !== "") secrets.add(digest);
    }
  } else if (address === "" && receiver === "") {
    errors.push("Set where to deliver: `url`, or `address` with `receiver` (and `namespace`, default flux-system).");
  } else if (address === "") {
    errors.push("Input `address` is required with `receiver`, e.g. https://flux-webhook.example.internal.");
  } else if (receiver === "") {
    errors.push("Input `receiver` (the Receiver's name) is required with `address`.");
  } else {
    const base = parseHttpUrl(address);
    // Credentials in the address are not echoed: they may be real ones.
    if (base && (base.username !== "" || base.password !== ""))
      errors.push("Input `address` must not contain user:password@ (its value is not shown).");
    else if (base?.search !== "" || base.hash !== "")
      errors.push(
        `Input \`address\` must be an http:// or https:// origin, optionally with a path prefix; got "${address}".`,
      );
    if (!K8S_NAME.test(receiver) || receiver.length > 253)
      errors.push(
        `Input \`receiver\` must be a Kubernetes object name (lowercase letters, digits, '-' and '.'); got "${receiver}".`,
      );
    if (!K8S_LABEL.test(namespace) || namespace.length > 63)
      errors.push(`Input \`namespace\` must be a Kubernetes namespace name; got "${namespace}".`);
    if (base && token !== "") {
      const digest = webhookDigest(token, receiver, namespace);
      secrets.add(digest);
      url = `${base.origin}${base.pathname.replace(/\/+$/, "")}${WEBHOOK_PATH_PREFIX}${digest}`;
      secrets.add(url);
      target = { kind: "receiver", address: `${base.origin}${base.pathname.replace(/\/+$/, "")}`, receiver, namespace };
    }
  }

  const receiverType = text(Input.receiverType) || DEFAULTS.receiverType;
  if (!isOneOf(SUPPORTED_RECEIVER_TYPES, receiverType))
    errors.push(
      `Input \`receiver-type\` must be one of ${SUPPORTED_RECEIVER_TYPES.join(", ")}; got "${receiverType}".`,
    );
  else if ((receiverType === "gitlab" || receiverType === "harbor") && token !== "" && !HEADER_SAFE.test(token))
    errors.push(
      `Receiver type ${receiverType} sends the token in a header, so it must be printable ASCII on one line.`,
    );

  // Event: the input, else the workflow's event mapped to GitHub's webhook name.
  const eventInput = text(Input.event);
  const actionsEvent = envValue(env, "GITHUB_EVENT_NAME");
  const event = eventInput || (actionsEvent ? (ACTIONS_TO_WEBHOOK_EVENT[actionsEvent] ?? actionsEvent) : "");
  if (event === "") errors.push("Input `event` is required when GITHUB_EVENT_NAME is not set.");
  else if (!HEADER_SAFE.test(event)) errors.push("Input `event` must be printable ASCII on one line.");

  // Payload: inline, a file, or the workflow's event file. The bytes are sent exactly as read.
  const payloadText = get(Input.payload);
  const payloadFile = text(Input.payloadFile);
  const eventPath = envValue(env, "GITHUB_EVENT_PATH");
  let payload: PayloadSource = { kind: "inline", text: "" };
  if (asciiTrim(payloadText) !== "" && payloadFile !== "")
    errors.push("Set either `payload` or `payload-file`, not both.");
  else if (asciiTrim(payloadText) !== "") payload = { kind: "inline", text: payloadText };
  else if (payloadFile !== "") payload = { kind: "file", path: payloadFile, from: "payload-file" };
  else if (eventPath) payload = { kind: "file", path: eventPath, from: "GITHUB_EVENT_PATH" };
  else errors.push("No payload: set `payload` or `payload-file`, or run inside a workflow (GITHUB_EVENT_PATH).");

  const contentType = text(Input.contentType) || DEFAULTS.contentType;
  if (!isOneOf(CONTENT_TYPES, contentType))
    errors.push(`Input \`content-type\` must be json or form; got "${contentType}".`);

  const timeoutSeconds = parseNumber(text(Input.timeoutSeconds), DEFAULTS.timeoutSeconds);
  if (timeoutSeconds === undefined || timeoutSeconds <= 0 || timeoutSeconds > LIMITS.maxTimeoutSeconds)
    errors.push(
      `Input \`timeout-seconds\` must be a number of seconds, above 0 and at most ${LIMITS.maxTimeoutSeconds}.`,
    );

  const retries = parseNumber(text(Input.retries), DEFAULTS.retries);
  if (retries === undefined || !Number.isInteger(retries) || retries < 0 || retries > LIMITS.maxRetries)
    errors.push(`Input \`retries\` must be a whole number from 0 to ${LIMITS.maxRetries}.`);

  const bool = (name: InputName, fallback: boolean): boolean => {
    const value = text(name);
    if (value === "") return fallback;
    if (TRUE.includes(value)) return true;
    if (FALSE.includes(value)) return false;
    errors.push(`Input \`${name}\` must be true or false; got "${value}".`);
    return fallback;
  };
  const failOnError = bool(Input.failOnError, DEFAULTS.failOnError);
  const dryRun = bool(Input.dryRun, DEFAULTS.dryRun);
  const insecureSkipVerify = bool(Input.insecureSkipTlsVerify, DEFAULTS.insecureSkipTlsVerify);

  // TLS material. `client-cert`/`client-key` take a PEM or a path to one.
  const ca: PemSource[] = [];
  const caFile = text(Input.caFile);
  if (caFile !== "") ca.push({ kind: "file", path: caFile });
  const caInline = text(Input.ca);
  if (caInline !== "") {
    if (!caInline.includes("-----BEGIN CERTIFICATE-----"))
      errors.push("Input `ca` must hold PEM certificates (use `ca-file` for a path).");
    else ca.push({ kind: "inline", pem: caInline });
  }
  const clientCert = pemOrPath(text(Input.clientCert));
  const clientKey = pemOrPath(text(Input.clientKey));
  if ((clientCert === undefined) !== (clientKey === undefined))
    errors.push("Inputs `client-cert` and `client-key` go together: set both for mTLS, or neither.");
  if (clientKey?.kind === "inline") {
    // The key body lines, so a key pasted into a log by mistake is masked too.
    for (const line of clientKey.pem.split(/\r?\n/))
      if (line.length >= 16 && !line.startsWith("-----")) secrets.add(line);
  }
  if (insecureSkipVerify)
    warnings.push(
      "insecure-skip-tls-verify is true: the receiver's certificate is not verified. Prefer `ca-file` with your private CA.",
    );

  const proxy: ProxySettings = {
    httpProxy: envValue(env, "http_proxy", "HTTP_PROXY"),
    httpsProxy: envValue(env, "https_proxy", "HTTPS_PROXY"),
    noProxy: envValue(env, "no_proxy", "NO_PROXY"),
  };
  for (const s of [...proxySecrets(proxy.httpProxy), ...proxySecrets(proxy.httpsProxy)]) secrets.add(s);

  if (errors.length > 0) return { ok: false, errors, secrets: [...secrets] };
  return {
    ok: true,
    config: {
      token,
      url,
      target,
      receiverType: receiverType as SupportedReceiverType,
      event,
      eventFrom: eventInput ? "input" : "GITHUB_EVENT_NAME",
      payload,
      contentType: contentType as ContentTypeName,
      timeoutMs: Math.round((timeoutSeconds ?? DEFAULTS.timeoutSeconds) * 1000),
      retries: retries ?? DEFAULTS.retries,
      failOnError,
      dryRun,
      tls: { ca, clientCert, clientKey, insecureSkipVerify, nodeExtraCaCerts: envValue(env, "NODE_EXTRA_CA_CERTS") },
      proxy,
      context: {
        actionsEvent,
        repository: envValue(env, "GITHUB_REPOSITORY"),
        repositoryId: envValue(env, "GITHUB_REPOSITORY_ID"),
      },
      secrets: [...secrets],
      warnings,
    },
  };
}

function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
}

function parseNumber(value: string, fallback: number): number | undefined {
  if (value === "") return fallback;
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : undefined;
}

function pemOrPath(value: string): PemSource | undefined {
  if (value === "") return undefined;
  return value.includes("-----BEGIN ") ? { kind: "inline", pem: value } : { kind: "file", path: value };
}
