/**
 * @module server/http/app
 * The HTTP edges, built from injected dependencies: the receiver app (`/hook/<digest>` and its
 * status query) and the health app (`/healthz`, `/readyz`, `/deliveries`, `/openapi.json`), both
 * Elysia apps. Nothing here listens; server.ts calls `listen`.
 *
 * The receiver app serves a path only as it was requested. Flux matches the exact request URI;
 * Bun's `request.url` is normalised (`/hook/./D`, `/hook/%2e/D`, `/x/../hook/D` and `/hook\D`
 * all read `/hook/D`). Served through Elysia's Bun adapter (`app.listen`), each route is
 * registered in Bun's own router, which matches the raw request-target and sets
 * `request.params`; the app checks that the digest it matched is what `request.url` names. A
 * request Bun's router did not match falls back to Elysia's router, which matches the normalised
 * path: that fallback, and any request without Bun's params, answers 404. No routing reads the Host
 * header (Elysia's own path extraction cuts the URL at a fixed offset, so a Host of 3 characters or
 * fewer would move it).
 */
import { Elysia } from "elysia";
import { STATUS_QUERY_SUFFIX, WEBHOOK_PATH_PREFIX } from "../../shared";
import { deliveryId, handleDelivery, requestTarget, type DeliveryDeps } from "../delivery/delivery";
import { targetLabel } from "../targets/annotate";
import { handleStatusQuery, type StatusQueryDeps, type StatusQueryOutcome } from "../delivery/status-query";
import { renderDeliveriesPage, type RecentDeliveries } from "../observe/recent-deliveries";
import type { Logger } from "../runtime/log";
import { receiverLogFields } from "../api/receiver";
import { jsonResponse as json } from "./json-response";
import { StatusReads } from "../delivery/status-reads";
import type { KubePort } from "../kube/port";
import { receiverOpenApi } from "./openapi";
import { boundOutcome, boundText } from "../outcome/outcome-text";
import { OUTCOMES, UNKNOWN_PATH, type DeliveryOutcome } from "../outcome/outcomes";

/** A handled delivery, as observers (metrics, recent deliveries, Events) see it. */
export interface DeliveryReport {
  readonly outcome: DeliveryOutcome;
  /** When the request arrived (epoch milliseconds). */
  readonly time: number;
  readonly deliveryId: string | undefined;
  readonly durationMs: number;
}

/** Answers `request` with `serve` and measures it (observe/metrics.ts instrumentRequests). */
export type Instrument = (
  request: Request,
  serve: (request: Request) => Response | Promise<Response>,
) => Response | Promise<Response>;

export interface AppDeps extends DeliveryDeps {
  readonly log: Logger;
  /** Measures every request on the listener, routed or not; none in tests that do not look. */
  readonly instrument?: Instrument;
  /** Status queries read the cluster through this (status-reads.ts shares the reads); undefined without a cluster. */
  readonly statusReader?: Pick<KubePort, "observeObject" | "observeObjects">;
  /** A status query's reads' deadline (STATUS_QUERY_DEADLINE_MS; tests shorten it). */
  readonly statusQueryDeadlineMs?: number;
  /** Called after each delivery was answered. */
  readonly onDelivery?: (report: DeliveryReport) => void;
}

/** The JSON answer of a delivery or a status query: status, reason, targets, and their headers. */
function respond(outcome: {
  readonly status: number;
  readonly reason: string;
  readonly targets?: readonly unknown[];
  readonly retryAfterSeconds?: number;
}): Response {
  const { status, reason, targets } = outcome;
  const body = JSON.stringify(targets ? { status, reason, targets } : { status, reason });
  if (status === 405) return json(405, body, { allow: "POST" });
  if (outcome.retryAfterSeconds !== undefined)
    return json(status, body, { "retry-after": String(outcome.retryAfterSeconds) });
  return json(status, body);
}

export function createApp(deps: AppDeps) {
  const handlers = receiverHandlers(deps);
  const instrument: Instrument = deps.instrument ?? ((request, serve) => serve(request));
  /** A route's handler: Bun's router matched the raw request-target, or this is the fallback. */
  const route = (serve: (request: Request, digest: string) => Response | Promise<Response>) => {
    const dispatch = (request: Request) => {
      const digest = bunParams(request)?.digest;
      return digest === undefined ? handlers.unrouted(request) : serve(request, digest);
    };
    return ({ request }: { request: Request }) => instrument(request, dispatch);
  };
  const delivery = route(handlers.delivery);
  const status = route(handlers.statusQuery);

  const app = new Elysia({ name: "fluxhook.receiver" });
  for (const method of HOOK_METHODS) {
    app.route(method, HOOK_ROUTE, delivery);
    app.route(method, STATUS_QUERY_ROUTE, status);
  }
  // Elysia's router found nothing (Bun's router had found nothing either): a 404, measured too.
  return app.onError(({ code, request, error }) =>
    code === "NOT_FOUND" ? instrument(request, handlers.unrouted) : handlers.internalError(error),
  );
}

/** What the receiver app answers, once a route (or none) matched: deliveries, status queries, 404, 500. */
function receiverHandlers(deps: AppDeps) {
  const answerDelivery = (request: Request, unbounded: DeliveryOutcome, time: number, started: number): Response => {
    // Before anything shows it: sender text in the outcome is cut here, once.
    const outcome = boundOutcome(unbounded);
    const durationMs = elapsedMs(started);
    const id = logOutcome(deps.log, request, outcome, "delivery", durationMs);
    deps.onDelivery?.({ outcome, time, deliveryId: id, durationMs });
    return respond(outcome);
  };
  const unknownPath = (request: Request, time = Date.now(), started = performance.now()) =>
    answerDelivery(request, UNKNOWN_PATH, time, started);
  const internalError = (error: unknown) => {
    deps.log.error("unexpected error", { error: boundText(error instanceof Error ? error.message : String(error)) });
    return json(500, JSON.stringify({ status: 500, reason: "internal error" }));
  };
  // Status queries are not deliveries: they are logged, never counted, listed or turned into Events.
  const queryDeps: StatusQueryDeps = {
    ...deps,
    reads: deps.statusReader && new StatusReads(deps.statusReader),
    deadlineMs: deps.statusQueryDeadlineMs,
  };
  const answerStatusQuery = async (request: Request, target: string): Promise<Response> => {
    const started = performance.now();
    const outcome = boundOutcome(await handleStatusQuery(request, queryDeps, target));
    logOutcome(deps.log, request, outcome, "status query", elapsedMs(started));
    return respond(outcome);
  };

  return {
    internalError,
    /** What no route matched: under /hook/ a path that names no Receiver (as served), else not found. */
    unrouted: (request: Request) =>
      requestTarget(request.url).startsWith(WEBHOOK_PATH_PREFIX) ? unknownPath(request) : notFound(),

    /**
     * One request whose raw request-target matched `/hook/<digest>` (`digest` as the router decoded
     * it). Synchronous when the delivery is (see handleDelivery): no promise for what needs no body.
     */
    delivery(request: Request, digest: string): Response | Promise<Response> {
      const time = Date.now();
      const started = performance.now();
      const target = requestTarget(request.url);
      // Canonical only: the normalised path must be the one that was requested.
      if (withoutQuery(target) !== WEBHOOK_PATH_PREFIX + digest) return unknownPath(request, time, started);
      try {
        const outcome = handleDelivery(request, deps, target);
        return outcome instanceof Promise
          ? outcome.then((o) => answerDelivery(request, o, time, started), internalError)
          : answerDelivery(request, outcome, time, started);
      } catch (error) {
        return internalError(error);
      }
    },

    /** The status query of `/hook/<digest>/status`, when that is exactly what was requested. */
    statusQuery(request: Request, digest: string): Response | Promise<Response> {
      const target = requestTarget(request.url);
      if (withoutQuery(target) !== WEBHOOK_PATH_PREFIX + digest + STATUS_QUERY_SUFFIX) return unknownPath(request);
      return answerStatusQuery(request, target).catch(internalError);
    },
  };
}

/** Logs a bounded outcome at its table's level; the delivery id is read only when something shows it. */
function logOutcome(
  log: Logger,
  request: Request,
  outcome: DeliveryOutcome | StatusQueryOutcome,
  what: "delivery" | "status query",
  durationMs: number,
): string | undefined {
  const level = OUTCOMES[outcome.kind].log;
  const logged = log.enabled(level);
  // Only logs and a known receiver's recent deliveries show the id: a guess at an unknown path
  // does not pay for reading the headers.
  const id = logged || (what === "delivery" && outcome.receiver) ? deliveryId(request.headers) : undefined;
  if (logged) {
    const refused = outcome.status >= 400;
    log[level](`${what} ${refused ? "refused" : what === "delivery" ? "handled" : "answered"}`, {
      ...(outcome.receiver ? receiverLogFields(outcome.receiver) : {}),
      type: outcome.receiverType,
      event: outcome.event,
      deliveryId: id,
      status: outcome.status,
      reason: outcome.reason,
      // Failures under `error` too, where Flux's lines (and the log rules built on them) put them.
      error: refused ? outcome.reason : undefined,
      durationMs,
      targets: what === "delivery" ? (outcome as DeliveryOutcome).targets?.map(targetLabel) : undefined,
    });
  }
  return id;
}

const elapsedMs = (started: number) => Math.round((performance.now() - started) * 1000) / 1000;

/** A request-target without its query. */
const withoutQuery = (target: string) => {
  const query = target.indexOf("?");
  return query < 0 ? target : target.slice(0, query);
};

const notFound = () => json(404, JSON.stringify({ status: 404, reason: "not found" }));

/** The routes of the receiver app: a hook, and its status query. */
export const HOOK_ROUTE = `${WEBHOOK_PATH_PREFIX}:digest`;
export const STATUS_QUERY_ROUTE = `${HOOK_ROUTE}${STATUS_QUERY_SUFFIX}`;

/**
 * The methods each route is registered for in Bun's router (those Elysia's Bun adapter maps): the
 * delivery answers 405 to all but POST. A request with any other method falls back, and is a 404.
 */
const HOOK_METHODS = ["POST", "GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** The params Bun's router set on a request it matched to a route; undefined on the fallback. */
export const bunParams = (request: Request): Readonly<Record<string, string>> | undefined =>
  (request as Request & { params?: Record<string, string> }).params;

let openApiText: string | undefined;
const receiverOpenApiText = () => (openApiText ??= JSON.stringify(receiverOpenApi()));

export interface HealthDeps {
  /** True once the initial Receiver and Secret lists are in the index, and while not shutting down. */
  readonly ready: () => boolean;
  /** The state of each Receiver source, reported by /readyz. */
  readonly watches: () => Record<string, string>;
  readonly deliveries: RecentDeliveries;
}

export function createHealthApp(deps: HealthDeps) {
  return (
    new Elysia({ name: "fluxhook.health" })
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
      // The receiver's OpenAPI description, as committed in server/http/openapi.json.
      .get("/openapi.json", () => json(200, receiverOpenApiText()))
      .get("/readyz", () => {
        const ready = deps.ready();
        return json(
          ready ? 200 : 503,
          JSON.stringify({ status: ready ? "ready" : "not ready", watches: deps.watches() }),
        );
      })
      .onError(({ code }) =>
        code === "NOT_FOUND" ? json(404, JSON.stringify({ status: 404, reason: "not found" })) : undefined,
      )
  );
}
