/**
 * @module action/plan
 * The step's deliveries, built before anything is sent: one request per destination, with its
 * delivery id and the settings its status queries are built from; and the log's account of them
 * (the Request group, and in a dry run each request as it would go).
 */
import { createHash, randomUUID } from "node:crypto";
import { version } from "../package.json";
import { maskUrl } from "./destination";
import type { ActionConfig } from "./inputs";
import type { Io } from "./io";
import type { Material } from "./preflight";
import { resultName, type DeliveryResult, type ReportContext } from "./report";
import { buildRequest, hookId, redactHeaders, type RequestSettings } from "./request";
import { describeRoute, type Route } from "./transport";
import type { OutgoingRequest } from "./vocabulary";

/**
 * GitHub's `User-Agent` is `GitHub-Hookshot/<short id of its build>`, and some consumers only
 * accept that form; the id here names this fluxhook version the same way (seven hex digits).
 */
export const USER_AGENT = `GitHub-Hookshot/${createHash("sha256").update(`fluxhook-action/${version}`).digest("hex").slice(0, 7)}`;

/** Deliveries (and then status queries) in flight at once when `receiver` lists several: quick, without a burst. */
export const MAX_PARALLEL_DELIVERIES = 4;

/** How much of a request body a dry run shows. */
const DRY_RUN_PREVIEW_BYTES = 4096;

/** What every part of the step writes through, and what it writes about. */
export interface Step {
  readonly io: Io;
  readonly config: ActionConfig;
}

/** One delivery of the step, before it is sent. */
export interface Planned {
  readonly ctx: ReportContext;
  readonly deliveryId: string;
  readonly req: OutgoingRequest;
  /** What the request was built from: status queries are built from it too. */
  readonly settings: RequestSettings;
}

/** One request per destination, signed with `credential` (the token, or generic-oidc's ID token). */
export function planDeliveries(
  config: ActionConfig,
  payload: Uint8Array,
  credential: string,
  newDeliveryId: () => string = randomUUID,
): Planned[] {
  return config.destinations.map((destination): Planned => {
    const ctx: ReportContext = {
      ...destination,
      event: config.event,
      receiverType: config.receiverType,
      timeoutMs: config.timeoutMs,
    };
    const deliveryId = newDeliveryId();
    // The hook id names the receiver by its public name only, never by its digest.
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
    return { ctx, deliveryId, req: buildRequest(settings, payload, deliveryId), settings };
  });
}

/** A dry run's results: every delivery planned, none sent. */
export const unsent = (planned: readonly Planned[]): DeliveryResult[] =>
  planned.map(({ ctx, deliveryId }) => ({ ctx, deliveryId, outcome: undefined }));

/** The Request group: where each delivery goes, what it carries and how, with no secret. */
export function logPlan({ io, config }: Step, planned: readonly Planned[], material: Material, route: Route): void {
  const first = planned[0] as Planned;
  const target = new URL(first.ctx.url);
  const from =
    config.payload.kind === "inline" ? "the `payload` input" : `${config.payload.path} (${config.payload.from})`;
  io.startGroup("Request");
  if (planned.length === 1) {
    const where = first.ctx.target;
    io.info(
      `Receiver: ${maskUrl(first.ctx.url)}${where.kind === "receiver" ? ` (Receiver ${where.namespace}/${where.receiver})` : ""}`,
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
        .map(([name, value]) => `${name}: ${value}`)
        .join(", ")}`,
    );
  for (const delivery of planned)
    io.info(
      planned.length === 1
        ? `Delivery ID: ${delivery.deliveryId}`
        : `Delivery ID for ${resultName(delivery.ctx)}: ${delivery.deliveryId}`,
    );
  io.info(`Route: ${describeRoute(route)}`);
  if (target.protocol === "https:") {
    const { extraCa, clientCert } = material.tls;
    const trust = config.tls.insecureSkipVerify
      ? "certificate NOT verified"
      : `verified against the default roots${extraCa.length ? ` + ${extraCa.length} extra CA input(s)` : ""}`;
    io.info(`TLS: ${trust}${clientCert ? ", client certificate presented" : ""}`);
  }
  io.info(
    `Timeout: ${config.timeoutMs / 1000} s per attempt; ${config.retries === 0 ? "no retries" : `up to ${config.retries} retries`}`,
  );
  io.endGroup();
}

/** A dry run: each request as it would go (credentials redacted, the body's start), and nothing sent. */
export function logDryRun({ io, config }: Step, planned: readonly Planned[]): void {
  const several = planned.length > 1;
  for (const { ctx, req } of planned) {
    io.startGroup(
      several ? `Dry run for ${resultName(ctx)}: this request is not sent` : "Dry run: this request is not sent",
    );
    io.info(`${req.method} ${maskUrl(req.url)}`);
    for (const [name, value] of Object.entries(redactHeaders(req.headers))) io.info(`${name}: ${value}`);
    io.info("");
    const preview =
      new TextDecoder().decode(req.body.subarray(0, DRY_RUN_PREVIEW_BYTES)) +
      (req.body.byteLength > DRY_RUN_PREVIEW_BYTES ? "\n… (truncated)" : "");
    io.info(preview);
    io.endGroup();
  }
  if (config.waitFor !== "none") io.info(`Dry run: not waiting for Flux (wait-for: ${config.waitFor}).`);
}
