/**
 * @module action/destination
 * Where the step delivers: exactly one of `url`, or `address` with `receiver` (one name or
 * several, each `name` or `namespace/name`) and `namespace`. A receiver URL is a credential (its
 * path is the webhook digest), so every form of it is masked, no error echoes it, and logs show
 * it through `maskUrl` only.
 */
import { WEBHOOK_PATH_PREFIX, webhookDigest } from "../shared";
import { DEFAULTS, LIMITS } from "./defaults";
import { asciiTrim, parseHttpUrl, type Reading } from "./reading";
import { isLoopback } from "./transport";
import { Input, type SupportedReceiverType } from "./vocabulary";

export type Target =
  | { readonly kind: "url" }
  | { readonly kind: "receiver"; readonly address: string; readonly receiver: string; readonly namespace: string };

/** One delivery of the step: where it goes, and how it is named. */
export interface Destination {
  /** The full receiver URL. A credential: it carries the webhook digest. */
  readonly url: string;
  readonly target: Target;
}

// Kubernetes object names: an RFC 1123 subdomain (Receiver) and label (namespace). Anything else
// can never match a real Receiver, so it is a typo worth reporting before the request.
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const K8S_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The destinations the inputs name; none when they name none correctly (the errors say why).
 * `pathToken` is what Flux computes the path from: the token ("" for generic-oidc), or undefined
 * when the token is missing, so no path can be computed.
 */
export function readDestinations(reading: Reading, pathToken: string | undefined): Destination[] {
  const { errors, secrets } = reading;
  const rawUrl = reading.raw(Input.url);
  const url = asciiTrim(rawUrl);
  if (rawUrl !== "") secrets.add(rawUrl);
  if (url !== "") secrets.add(url);
  const address = reading.text(Input.address);
  const receivers = reading
    .raw(Input.receiver)
    .split(/\r?\n/)
    .map(asciiTrim)
    .filter((line) => line !== "");
  const namespace = reading.text(Input.namespace) || DEFAULTS.namespace;

  if (url !== "" && (address !== "" || receivers.length > 0)) {
    errors.push("Set either `url`, or `address` with `receiver` (and `namespace`), not both.");
    return [];
  }
  if (url !== "") return byUrl(reading, url);
  if (address === "" && receivers.length === 0)
    errors.push("Set where to deliver: `url`, or `address` with `receiver` (and `namespace`, default flux-system).");
  else if (address === "")
    errors.push("Input `address` is required with `receiver`, e.g. https://flux-webhook.example.internal.");
  else if (receivers.length === 0) errors.push("Input `receiver` (the Receiver's name) is required with `address`.");
  else return byName(reading, address, receivers, namespace, pathToken);
  return [];
}

/** `url`: the one destination, as given. */
function byUrl(reading: Reading, value: string): Destination[] {
  const parsed = parseHttpUrl(value);
  if (!parsed) {
    reading.errors.push(
      "Input `url` must be an absolute http:// or https:// URL (its value is not shown: it is a secret).",
    );
    return [];
  }
  if (parsed.username !== "" || parsed.password !== "") {
    reading.errors.push("Input `url` must not contain user:password@.");
    return [];
  }
  for (const secret of urlSecrets(parsed)) reading.secrets.add(secret);
  return [{ url: parsed.href, target: { kind: "url" } }];
}

/** `address` + `receiver` lines: one destination per Receiver, its path computed as Flux does. */
function byName(
  reading: Reading,
  address: string,
  receivers: readonly string[],
  namespace: string,
  pathToken: string | undefined,
): Destination[] {
  const { errors, secrets } = reading;
  const base = parseHttpUrl(address);
  // Credentials in the address are not echoed: they may be real ones.
  if (base && (base.username !== "" || base.password !== ""))
    errors.push("Input `address` must not contain user:password@ (its value is not shown).");
  else if (base?.search !== "" || base.hash !== "")
    errors.push(
      `Input \`address\` must be an http:// or https:// origin, optionally with a path prefix; got "${address}".`,
    );
  if (receivers.length > LIMITS.maxReceivers)
    errors.push(`Input \`receiver\` lists ${receivers.length} Receivers; at most ${LIMITS.maxReceivers}.`);
  const destinations: Destination[] = [];
  const seen = new Set<string>();
  for (const line of receivers) {
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
  return destinations;
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

/**
 * The secret parts of a `url`: the digest after `/hook/`; for any other path (a gateway's own
 * route may be the secret), the path and query themselves. maskUrl hides the same parts.
 */
function urlSecrets(url: URL): string[] {
  const at = url.pathname.indexOf(WEBHOOK_PATH_PREFIX);
  const digest = at >= 0 ? url.pathname.slice(at + WEBHOOK_PATH_PREFIX.length) : "";
  const secrets = [url.href, digest];
  if (at < 0 && url.pathname !== "/") secrets.push(url.pathname, url.pathname.slice(1));
  if (url.search !== "") secrets.push(url.search, url.search.slice(1));
  return secrets.filter((secret) => secret.length >= 4);
}

/** What each receiver type's requests carry that plain http:// shows to the network. */
const CLEARTEXT_CREDENTIAL: Readonly<Record<SupportedReceiverType, string>> = {
  github: "the signatures of the delivery and of the status queries",
  bitbucket: "the signatures of the delivery and of the status queries",
  "generic-hmac": "the signatures of the delivery and of the status queries",
  gitlab: "the token itself (X-Gitlab-Token)",
  harbor: "the token itself (Authorization)",
  "generic-oidc": "the runner's ID token",
  generic: "the receiver's URL, its only credential (it triggers the Receiver and reads its targets' status)",
};

/**
 * One warning when a credential (a token, a signature, a generic Receiver's URL) would cross the
 * network in clear: plain http:// to a host other than this runner's loopback, where anyone on the
 * path can read it and the answers.
 */
export function cleartextWarning(
  destinations: readonly Destination[],
  type: SupportedReceiverType,
): string | undefined {
  const credential = CLEARTEXT_CREDENTIAL[type];
  const inClear = destinations.find((destination) => {
    const url = new URL(destination.url);
    return url.protocol === "http:" && !isLoopback(url.hostname);
  });
  if (!inClear) return undefined;
  return (
    `${maskUrl(inClear.url)} is plain http:// beyond this runner: ${credential} and the receiver's answers ` +
    "cross the network unencrypted, readable and changeable on the way. Use https:// (`ca-file` for a private CA)."
  );
}
