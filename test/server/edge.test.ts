/**
 * The HTTP edge as one table, through the app's `handle(new Request(...))` (test/support/edge.ts):
 * no socket, no cluster. Each row is one step of the order of checks (delivery/delivery.ts), with the answer
 * and the named outcome (outcome/outcomes.ts) that metrics, Events, logs and /deliveries read.
 */
import { describe, expect, test } from "bun:test";
import { encodeStatusQuery, statusQueryKey, STATUS_QUERY_NO_CLUSTER } from "../../shared";
import type { ReceiverSpec } from "../../server/api/receiver";
import type { GuardConfig } from "../../server/delivery/protect/guards";
import { OUTCOMES, type OutcomeKind } from "../../server/outcome/outcomes";
import type { KubePort } from "../../server/kube/port";
import { createLogger } from "../../server/runtime/log";
import type { ReceiverEntry } from "../../server/receivers/index";
import { edgeApp, receiverSpec, servingEntry } from "../support/edge";
import { GIT } from "../support/kinds";
import { signature } from "../support/signer";

const TOKEN = "edge-token";

/** A spec read by the real parser from what a manifest would say. */
function spec(over: { resourceFilter?: string; suspend?: boolean; names?: string[] } = {}): ReceiverSpec {
  const { names = ["app"], ...rest } = over;
  return receiverSpec("edge", "r", {
    type: "github",
    secretRef: { name: "token" },
    resources: names.map((name) => ({ apiVersion: GIT, kind: "GitRepository", name })),
    ...rest,
  });
}

const serving = (name: string, s: ReceiverSpec) => servingEntry("edge", name, s, TOKEN);

/** A target port where `broken` cannot be patched and everything else can. */
const kube: Pick<KubePort, "annotateObject" | "listObjects" | "getObject"> = {
  annotateObject: async (ref) =>
    ref.name === "broken"
      ? { ok: false, reason: "GitRepository edge/broken: Kubernetes API answered 403" }
      : { ok: true, value: undefined },
  listObjects: async () => ({ ok: true, value: [] }),
  getObject: async (ref) => ({
    ok: true,
    value: { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
  }),
};

function edge(
  guardConfig: Partial<GuardConfig>,
  bodyTimeoutMs = 5_000,
  more: {
    statusReader?: Pick<KubePort, "observeObject" | "observeObjects">;
    log?: ReturnType<typeof createLogger>;
  } = {},
) {
  return edgeApp(
    [
      serving("ready", spec()),
      { ...serving("suspended", spec({ suspend: true })), unavailable: "receiver is suspended" } as ReceiverEntry,
      serving("filtered", spec({ resourceFilter: "req.ref == 'main'" })),
      serving("partly-broken", spec({ names: ["app", "broken"] })),
      serving("skipping", spec({ resourceFilter: "false" })),
    ],
    { guards: guardConfig, kube, bodyTimeoutMs, maxBodyBytes: 1024, ...more },
  );
}

interface Send {
  readonly method?: string;
  readonly path?: string;
  readonly body?: string;
  readonly id?: string;
  readonly signedWith?: string;
  /** A body that never finishes arriving. */
  readonly stalled?: true;
}

function request({
  method = "POST",
  path = "/hook/ready",
  body = '{"ref":"main"}',
  id,
  signedWith = TOKEN,
  stalled,
}: Send) {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-github-event": "push",
    "x-hub-signature-256": signature(signedWith, body),
  };
  if (id) headers["x-github-delivery"] = id;
  if (stalled)
    return new Request(`http://edge${path}`, {
      method,
      headers,
      body: new ReadableStream({ pull: () => new Promise(() => {}) }),
      duplex: "half",
    } as RequestInit);
  return new Request(`http://edge${path}`, { method, headers, ...(method === "GET" ? {} : { body }) });
}

const ok = { id: "a" };

describe("the HTTP edge, in Flux's order of checks", () => {
  test.each<{
    name: string;
    guards?: Partial<GuardConfig>;
    bodyTimeoutMs?: number;
    before?: Send[];
    send: Send;
    status: number;
    kind: OutcomeKind;
    reason: string | RegExp;
  }>([
    {
      name: "a GET",
      send: { method: "GET" },
      status: 405,
      kind: "method-not-allowed",
      reason: /method GET is not allowed/,
    },
    {
      name: "an unknown path",
      send: { path: "/hook/nobody" },
      status: 404,
      kind: "unknown-path",
      reason: "no receiver at this path",
    },
    {
      name: "an unknown path with a body over the cap is still a 404",
      send: { path: "/hook/nobody", body: "x".repeat(2048) },
      status: 404,
      kind: "unknown-path",
      reason: "no receiver at this path",
    },
    {
      name: "a declared body over the cap",
      send: { body: "x".repeat(2048) },
      status: 413,
      kind: "too-large",
      reason: "request body is larger than 1024 bytes",
    },
    {
      name: "a suspended Receiver",
      send: { path: "/hook/suspended" },
      status: 503,
      kind: "unavailable",
      reason: "receiver is suspended",
    },
    {
      name: "no slot left",
      guards: { maxConcurrent: 0 },
      send: ok,
      status: 429,
      kind: "too-many",
      reason: "too many deliveries in flight; retry later",
    },
    {
      name: "a body that does not arrive in time",
      bodyTimeoutMs: 20,
      send: { stalled: true },
      status: 408,
      kind: "too-slow",
      reason: "request body not received within 0 s",
    },
    { name: "a bad signature", send: { signedWith: "wrong" }, status: 400, kind: "rejected", reason: /signature/ },
    {
      name: "a bad signature past the failure budget",
      guards: { failed: { rate: 0.001, burst: 1 } },
      before: [{ signedWith: "wrong" }],
      send: { signedWith: "wrong" },
      status: 429,
      kind: "too-many",
      reason: /too many failed deliveries for this receiver/,
    },
    {
      name: "a delivery id already handled, with the same body",
      before: [ok],
      send: { ...ok },
      status: 200,
      kind: "duplicate",
      reason: 'duplicate delivery "a": already handled, nothing annotated',
    },
    {
      name: "the same signed body within the replay window",
      guards: { replayWindowMs: 60_000 },
      before: [ok],
      send: { id: "b" },
      status: 409,
      kind: "replayed",
      reason: "this signed body was already delivered within the replay window",
    },
    {
      name: "valid deliveries past the rate limit",
      guards: { valid: { rate: 0.001, burst: 1 } },
      before: [ok],
      send: { id: "b", body: '{"ref":"main","n":2}' },
      status: 429,
      kind: "too-many",
      reason: "too many deliveries for this receiver; retry later",
    },
    {
      name: "a filter that cannot read the body",
      send: { path: "/hook/filtered", body: "[1]" },
      status: 500,
      kind: "failed",
      reason: /cannot unmarshal array into a JSON object/,
    },
    {
      name: "a target that cannot be patched",
      send: { path: "/hook/partly-broken" },
      status: 500,
      kind: "failed",
      reason: "1 target failed; 1 of 2 targets annotated",
    },
    {
      name: "filters that skip every target",
      send: { path: "/hook/skipping" },
      status: 200,
      kind: "nothing-annotated",
      reason: "0 of 1 target annotated",
    },
    { name: "a valid delivery", send: ok, status: 200, kind: "accepted", reason: "1 of 1 target annotated" },
  ])("$name: $status", async (c) => {
    const { handle, reports, guards } = edge(c.guards ?? {}, c.bodyTimeoutMs);
    for (const s of c.before ?? []) await handle(request(s));
    const res = await handle(request(c.send));
    const body = (await res.json()) as { status: number; reason: string };
    expect(res.status).toBe(c.status);
    expect(body.status).toBe(c.status);
    if (typeof c.reason === "string") expect(body.reason).toBe(c.reason);
    else expect(body.reason).toMatch(c.reason);
    const outcome = reports.at(-1)!.outcome;
    expect({ kind: outcome.kind, status: OUTCOMES[outcome.kind].status as number }).toEqual({
      kind: c.kind,
      status: c.status,
    });
    if (c.status === 429) expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    if (c.status === 405) expect(res.headers.get("allow")).toBe("POST");
    guards.stop();
  });

  test("every outcome has a metric label, and the 408 and 409 ones their own", () => {
    const labels = Object.fromEntries(Object.entries(OUTCOMES).map(([k, v]) => [k, v.metric]));
    expect([labels["too-slow"], labels.replayed]).toEqual(["too_slow", "replayed"]);
    for (const v of Object.values(OUTCOMES)) expect(v.metric).toMatch(/^[a-z_]+$/);
  });
});

describe("methods: a hook and its status query take POST only", () => {
  const METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
  const ROUTES = [
    { path: "/hook/ready", takes: "receivers take POST" },
    { path: "/hook/nobody", takes: "receivers take POST" },
    { path: "/hook/ready/status", takes: "status queries take POST" },
    { path: "/hook/nobody/status", takes: "status queries take POST" },
  ];

  // Before any lookup, as Flux answers: a path with no Receiver is 405 too.
  test.each(ROUTES.flatMap(({ path, takes }) => METHODS.map((method) => ({ method, path, takes }))))(
    "$method $path: 405, Allow: POST",
    async ({ method, path, takes }) => {
      using e = edge({});
      const res = await e.handle(new Request(`http://edge${path}`, { method }));
      expect({ status: res.status, allow: res.headers.get("allow") }).toEqual({ status: 405, allow: "POST" });
      if (method === "HEAD") expect(await res.text()).toBe("");
      else expect(await res.json()).toEqual({ status: 405, reason: `method ${method} is not allowed: ${takes}` });
      expect(e.reports.map((r) => r.outcome.kind)).toEqual(path.endsWith("/status") ? [] : ["method-not-allowed"]);
    },
  );

  test.each(ROUTES)("a method no route is registered for (TRACE) at $path: 404", async ({ path }) => {
    using e = edge({});
    const res = await e.handle(new Request(`http://edge${path}`, { method: "TRACE" }));
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 404,
      body: { status: 404, reason: "no receiver at this path" },
    });
  });
});

describe("a status query goes through the same admission, with the same outcomes", () => {
  const cluster: Pick<KubePort, "observeObject" | "observeObjects"> = {
    observeObject: async (ref) => ({
      ok: true,
      value: { kind: ref.kind, namespace: ref.namespace, name: ref.name, labels: {}, sourceRefs: [] },
    }),
    observeObjects: async () => ({ ok: true, value: { items: [], truncated: false } }),
  };
  const queryBody = encodeStatusQuery({
    targets: [{ kind: "GitRepository", namespace: "edge", name: "app", requestedAt: "x" }],
  });
  const query = (over: { method?: string; path?: string; body?: string; key?: string | Buffer } = {}) => {
    const body = over.body ?? queryBody;
    return new Request(`http://edge${over.path ?? "/hook/ready"}/status`, {
      method: over.method ?? "POST",
      headers: {
        "content-type": "application/json",
        "x-hub-signature-256": signature(over.key ?? statusQueryKey(TOKEN), body),
      },
      ...(over.method === "GET" ? {} : { body }),
    });
  };

  test.each<{
    name: string;
    guards?: Partial<GuardConfig>;
    noCluster?: true;
    before?: Parameters<typeof query>[0][];
    send: Parameters<typeof query>[0];
    kind: OutcomeKind;
    reason: string | RegExp;
    level: string;
  }>([
    {
      name: "a GET",
      send: { method: "GET" },
      kind: "method-not-allowed",
      reason: /status queries take POST/,
      level: "debug",
    },
    {
      name: "an unknown path",
      send: { path: "/hook/nobody" },
      kind: "unknown-path",
      reason: "no receiver at this path",
      level: "debug",
    },
    {
      name: "a declared body over the cap",
      send: { body: "x".repeat(200_000) },
      kind: "too-large",
      reason: /larger than/,
      level: "error",
    },
    {
      name: "a suspended Receiver",
      send: { path: "/hook/suspended" },
      kind: "unavailable",
      reason: "receiver is suspended",
      level: "error",
    },
    {
      name: "no cluster to read",
      noCluster: true,
      send: {},
      kind: "unavailable",
      reason: STATUS_QUERY_NO_CLUSTER,
      level: "error",
    },
    {
      name: "no slot left",
      guards: { maxConcurrent: 0 },
      send: {},
      kind: "too-many",
      reason: /in flight/,
      level: "debug",
    },
    {
      name: "a bad signature",
      send: { key: TOKEN },
      kind: "unauthenticated",
      reason: /signature mismatch/,
      level: "error",
    },
    {
      name: "a bad signature past the failure budget",
      guards: { failed: { rate: 0.001, burst: 1 } },
      before: [{ key: TOKEN }],
      send: { key: TOKEN },
      kind: "too-many",
      reason: /too many failed deliveries for this receiver/,
      level: "debug",
    },
    { name: "a query", send: {}, kind: "answered", reason: "0 of 1 target handled the request", level: "debug" },
  ])("$name", async (c) => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: "debug", encoding: "json", write: (line) => lines.push(JSON.parse(line)) });
    const { handle, reports, guards } = edge(c.guards ?? {}, 5_000, {
      statusReader: c.noCluster ? undefined : cluster,
      log,
    });
    for (const s of c.before ?? []) await handle(query(s));
    const res = await handle(query(c.send));
    const body = (await res.json()) as { status: number; reason: string };
    const status = OUTCOMES[c.kind].status as number;
    expect({ status: res.status, body: body.status }).toEqual({ status, body: status });
    if (typeof c.reason === "string") expect(body.reason).toBe(c.reason);
    else expect(body.reason).toMatch(c.reason);
    // Logged at the table's level; never counted, listed or turned into an Event as a delivery.
    expect(lines.at(-1)).toMatchObject({ level: c.level, status, msg: expect.stringMatching(/^status query /) });
    expect(reports).toEqual([]);
    if (status === 429) expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    guards.stop();
  });
});
