/**
 * @module server/app
 * The HTTP edges, built from injected dependencies: the receiver app (`/hook/*`) and the health
 * app (`/healthz`, `/readyz`). Nothing here listens; server.ts does.
 */
import { Elysia } from "elysia";
import { deliveryId, handleDelivery, type DeliveryDeps, type DeliveryOutcome } from "./delivery";
import type { TargetOutcome } from "./targets/annotate";
import { renderDeliveriesPage, type RecentDeliveries } from "./recent-deliveries";
import type { Logger } from "./log";
import { keyString } from "./receivers/index";

/** A handled delivery, as observers (metrics, recent deliveries, Events) see it. */
export interface DeliveryReport {
  readonly outcome: DeliveryOutcome;
  readonly time: Date;
  readonly deliveryId: string | undefined;
  readonly durationMs: number;
}

export interface AppDeps extends DeliveryDeps {
  readonly log: Logger;
  /** Called after each delivery was answered. */
  readonly onDelivery?: (report: DeliveryReport) => void;
}


function responseBody(outcome: DeliveryOutcome): string {
  return JSON.stringify({
    status: outcome.status,
    reason: outcome.reason,
    ...(outcome.targets ? { targets: outcome.targets } : {}),
  });
}

/** `Kind/namespace/name:outcome`, as logs and the deliveries page show a target. */
export const targetLabel = (t: TargetOutcome) => `${t.kind}/${t.namespace}/${t.name}:${t.outcome}`;

/** JSON answers carry their length, which the response-size metric reads. */
const json = (status: number, body: string, extra?: Record<string, string>) =>
  new Response(body, { status, headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...extra } });

export function createApp(deps: AppDeps) {
  const onHook = async ({ request }: { request: Request }) => {
    const time = new Date();
    const started = performance.now();
    const outcome = await handleDelivery(request, deps);
    const report: DeliveryReport = { outcome, time, deliveryId: deliveryId(request.headers), durationMs: Math.round((performance.now() - started) * 1000) / 1000 };
    const fields = {
      receiver: outcome.receiver ? keyString(outcome.receiver) : undefined,
      type: outcome.receiverType,
      event: outcome.event,
      deliveryId: report.deliveryId,
      status: outcome.status,
      reason: outcome.reason,
      durationMs: report.durationMs,
      targets: outcome.targets?.map(targetLabel),
    };
    // Refusals of a known receiver are errors its owner wants to see; they are bounded by the
    // failure rate limit. The 429s beyond it, and guesses at unknown paths, would turn a flood
    // into a log flood: they are debug lines, and counted in the metrics.
    if (outcome.status >= 500 || (outcome.status >= 400 && outcome.status !== 429 && outcome.receiver)) deps.log.error("delivery refused", fields);
    else if (outcome.status >= 400) deps.log.debug("delivery refused", fields);
    else deps.log.info("delivery handled", fields);
    deps.onDelivery?.(report);
    const extra: Record<string, string> = {};
    if (outcome.status === 405) extra.allow = "POST";
    if (outcome.retryAfterSeconds !== undefined) extra["retry-after"] = String(outcome.retryAfterSeconds);
    return json(outcome.status, responseBody(outcome), extra);
  };

  return new Elysia({ name: "fluxhook.receiver" })
    .all("/hook/*", onHook, { parse: "none" })
    .onError(({ code, error }) => {
      if (code === "NOT_FOUND") return json(404, JSON.stringify({ status: 404, reason: "not found" }));
      deps.log.error("unexpected error", { error: error instanceof Error ? error.message : String(error) });
      return json(500, JSON.stringify({ status: 500, reason: "internal error" }));
    });
}

export interface HealthDeps {
  /** True once the initial Receiver and Secret lists are in the index, and while not shutting down. */
  readonly ready: () => boolean;
  /** The state of each Receiver source, reported by /readyz. */
  readonly watches: () => Record<string, string>;
  readonly deliveries: RecentDeliveries;
}

export function createHealthApp(deps: HealthDeps) {
  return new Elysia({ name: "fluxhook.health" })
    .get("/deliveries", ({ request }) => {
      const snapshot = deps.deliveries.snapshot();
      const wantsJson = new URL(request.url).searchParams.get("format") === "json" || (request.headers.get("accept") ?? "").includes("application/json");
      if (wantsJson) return json(200, JSON.stringify({ receivers: snapshot }));
      return new Response(renderDeliveriesPage(snapshot), {
        headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'" },
      });
    })
    .get("/healthz", () => json(200, JSON.stringify({ status: "ok" })))
    .get("/readyz", () => {
      const ready = deps.ready();
      return json(ready ? 200 : 503, JSON.stringify({ status: ready ? "ready" : "not ready", watches: deps.watches() }));
    })
    .onError(({ code }) => (code === "NOT_FOUND" ? json(404, JSON.stringify({ status: 404, reason: "not found" })) : undefined));
}
