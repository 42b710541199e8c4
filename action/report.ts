/**
 * @module action/report
 * Turns an outcome into what the user sees: step outputs, the job summary table, and a failure
 * message that says what to check. Pure: step-report.ts writes them through the `Io`.
 *
 * Nothing here may print a secret: URLs go through `maskUrl`, and the receiver's own words are
 * quoted only after the runner has been told to mask every secret. What a receiver or the network
 * said is quoted as one inert line (action/inert.ts), never as lines of its own.
 */
import { MAX_RETRY_AFTER_MS, type AttemptRecord, type Outcome } from "./deliver";
import { inert } from "./inert";
import { maskUrl, type Destination } from "./destination";
import type { ActionConfig } from "./inputs";
import { Output, type OutputName, type SendResult } from "./vocabulary";

/** The outputs every run sets. */
type DeliveryOutputName = Exclude<OutputName, typeof Output.revision>;

/** A `revision` output longer than this is no revision Flux writes (a 128-character tag and a sha512 digest fit). */
export const MAX_REVISION_CHARS = 256;

/** A digest as Flux writes one (RFC-0005): a lowercase algorithm and its hex checksum. */
const FLUX_DIGEST =
  "(?:sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}|blake3:[0-9a-f]{64})";
/** A `/`-separated component of a ref after the first: never empty, never starting with a dot. */
const REF_COMPONENT = "[A-Za-z0-9_+@-][A-Za-z0-9._+@-]*";
/**
 * A branch, tag or OCI tag before the digest, in the characters Git refs and OCI tags share: no
 * shell or YAML syntax, and as `git check-ref-format` has it no `..` and no component that is
 * empty or starts with a dot, so no `.`/`..` path segment where a workflow builds a path from it.
 */
const FLUX_POINTER = `(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._+@-]*(?:/${REF_COMPONENT})*`;
/** A chart version (a HelmChart's or HelmRelease's revision), with Flux's `+<digest>` build metadata. */
const CHART_VERSION = "v?\\d+\\.\\d+\\.\\d+(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?";
const FLUX_REVISION = new RegExp(`^(?:(?:${FLUX_POINTER}@)?${FLUX_DIGEST}|${CHART_VERSION})$`);

/**
 * The `revision` output, or why it is left out. It is the receiver's text, and a workflow may
 * splice an output into a script: only Flux's revision shapes (`main@sha1:<40 hex>`,
 * `v1.2.3@sha256:<64 hex>`, `sha256:<64 hex>`, a chart version) within MAX_REVISION_CHARS pass.
 */
export function revisionOutput(
  revision: string,
): { readonly ok: true } | { readonly ok: false; readonly warning: string } {
  if (revision.length <= MAX_REVISION_CHARS && FLUX_REVISION.test(revision)) return { ok: true };
  const shown = inert(truncate(revision, 80));
  return {
    ok: false,
    warning: `The \`revision\` output is not set: "${shown}" is not a Flux revision (<branch or tag>@<algorithm>:<hex digest>, a digest, or a chart version, at most ${MAX_REVISION_CHARS} characters).`,
  };
}

/** The `response` output keeps the start of the body: enough to read, small for later steps. */
export const MAX_RESPONSE_OUTPUT_CHARS = 4096;
/** A receiver's reason quoted in a log line. */
const MAX_REASON_CHARS = 300;

/** One delivery's context: its destination and the settings every delivery shares. */
export type ReportContext = Destination & Pick<ActionConfig, "event" | "receiverType" | "timeoutMs">;

/** One delivery of the step, as the `results` output lists it. */
export interface DeliveryResult {
  readonly ctx: ReportContext;
  readonly deliveryId: string;
  /** Undefined on a dry run. */
  readonly outcome: Outcome | undefined;
}

/**
 * Replaces every secret in text that came from outside (a receiver's body or headers, an error
 * message) with `***`. The runner masks registered secrets too; this keeps the outputs and the
 * summary clean where it does not, and makes the action safe to run outside a runner.
 */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length))
    out = out.split(secret).join("***");
  return out;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (truncated, ${text.length} characters)`;
}

/**
 * The start of a receiver's answer, at most `max` characters, with a note that gives the whole
 * body's size (not the transport's read cap) when it is longer, or says it was cut off.
 */
export function bodyExcerpt(result: Extract<SendResult, { kind: "response" }>, max: number): string {
  const { body } = result;
  if (!result.bodyTruncated && body.length <= max) return body;
  if (result.bodyCut) {
    const read = Buffer.byteLength(body);
    const of = result.bodyBytes !== undefined ? ` of its ${result.bodyBytes}` : "";
    return `${body.slice(0, max)}… (cut off after ${read}${of} bytes)`;
  }
  const size =
    result.bodyBytes !== undefined
      ? `${result.bodyBytes} bytes`
      : `more than ${Buffer.byteLength(body)} bytes${result.bodyTruncated ? ", not read to the end" : ""}`;
  return `${body.slice(0, max)}… (truncated: the answer has ${size})`;
}

const lastAttempt = (outcome: Outcome): AttemptRecord | undefined => outcome.attempts[outcome.attempts.length - 1];

const lastBody = (outcome: Outcome): string => {
  const result = lastAttempt(outcome)?.result;
  return result?.kind === "response" ? result.body : "";
};

const lastExcerpt = (outcome: Outcome, max: number): string => {
  const result = lastAttempt(outcome)?.result;
  return result?.kind === "response" ? bodyExcerpt(result, max) : "";
};

/** The step outputs, all strings. `status` is empty when no HTTP answer was received. */
export function outputsFor(
  ctx: ReportContext,
  deliveryId: string,
  outcome: Outcome | undefined,
): Record<DeliveryOutputName, string> {
  return {
    [Output.status]: outcome?.status !== undefined ? String(outcome.status) : "",
    [Output.deliveryId]: deliveryId,
    [Output.attempts]: String(outcome?.attempts.length ?? 0),
    [Output.response]: outcome ? lastExcerpt(outcome, MAX_RESPONSE_OUTPUT_CHARS) : "",
    [Output.url]: maskUrl(ctx.url),
    [Output.results]: JSON.stringify([resultEntry({ ctx, deliveryId, outcome })]),
  };
}

/** How a delivery is named in `results`: namespace/name, or the masked URL. */
export const resultName = (ctx: ReportContext): string =>
  ctx.target.kind === "receiver" ? `${ctx.target.namespace}/${ctx.target.receiver}` : maskUrl(ctx.url);

function resultEntry(result: DeliveryResult) {
  return {
    receiver: resultName(result.ctx),
    status: result.outcome?.status ?? null,
    "delivery-id": result.deliveryId,
    attempts: result.outcome?.attempts.length ?? 0,
  };
}

/**
 * The outputs of a step with one delivery or several. With several, `results` lists each, and
 * the single-delivery outputs describe the first one that failed (or the first, when none did).
 */
export function stepOutputs(results: readonly DeliveryResult[]): Record<DeliveryOutputName, string> {
  const first = results.find((result) => result.outcome !== undefined && !result.outcome.ok) ?? results[0];
  if (!first) throw new Error("stepOutputs needs at least one delivery");
  return {
    ...outputsFor(first.ctx, first.deliveryId, first.outcome),
    [Output.results]: JSON.stringify(results.map(resultEntry)),
  };
}

/** Names a receiver's progress lines when several deliver or wait at once. */
export const progressPrefix = (ctx: ReportContext, several: boolean): string => (several ? `${resultName(ctx)}: ` : "");

/** How the receiver is named in logs and the summary: never the digest. */
export function receiverLabel(ctx: ReportContext): string {
  return ctx.target.kind === "receiver"
    ? `${ctx.target.namespace}/${ctx.target.receiver} at ${maskUrl(ctx.url)}`
    : maskUrl(ctx.url);
}

/**
 * The receiver's reason for a refusal, when it gave one: fluxhook answers with a short reason
 * (as JSON `{reason|message|error}` or text); Flux answers with no body at all.
 */
export function receiverReason(body: string): string | undefined {
  const text = body.trim();
  if (text === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object") {
      const fields = parsed as Record<string, unknown>;
      for (const key of ["reason", "message", "error", "detail"]) {
        const value = fields[key];
        if (typeof value === "string" && value.trim() !== "") return inert(truncate(value.trim(), MAX_REASON_CHARS));
        if (value && typeof value === "object" && typeof (value as Record<string, unknown>).message === "string")
          return inert(truncate(String((value as Record<string, unknown>).message), MAX_REASON_CHARS));
      }
    }
    if (typeof parsed === "string") return inert(truncate(parsed, MAX_REASON_CHARS));
  } catch {
    // not JSON: quote the first line of text, unless it is an HTML error page
  }
  if (/^<(!doctype|html)/i.test(text)) return undefined;
  return inert(truncate(text.split(/\r?\n/)[0] ?? "", MAX_REASON_CHARS));
}

/**
 * The targets fluxhook reports in its answer (`targets: [{kind, namespace, name, outcome}]`), as
 * `Kind namespace/name: outcome`; empty for Flux, which answers with no body.
 */
export function receiverTargets(body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const targets = parsed && typeof parsed === "object" ? (parsed as { targets?: unknown }).targets : undefined;
  if (!Array.isArray(targets)) return [];
  return targets.flatMap((t: unknown) => {
    if (!t || typeof t !== "object") return [];
    const { kind, namespace, name, outcome } = t as Record<string, unknown>;
    if (typeof kind !== "string" || typeof name !== "string") return [];
    return [
      inert(
        `${kind} ${typeof namespace === "string" ? `${namespace}/` : ""}${name}${typeof outcome === "string" ? `: ${outcome}` : ""}`,
      ),
    ];
  });
}

const checkReceiver = (ctx: ReportContext) =>
  ctx.target.kind === "receiver"
    ? `kubectl -n ${ctx.target.namespace} get receiver ${ctx.target.receiver}`
    : "kubectl get receivers -A";

/** What to check for an HTTP status the delivery ended on. */
function statusHint(status: number, ctx: ReportContext, reason: string | undefined): string {
  const quoted = reason ? ` The receiver said: "${reason}".` : "";
  const oidc = ctx.receiverType === "generic-oidc";
  switch (true) {
    case status === 404 && oidc && ctx.target.kind === "receiver":
      return (
        `No Receiver has this path. For generic-oidc the path is sha256(name + namespace): check that receiver "${ctx.target.receiver}" ` +
        `and namespace "${ctx.target.namespace}" are right and that the Receiver is Ready (${checkReceiver(ctx)}).${quoted}`
      );
    case status === 400 && oidc:
      return (
        `The receiver refused the ID token. Check the Receiver's oidcProviders: its issuerURL must be the token's issuer, its audience ` +
        `must equal \`oidc-audience\`, and its validations must accept this repository and ref; and the event filter ` +
        `("${ctx.event}" must be in spec.events, if set).${quoted}`
      );
    case status === 404:
      return ctx.target.kind === "receiver"
        ? `No Receiver has this path. The path is sha256(token + name + namespace), so check that \`token\` equals the Receiver's Secret (key "token"), ` +
            `that receiver "${ctx.target.receiver}" and namespace "${ctx.target.namespace}" are right, and that the Receiver is Ready ` +
            `(${checkReceiver(ctx)}; its status.webhookPath must be this path).${quoted}`
        : `No Receiver has this path: check that \`url\` ends with the Receiver's status.webhookPath and that the Receiver is Ready (${checkReceiver(ctx)}).${quoted}`;
    case status === 400:
      return (
        `The receiver refused the request. Check the signature (the token must equal the Receiver's Secret; ` +
        `receiver-type "${ctx.receiverType}" must match the Receiver's spec.type) and the event filter ` +
        `("${ctx.event}" must be in the Receiver's spec.events, if set; override it with \`event\`).${quoted}`
      );
    case status === 401 || status === 403:
      return `Refused before reaching a Receiver: an ingress, gateway or auth proxy in front of it answered ${status}.${quoted}`;
    case status === 413:
      return `The payload is too large for the receiver (Flux accepts up to 3 MiB); send a smaller \`payload\`.${quoted}`;
    case status === 503:
      return `The Receiver exists but is suspended or not Ready (${checkReceiver(ctx)}), or the service behind the address is unavailable.${quoted}`;
    case status === 500:
      return `The receiver accepted the request but failed to act on it, e.g. a resource in spec.resources is missing or the Kubernetes API failed: see the receiver's logs.${quoted}`;
    case status === 429 || status >= 500:
      return `The receiver kept failing (${status}); see its logs, or raise \`retries\`.${quoted}`;
    default:
      return `Unexpected status ${status}.${quoted}`;
  }
}

/** What to check after a network failure. */
function networkHint(attempt: AttemptRecord, ctx: ReportContext): string {
  if (attempt.result.kind !== "error") return "";
  const { category, code } = attempt.result.error;
  const url = new URL(ctx.url);
  const hostPort = `${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)}`;
  switch (category) {
    case "refused":
      return `Nothing accepted a connection at ${hostPort} from this runner. Check the network path: does this runner run inside the private network, are the Service/Ingress address and port right, do firewalls allow it, and do HTTPS_PROXY/NO_PROXY fit?`;
    case "dns":
      return `This runner cannot resolve "${url.hostname}". Use a runner inside the private network, or a name or IP address it can resolve.`;
    case "timeout":
      return `No complete answer from ${hostPort} within ${ctx.timeoutMs / 1000} s: a firewall dropping packets, a wrong port, or a slow receiver (raise \`timeout-seconds\`).`;
    case "reset":
      return `The connection to ${hostPort} was cut (${code}): a proxy or load balancer in between, or https:// sent to a plain-HTTP port?`;
    case "tls-verify":
      return code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? `The receiver's certificate does not name "${url.hostname}": use the host name the certificate was issued for.`
        : `The receiver's certificate is not trusted (${code}): give its CA with \`ca-file\` or \`ca\` (added to the default roots). \`insecure-skip-tls-verify\` is a last resort.`;
    case "tls":
      return `The TLS handshake with ${hostPort} failed (${code}): https:// to a plain-HTTP port (use http://), or a receiver that requires a client certificate (\`client-cert\`, \`client-key\`)?`;
    case "tls-client-cert":
      return `${hostPort} closed the TLS connection without answering, as a receiver that requires a client certificate does when none is presented: set \`client-cert\` and \`client-key\` (not retried: another attempt without one cannot succeed).`;
    case "proxy":
      return `The proxy refused to open a tunnel to ${hostPort} (${code}): check the proxy's credentials in HTTPS_PROXY/HTTP_PROXY, or add the receiver's host to NO_PROXY.`;
    default:
      return `The request failed (${code}).`;
  }
}

/** The error message for a failed delivery: what happened, then what to check. */
export function failureMessage(outcome: Outcome, ctx: ReportContext): string {
  if (outcome.ok) return "";
  const last = lastAttempt(outcome);
  const tries = `${outcome.attempts.length} attempt${outcome.attempts.length === 1 ? "" : "s"}`;
  const where = receiverLabel(ctx);
  if (!last) return `Delivery to ${where} failed.`;
  const result = last.result;
  switch (outcome.kind) {
    case "redirect": {
      const location = result.kind === "response" ? result.headers.location : undefined;
      let to = "another location";
      if (location) {
        try {
          to = maskUrl(new URL(location, ctx.url).href);
        } catch {
          // unreadable Location: keep the generic wording
        }
      }
      return (
        `Delivery to ${where} was redirected (${outcome.status}) to ${to}. Redirects are not followed for a POST: they drop the body ` +
        `or send the secret path elsewhere. Use the final URL in \`url\`/\`address\` (https:// instead of http://? no trailing slash?).`
      );
    }
    case "retry-after-too-long": {
      const reason = receiverReason(lastBody(outcome));
      // More `retries` cannot help: the wait, not the number of attempts, is what ends it.
      return (
        `Delivery to ${where} failed with ${outcome.status} after ${tries}: the receiver asked to retry later than the ` +
        `${MAX_RETRY_AFTER_MS / 1000} s this action waits between attempts (Retry-After). Re-run the job once the receiver ` +
        `accepts deliveries again, and see its logs for why it is throttling or unavailable.${reason ? ` The receiver said: "${reason}".` : ""}`
      );
    }
    case "status":
      return `Delivery to ${where} failed with HTTP ${outcome.status} after ${tries}. ${statusHint(outcome.status ?? 0, ctx, receiverReason(lastBody(outcome)))}`;
    case "network":
      return result.kind === "error"
        ? `Delivery to ${where} failed after ${tries}: ${inert(`${result.error.code} (${result.error.message})`)}. ${networkHint(last, ctx)}`
        : `Delivery to ${where} failed after ${tries}.`;
  }
}

/** The job summary table: a header row and one row per delivery, with no secret in any cell. */
export function summaryTable(results: readonly DeliveryResult[], dryRun: boolean): string[][] {
  return [
    ["Receiver", "Event", "Delivery ID", "Status", "Attempts", "Duration", "Result"],
    ...results.map(({ ctx, deliveryId, outcome }) => [
      receiverLabel(ctx),
      ctx.event,
      deliveryId,
      dryRun ? "dry run: not sent" : outcome?.status !== undefined ? String(outcome.status) : "no answer",
      String(outcome?.attempts.length ?? 0),
      outcome ? `${(outcome.durationMs / 1000).toFixed(2)} s` : "—",
      dryRun ? "—" : outcome?.ok ? "✅ delivered" : "❌ failed",
    ]),
  ];
}
