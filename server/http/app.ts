/**
 * @module server/http/app
 * The HTTP edges, built from injected dependencies: the receiver app (`/hook/*`) and the health
 * app (`/healthz`, `/readyz`). Nothing here listens; server.ts does.
 */
import { Elysia } from "elysia";
import { deliveryId, handleDelivery, type DeliveryDeps, type DeliveryOutcome } from "../delivery/delivery";
import { targetLabel } from "../targets/annotate";
import { handleStatusQuery, isStatusQuery, type StatusQueryDeps } from "../delivery/status-query";
import { renderDeliveriesPage, type RecentDeliveries } from "../observe/recent-deliveries";
import type { Logger } from "../observe/log";
import { keyString } from "../api/receiver";
import { jsonResponse as json } from "./json-response";
import { OUTCOMES } from "../delivery/outcomes";

/** A handled delivery, as observers (metrics, recent deliveries, Events) see it. */
export interface DeliveryReport {
  readonly outcome: DeliveryOutcome;
  /** When the request arrived (epoch milliseconds). */
  readonly time: number;
  readonly deliveryId: string | undefined;
  readonly durationMs: number;
}

export interface AppDeps extends DeliveryDeps {
  readonly log: Logger;
  /** Status queries read the cluster through this; undefined without a cluster. */
  readonly statusReader?: StatusQueryDeps["cluster"];
  /** Called after each delivery was answered. */
  readonly onDelivery?: (report: DeliveryReport) => void;
}

function responseBody(outcome: DeliveryOutcome): string {
  const { status, reason, targets } = outcome;
  return JSON.stringify(targets ? { status, reason, targets } : { status, reason });
}

export function createApp(deps: AppDeps) {
  const answer = (request: Request, outcome: DeliveryOutcome, time: number, started: number): Response => {
    const level = OUTCOMES[outcome.kind].log;
    const logged = deps.log.enabled(level);
    // Only logs and a known receiver's recent deliveries show the id: a guess at an unknown path
    // does not pay for reading the headers.
    const id = logged || outcome.receiver ? deliveryId(request.headers) : undefined;
    const report: DeliveryReport = {
      outcome,
      time,
      deliveryId: id,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    };
    if (logged) {
      deps.log[level](outcome.status >= 400 ? "delivery refused" : "delivery handled", {
        receiver: outcome.receiver ? keyString(outcome.receiver) : undefined,
        type: outcome.receiverType,
        event: outcome.event,
        deliveryId: report.deliveryId,
        status: outcome.status,
        reason: outcome.reason,
        durationMs: report.durationMs,
        targets: outcome.targets?.map(targetLabel),
      });
    }
    deps.onDelivery?.(report);
    if (outcome.status === 405) return json(405, responseBody(outcome), { allow: "POST" });
    if (outcome.retryAfterSeconds !== undefined)
      return json(outcome.status, responseBody(outcome), { "retry-after": String(outcome.retryAfterSeconds) });
    return json(outcome.status, responseBody(outcome));
  };
  // Status queries are not deliveries: they are logged, never counted, listed or turned into Events.
  const onStatusQuery = async (request: Request): Promise<Response> => {
    const outcome = await handleStatusQuery(request, { ...deps, cluster: deps.statusReader });
    const level =
      outcome.status >= 500 || (outcome.status >= 400 && outcome.status !== 429 && outcome.receiver)
        ? "error"
        : "debug";
    deps.log[level](outcome.status >= 400 ? "status query refused" : "status query answered", {
      receiver: outcome.receiver ? keyString(outcome.receiver) : undefined,
      status: outcome.status,
      reason: outcome.reason,
    });
    const { status, reason, targets } = outcome;
    const body = JSON.stringify(targets ? { status, reason, targets } : { status, reason });
    if (status === 405) return json(405, body, { allow: "POST" });
    if (outcome.retryAfterSeconds !== undefined)
      return json(status, body, { "retry-after": String(outcome.retryAfterSeconds) });
    return json(status, body);
  };

  // Synchronous when the delivery is (see handleDelivery): no promise for what needs no body.
  const onHook = ({ request }: { request: Request }): Response | Promise<Response> => {
    if (isStatusQuery(request.url)) return onStatusQuery(request);
    const time = Date.now();
    const started = performance.now();
    const outcome = handleDelivery(request, deps);
    return outcome instanceof Promise
      ? outcome.then((o) => answer(request, o, time, started))
      : answer(request, outcome, time, started);
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
      const wantsJson =
        new URL(request.url).searchParams.get("format") === "json" ||
        (request.headers.get("accept") ?? "").includes("application/json");
      if (wantsJson) return json(200, JSON.stringify({ receivers: snapshot }));
      return new Response(renderDeliveriesPage(snapshot), {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
      });
    })
    .get("/healthz", () => json(200, JSON.stringify({ status: "ok" })))
    .get("/readyz", () => {
      const ready = deps.ready();
      return json(
        ready ? 200 : 503,
        JSON.stringify({ status: ready ? "ready" : "not ready", watches: deps.watches() }),
      );
    })
    .onError(({ code }) =>
      code === "NOT_FOUND" ? json(404, JSON.stringify({ status: 404, reason: "not found" })) : undefined,
    );
}
