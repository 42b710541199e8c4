/**
 * @module test/support/edge
 * The receiver app without a socket or a cluster: createApp over an index the test fills, and
 * requests answered through `app.handle` with the params Bun's router would set (routed.ts). For
 * the tables of the HTTP edge where a socket proves nothing (the status and reason per method,
 * content type, event and credential); what the socket decides (the raw request-target, the Host
 * header, slow clients, sizes) is tested over one.
 */
import { readReceiver, type ReceiverSpec } from "../../server/api/receiver";
import { DeliveryGuards, type GuardConfig } from "../../server/delivery/protect/guards";
import { createApp, type AppDeps, type DeliveryReport } from "../../server/http/app";
import { createAuthServices } from "../../server/jwt";
import type { KubePort } from "../../server/kube/port";
import { ReceiverIndex, type ReceiverEntry } from "../../server/receivers/index";
import { prepareReceiver } from "../../server/receivers/prepare";
import { silentLogger } from "../../server/runtime/log";
import { createCoalescer } from "../../server/targets/coalesce";
import { routed } from "./routed";

/** The shortest host `app.handle` routes by path (see EdgeApp.handle). */
const MIN_HOST_CHARS = 4;

/** The requestedAt value every annotation of an edge app writes. */
export const EDGE_REQUESTED_AT = "2026-01-01T00:00:00.000000000Z";

/** A Receiver's spec as the real parser reads it from what a manifest would say. */
export function receiverSpec(namespace: string, name: string, spec: Record<string, unknown>): ReceiverSpec {
  const read = readReceiver({ metadata: { name, namespace }, spec });
  if (!read?.spec) throw new Error(`not a Receiver spec: ${JSON.stringify(spec)}`);
  return read.spec;
}

/** The index entry a Ready Receiver `namespace/name` of `spec` has, served at `path` with `token`. */
export function servingEntry(
  namespace: string,
  name: string,
  spec: ReceiverSpec,
  token: string,
  path = `/hook/${name}`,
): ReceiverEntry {
  const prepared = prepareReceiver(spec);
  if (!prepared.ok) throw new Error(prepared.message);
  return {
    key: { namespace, name },
    generation: 1,
    path,
    secret: { token: Buffer.from(token) },
    spec,
    compiled: prepared.compiled,
    unavailable: undefined,
  };
}

/** A target port that annotates every object (and records it) and lists none. */
export function annotatingPort(): Pick<KubePort, "annotateObject" | "listObjects" | "getObject"> & {
  readonly annotated: string[];
} {
  const annotated: string[] = [];
  return {
    annotated,
    annotateObject: async (ref) => {
      annotated.push(`${ref.kind} ${ref.namespace}/${ref.name}`);
      return { ok: true, value: undefined };
    },
    listObjects: async () => ({ ok: true, value: [] }),
    getObject: async (ref) => ({
      ok: true,
      value: { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
    }),
  };
}

/** Guards that refuse nothing but what their concurrency cap does. */
const OPEN_GUARDS: GuardConfig = {
  valid: { rate: 0, burst: 0 },
  failed: { rate: 0, burst: 0 },
  maxConcurrent: 16,
  replayWindowMs: 0,
};

export interface EdgeApp {
  readonly app: ReturnType<typeof createApp>;
  readonly guards: DeliveryGuards;
  /** Every delivery's report, in order. */
  readonly reports: DeliveryReport[];
  /** The answer to `request` (its URL's host of 4 characters or more), routed as Bun's router routes it. */
  handle(request: Request): Promise<Response>;
  stop(): void;
  [Symbol.dispose](): void;
}

/**
 * The app over `entries`; `guards` over OPEN_GUARDS, the target port annotatingPort()'s unless
 * `deps.kube` says, anything else of AppDeps as given.
 */
export function edgeApp(
  entries: readonly ReceiverEntry[],
  options: { readonly guards?: Partial<GuardConfig> } & Partial<Omit<AppDeps, "index" | "guards">> = {},
): EdgeApp {
  const { guards: guardConfig, ...deps } = options;
  const index = new ReceiverIndex();
  for (const entry of entries) index.set(entry);
  const guards = new DeliveryGuards({ ...OPEN_GUARDS, ...guardConfig });
  const reports: DeliveryReport[] = [];
  const app = createApp({
    kube: annotatingPort(),
    clock: () => EDGE_REQUESTED_AT,
    coalesce: createCoalescer(),
    noCrossNamespaceRefs: false,
    auth: createAuthServices(),
    log: silentLogger,
    ...deps,
    index,
    guards,
    onDelivery: (report) => {
      reports.push(report);
      deps.onDelivery?.(report);
    },
  });
  const edge: EdgeApp = {
    app,
    guards,
    reports,
    handle: (request) => {
      // Elysia's own router (handle's) reads the path at an offset past the scheme and a host of
      // 4 characters or more; a shorter host is a 404 here, not through Bun's router (paths.test.ts).
      if (new URL(request.url).host.length < MIN_HOST_CHARS)
        throw new Error(`edgeApp: give a host of ${MIN_HOST_CHARS} characters or more (${request.url})`);
      return app.handle(routed(request));
    },
    stop: () => guards.stop(),
    [Symbol.dispose]: () => edge.stop(),
  };
  return edge;
}
