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
import { WEBHOOK_PATH_PREFIX, webhookDigest } from "../shared";
import { isCredentialHeader, reservedHeaderNames } from "./request";
import { isLoopback } from "./transport";
import {
  CONTENT_TYPES,
  Input,
  SUPPORTED_RECEIVER_TYPES,
  WAIT_FOR,
  type ContentTypeName,
  type Env,
  type InputGetter,
  type InputName,
  type ProxySettings,
  type SupportedReceiverType,
  type WaitFor,
} from "./vocabulary";

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
  /** Flux's default audience for generic-oidc (`oidcProviders[].audience`). */
  oidcAudience: "notification-controller",
  waitFor: "none",
  /** Flux's default reconcile timeout for a Kustomization is 5 minutes too. */
  waitTimeoutSeconds: 300,
} as const;

/** Upper bounds, so the total time a step can spend is bounded (see deliver.ts). */
export const LIMITS = {
  maxTimeoutSeconds: 300,
  maxRetries: 10,
  /** Receivers in one step: each is a delivery, a few at a time, so the step's time stays bounded. */
  maxReceivers: 20,
  /** Extra headers: enough for any gateway, few enough to read in the log. */
  maxHeaders: 20,
  /** An hour: longer belongs in a job of its own, not a step that holds a runner. */
  maxWaitTimeoutSeconds: 3600,
} as const;

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

export type Target =
  | { readonly kind: "url" }
  | { readonly kind: "receiver"; readonly address: string; readonly receiver: string; readonly namespace: string };

/** One delivery of the step: where it goes, and how it is named. */
export interface Destination {
  /** The full receiver URL. A credential: it carries the webhook digest. */
  readonly url: string;
  readonly target: Target;
}

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
// `Name: value`, the name an RFC 9110 token.
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*)$/;

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
  const trimmedToken = asciiTrim(rawToken);
  if (rawToken !== "") secrets.add(rawToken);
  if (trimmedToken !== "") secrets.add(trimmedToken);

  const receiverType = text(Input.receiverType) || DEFAULTS.receiverType;
  const knownType = isOneOf(SUPPORTED_RECEIVER_TYPES, receiverType);
  if (!knownType)
    errors.push(
      `Input \`receiver-type\` must be one of ${SUPPORTED_RECEIVER_TYPES.join(", ")}; got "${receiverType}".`,
    );
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
  const oidcAudience = oidc ? text(Input.oidcAudience) || DEFAULTS.oidcAudience : undefined;
  if (oidcAudience !== undefined && !HEADER_SAFE.test(oidcAudience))
    errors.push("Input `oidc-audience` must be printable ASCII on one line.");
  // The path needs the token, except for generic-oidc, whose token is "".
  const pathToken = oidc || token !== "" ? token : undefined;

  const rawUrl = get(Input.url);
  const urlInput = asciiTrim(rawUrl);
  if (rawUrl !== "") secrets.add(rawUrl);
  if (urlInput !== "") secrets.add(urlInput);
  const address = text(Input.address);
  const receiverLines = get(Input.receiver)
    .split(/\r?\n/)
    .map(asciiTrim)
    .filter((line) => line !== "");
  const namespace = text(Input.namespace) || DEFAULTS.namespace;

  // Where to deliver: exactly one of `url` or `address` + `receiver` (one name or several).
  const destinations: Destination[] = [];
  if (urlInput !== "" && (address !== "" || receiverLines.length > 0)) {
    errors.push("Set either `url`, or `address` with `receiver` (and `namespace`), not both.");
  } else if (urlInput !== "") {
    const parsed = parseHttpUrl(urlInput);
    if (!parsed)
      errors.push("Input `url` must be an absolute http:// or https:// URL (its value is not shown: it is a secret).");
    else if (parsed.username !== "" || parsed.password !== "")
      errors.push("Input `url` must not contain user:password@.");
    else {
      destinations.push({ url: parsed.href, target: { kind: "url" } });
      for (const s of urlSecrets(parsed)) secrets.add(s);
    }
  } else if (address === "" && receiverLines.length === 0) {
    errors.push("Set where to deliver: `url`, or `address` with `receiver` (and `namespace`, default flux-system).");
  } else if (address === "") {
    errors.push("Input `address` is required with `receiver`, e.g. https://flux-webhook.example.internal.");
  } else if (receiverLines.length === 0) {
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
    if (receiverLines.length > LIMITS.maxReceivers)
      errors.push(`Input \`receiver\` lists ${receiverLines.length} Receivers; at most ${LIMITS.maxReceivers}.`);
    const seen = new Set<string>();
    for (const line of receiverLines) {
      const slash = line.indexOf("/");
      const [ns, name] = slash >= 0 ? [line.slice(0, slash), line.slice(slash + 1)] : [namespace, line];
      if (!K8S_NAME.test(name) || name.length > 253) {
        errors.push(
          `Input \`receiver\` must be a Kubernetes object name (lowercase letters, digits, '-' and '.'), or namespace/name; got "${line}".`,
        );
        continue;
      }
      if (!K8S_LABEL.test(ns) || ns.length > 63) {
        errors.push(
          slash >= 0
            ? `Input \`receiver\`: "${line}" must start with a Kubernetes namespace name.`
            : `Input \`namespace\` must be a Kubernetes namespace name; got "${ns}".`,
        );
        continue;
      }
      if (seen.has(`${ns}/${name}`)) {
        errors.push(`Input \`receiver\` lists ${ns}/${name} twice.`);
        continue;
      }
      seen.add(`${ns}/${name}`);
      if (!base || pathToken === undefined) continue;
      const digest = webhookDigest(pathToken, name, ns);
      const prefix = `${base.origin}${base.pathname.replace(/\/+$/, "")}`;
      const url = `${prefix}${WEBHOOK_PATH_PREFIX}${digest}`;
      secrets.add(digest);
      secrets.add(url);
      destinations.push({ url, target: { kind: "receiver", address: prefix, receiver: name, namespace: ns } });
    }
  }

  // Extra headers, for a gateway in front of the receiver. Values are never echoed in errors.
  const extraHeaders: Array<readonly [string, string]> = [];
  const reserved = new Set(reservedHeaderNames(knownType ? receiverType : "generic").map((h) => h.toLowerCase()));
  const headerLines = get(Input.headers).split(/\r?\n/);
  const names = new Set<string>();
  headerLines.forEach((raw, i) => {
    const line = asciiTrim(raw);
    if (line === "") return;
    const m = HEADER_LINE.exec(line);
    if (!m) {
      errors.push(
        `Input \`headers\`, line ${i + 1}: expected \`Name: value\` (the line is not shown: it may be a secret).`,
      );
      return;
    }
    const [, name = "", value = ""] = m;
    if (isCredentialHeader(name)) secrets.add(value);
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

  const userAgent = text(Input.userAgent);
  if (userAgent !== "" && !HEADER_SAFE.test(userAgent))
    errors.push("Input `user-agent` must be printable ASCII on one line.");

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

  const waitFor = text(Input.waitFor) || DEFAULTS.waitFor;
  if (!isOneOf(WAIT_FOR, waitFor))
    errors.push(`Input \`wait-for\` must be one of ${WAIT_FOR.join(", ")}; got "${waitFor}".`);
  const waitTimeoutSeconds = parseNumber(text(Input.waitTimeoutSeconds), DEFAULTS.waitTimeoutSeconds);
  if (waitTimeoutSeconds === undefined || waitTimeoutSeconds <= 0 || waitTimeoutSeconds > LIMITS.maxWaitTimeoutSeconds)
    errors.push(
      `Input \`wait-timeout-seconds\` must be a number of seconds, above 0 and at most ${LIMITS.maxWaitTimeoutSeconds}.`,
    );
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
  const inClear = knownType ? cleartextWarning(destinations, receiverType) : undefined;
  if (inClear) warnings.push(inClear);

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
      oidcAudience,
      destinations,
      receiverType: receiverType as SupportedReceiverType,
      extraHeaders,
      userAgent: userAgent || undefined,
      event,
      eventFrom: eventInput ? "input" : "GITHUB_EVENT_NAME",
      payload,
      contentType: contentType as ContentTypeName,
      timeoutMs: Math.round((timeoutSeconds ?? DEFAULTS.timeoutSeconds) * 1000),
      retries: retries ?? DEFAULTS.retries,
      failOnError,
      dryRun,
      waitFor: waitFor as WaitFor,
      waitTimeoutMs: Math.round((waitTimeoutSeconds ?? DEFAULTS.waitTimeoutSeconds) * 1000),
      tls: { ca, clientCert, clientKey, insecureSkipVerify, nodeExtraCaCerts: envValue(env, "NODE_EXTRA_CA_CERTS") },
      proxy,
      context: {
        actionsEvent,
        repository: envValue(env, "GITHUB_REPOSITORY"),
        repositoryId: envValue(env, "GITHUB_REPOSITORY_ID"),
        enterprise: enterpriseServer(env),
      },
      secrets: [...secrets],
      warnings,
    },
  };
}

/** What each receiver type's requests carry that plain http:// shows to the network. */
const CLEARTEXT_CREDENTIAL: Readonly<Record<SupportedReceiverType, string | undefined>> = {
  github: "the signatures of the delivery and of the status queries",
  bitbucket: "the signatures of the delivery and of the status queries",
  "generic-hmac": "the signatures of the delivery and of the status queries",
  gitlab: "the token itself (X-Gitlab-Token)",
  harbor: "the token itself (Authorization)",
  "generic-oidc": "the runner's ID token",
  generic: undefined,
};

/**
 * One warning when a token or a signature would cross the network in clear: plain http:// to a
 * host other than this runner's loopback, where anyone on the path can read it and the answers.
 */
function cleartextWarning(destinations: readonly Destination[], type: SupportedReceiverType): string | undefined {
  const credential = CLEARTEXT_CREDENTIAL[type];
  const inClear = destinations.find((d) => {
    const url = new URL(d.url);
    return url.protocol === "http:" && !isLoopback(url.hostname);
  });
  if (!credential || !inClear) return undefined;
  return (
    `${maskUrl(inClear.url)} is plain http:// beyond this runner: ${credential} and the receiver's answers ` +
    "cross the network unencrypted, readable and changeable on the way. Use https:// (`ca-file` for a private CA)."
  );
}

/**
 * The secret parts of a `url`: the digest after `/hook/`; for any other path (a gateway's own
 * route may be the secret), the path and query themselves. maskUrl hides the same parts.
 */
function urlSecrets(url: URL): string[] {
  const at = url.pathname.indexOf(WEBHOOK_PATH_PREFIX);
  const digest = at >= 0 ? url.pathname.slice(at + WEBHOOK_PATH_PREFIX.length) : "";
  const out = [url.href, digest];
  if (at < 0 && url.pathname !== "/") out.push(url.pathname, url.pathname.slice(1));
  if (url.search !== "") out.push(url.search, url.search.slice(1));
  return out.filter((s) => s.length >= 4);
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
