/**
 * The status query (shared/status-query.ts, server/delivery/status-query.ts), through real HTTP
 * against the API test server: the 200 of a delivery names each target's requestedAt; the query
 * with those values reports what Flux's controllers (a stand-in here, writing status as they do)
 * made of it; authentication is the delivery's own for each type; nothing is read from the
 * cluster for a query that fails authentication or names an object that is not the Receiver's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  encodeStatusQuery,
  statusQueryKey,
  statusQueryPath,
  statusQueryTokenHeader,
  webhookPath,
  type QueriedTarget,
} from "../../shared";
import {
  MAX_CONDITION_MESSAGE_CHARS,
  MAX_STATUS_ANSWER_CONSUMERS,
  MAX_STATUS_QUERY_BYTES,
  MAX_STATUS_QUERY_TARGETS,
} from "../../server/limits";
import { rfc3339Nanos } from "../../server/delivery/status-query";
import { githubExample } from "../support/payloads";
import { startStack, TEST_CONFIG, type Stack } from "../support/stack";
import { waitForQueries } from "../support/wait";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { GIT, HR, KS } from "../support/kinds";
import { githubHeaders, signature } from "../support/signer";

const NS = "status";
const TOKEN = "status-query-token";
/** Put in specs: an answer must never carry it. */
const SPEC_MARKER = "spec-value-that-must-not-leak";

let stack: Stack;

let issuer: TokenIssuer;

const ready = (status: "True" | "False", reason: string, message: string) => ({
  type: "Ready",
  status,
  reason,
  message,
  lastTransitionTime: new Date().toISOString(),
});

/** What source-controller does on a new requestedAt: handle it and store a new artifact. */
function sourceHandles(
  name: string,
  revision: string,
  requestedAt = stack.requestedAt(GIT, "GitRepository", NS, name),
) {
  stack.api.store.patch(
    GIT,
    "GitRepository",
    NS,
    name,
    {
      status: {
        lastHandledReconcileAt: requestedAt,
        artifact: { revision, digest: "sha256:0", path: "x", url: "http://x" },
        conditions: [ready("True", "Succeeded", `stored artifact for revision '${revision}'`)],
      },
    },
    { subresource: "status" },
  );
}

function consumer(apiVersion: string, kind: string, namespace: string, name: string, spec: Record<string, unknown>) {
  stack.api.store.create({
    apiVersion,
    kind,
    metadata: { name, namespace },
    spec: { ...spec, postBuild: { substitute: { secret: SPEC_MARKER } } },
    status: {},
  });
}

function consumerStatus(apiVersion: string, kind: string, name: string, status: Record<string, unknown>) {
  stack.api.store.patch(apiVersion, kind, NS, name, { status }, { subresource: "status" });
}

const githubPath = (name: string) => webhookPath(TOKEN, name, NS);

async function deliver(name: string) {
  const body = githubExample("push");
  const res = await stack.post(githubPath(name), {
    headers: githubHeaders(TOKEN, body, { delivery: crypto.randomUUID() }),
    body,
  });
  expect(res.status).toBe(200);
  return res.body.targets as (QueriedTarget & { outcome: string })[];
}

function query(path: string, targets: readonly QueriedTarget[], headers: (body: string) => Record<string, string>) {
  const body = encodeStatusQuery({ targets });
  return stack.post(statusQueryPath(path)!, {
    headers: { "Content-Type": "application/json", ...headers(body) },
    body,
  });
}

/** A query is signed as a delivery is, with the query key in place of the token. */
const signed = (body: string) => ({ "X-Hub-Signature-256": signature(statusQueryKey(TOKEN), body) });
const githubQuery = (name: string, targets: readonly QueriedTarget[]) => query(githubPath(name), targets, signed);

/** Reads fluxhook sent to the API server while `run` ran, other than its watches (an earlier delivery's Event may still be written). */
async function apiRequestsDuring(run: () => Promise<unknown>) {
  const before = stack.api.requests.length;
  await run();
  return stack.api.requests.slice(before).filter((r) => !r.watch && r.method === "GET");
}

beforeAll(async () => {
  issuer = await startTokenIssuer();
  stack = await startStack({ limits: { ...TEST_CONFIG.limits, failedBurst: 3, failedRate: 0.001 } });
  stack.secret(NS, "token", { token: TOKEN });
  for (const name of ["app", "infra", "other"]) stack.target(GIT, "GitRepository", NS, name);
  stack.target(GIT, "GitRepository", NS, "labelled", { team: "web" });
  stack.target(GIT, "GitRepository", NS, "unlabelled", { team: "db" });
  consumer(KS, "Kustomization", NS, "apps", { sourceRef: { kind: "GitRepository", name: "app" }, path: "./apps" });
  consumer(KS, "Kustomization", NS, "unrelated", { sourceRef: { kind: "GitRepository", name: "other" } });
  consumer(HR, "HelmRelease", NS, "chart", {
    chart: { spec: { chart: "./chart", sourceRef: { kind: "GitRepository", name: "app", namespace: NS } } },
  });
  // In another namespace: not listed (a query sees the source's namespace only).
  consumer(KS, "Kustomization", "elsewhere", "tenant", {
    sourceRef: { kind: "GitRepository", name: "app", namespace: NS },
  });
  const github = (resources: unknown[]) => ({
    type: "github",
    events: ["push"],
    secretRef: { name: "token" },
    resources,
  });
  stack.receiver(NS, "push", github([{ kind: "GitRepository", name: "app" }]));
  stack.receiver(
    NS,
    "two",
    github([
      { kind: "GitRepository", name: "app" },
      { kind: "GitRepository", name: "infra" },
    ]),
  );
  stack.receiver(NS, "budget", github([{ kind: "GitRepository", name: "app" }]));
  stack.receiver(NS, "domains", github([{ kind: "GitRepository", name: "app" }]));
  stack.receiver(NS, "selector", github([{ kind: "GitRepository", name: "*", matchLabels: { team: "web" } }]));
  stack.receiver(NS, "url-only", {
    type: "generic",
    secretRef: { name: "token" },
    resources: [{ kind: "GitRepository", name: "app" }],
  });
  stack.receiver(NS, "gitlab", {
    type: "gitlab",
    secretRef: { name: "token" },
    resources: [{ kind: "GitRepository", name: "app" }],
  });
  stack.receiver(NS, "harbor", {
    type: "harbor",
    secretRef: { name: "token" },
    resources: [{ kind: "GitRepository", name: "app" }],
  });
  stack.receiver(NS, "oidc", {
    type: "generic-oidc",
    oidcProviders: [
      {
        issuerURL: issuer.url,
        audience: "flux",
        validations: [{ expression: "claims.repository == 'org/repo'", message: "wrong repository" }],
      },
    ],
    resources: [{ kind: "GitRepository", name: "app" }],
  });
  // Receivers for the refusals, each with a failure budget of its own.
  const refusals = ["refusals-0", "refusals-1", "refusals-2", "refusals-3", "refusals-4", "refusals-5", "refusals-6"];
  for (const name of refusals) stack.receiver(NS, name, github([{ kind: "GitRepository", name: "app" }]));
  for (const name of [
    "push",
    "two",
    "budget",
    "domains",
    "selector",
    "url-only",
    "gitlab",
    "harbor",
    "oidc",
    ...refusals,
  ])
    await stack.readyPath(NS, name);
});
afterAll(async () => {
  await stack.stop();
  await issuer.stop();
});

describe("the delivery's 200 names what it wrote", () => {
  test("each annotated target with the requestedAt value now on the object", async () => {
    const targets = await deliver("two");
    expect(targets).toEqual([
      { kind: "GitRepository", namespace: NS, name: "app", outcome: "annotated", requestedAt: expect.any(String) },
      { kind: "GitRepository", namespace: NS, name: "infra", outcome: "annotated", requestedAt: expect.any(String) },
    ]);
    for (const t of targets) expect(stack.requestedAt(GIT, "GitRepository", NS, t.name)).toBe(t.requestedAt);
  });
});

describe("the status query", () => {
  test("before the controller handled it: not handled; then handled, Ready, the revision and the consumers", async () => {
    const targets = await deliver("push");
    const before = await githubQuery("push", targets);
    expect(before.status).toBe(200);
    expect(before.body.targets[0]).toMatchObject({ name: "app", found: true, handled: false });

    sourceHandles("app", "main@sha1:1111");
    consumerStatus(KS, "Kustomization", "apps", {
      lastAppliedRevision: "main@sha1:1111",
      conditions: [ready("True", "ReconciliationSucceeded", "Applied revision: main@sha1:1111")],
    });
    consumerStatus(HR, "HelmRelease", "chart", {
      lastAttemptedRevision: "0.2.0",
      history: [{ chartVersion: "0.1.0", status: "deployed" }],
      conditions: [ready("False", "InstallFailed", "Helm install failed for release status/chart")],
    });
    // Consumer lists serve the queries of an interval (STATUS_LIST_TTL_MS): the next poll sees them.
    const after = await waitForQueries("the consumers' new status", async () => {
      const res = await githubQuery("push", targets);
      return res.body.targets?.[0]?.consumers?.[0]?.appliedRevision ? res : undefined;
    });
    expect(after.status).toBe(200);
    expect(after.body).toEqual({
      status: 200,
      reason: "1 of 1 target handled the request",
      targets: [
        {
          kind: "GitRepository",
          namespace: NS,
          name: "app",
          requestedAt: targets[0]!.requestedAt,
          found: true,
          handled: true,
          lastHandledReconcileAt: targets[0]!.requestedAt,
          ready: { status: "True", reason: "Succeeded", message: "stored artifact for revision 'main@sha1:1111'" },
          revision: "main@sha1:1111",
          consumers: [
            {
              kind: "Kustomization",
              namespace: NS,
              name: "apps",
              appliedRevision: "main@sha1:1111",
              ready: { status: "True", reason: "ReconciliationSucceeded", message: "Applied revision: main@sha1:1111" },
            },
            {
              kind: "HelmRelease",
              namespace: NS,
              name: "chart",
              appliedRevision: "0.1.0",
              attemptedRevision: "0.2.0",
              ready: {
                status: "False",
                reason: "InstallFailed",
                message: "Helm install failed for release status/chart",
              },
            },
          ],
          complete: true,
        },
      ],
    });
    expect(JSON.stringify(after.body)).not.toContain(SPEC_MARKER);
  });

  test("a later request that replaced ours and was handled counts as handled; an older one does not", async () => {
    const [first] = await deliver("push");
    const [second] = await deliver("push");
    expect(second!.requestedAt > first!.requestedAt).toBe(true);
    sourceHandles("app", "main@sha1:2222", second!.requestedAt);
    const res = await githubQuery("push", [first!]);
    expect(res.body.targets[0]).toMatchObject({ handled: true, lastHandledReconcileAt: second!.requestedAt });
    // A requestedAt later than the one handled is not handled.
    const later = { ...second!, requestedAt: "2999-01-01T00:00:00.000000000Z" };
    expect((await githubQuery("push", [later])).body.targets[0].handled).toBe(false);
  });

  test("a bad signature is refused without reading the cluster, and spends the failure budget", async () => {
    const [target] = await deliver("budget");
    const refusals: number[] = [];
    const requests = await apiRequestsDuring(async () => {
      for (let i = 0; i < 4; i++)
        refusals.push(
          (
            await query(githubPath("budget"), [target!], (b) => ({
              "X-Hub-Signature-256": signature("wrong", b),
            }))
          ).status,
        );
    });
    expect(requests).toEqual([]);
    // Burst 3: the fourth forgery meets 429.
    expect(refusals).toEqual([401, 401, 401, 429]);
    const unsigned = await stack.post(statusQueryPath(githubPath("push"))!, {
      headers: { "Content-Type": "application/json" },
      body: encodeStatusQuery({ targets: [target!] }),
    });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.reason).toContain("X-Hub-Signature-256");
  });

  test("a delivery's signature is no query's: a query signed with the token itself is refused", async () => {
    const [target] = await deliver("domains");
    const refused = await query(githubPath("domains"), [target!], (body) => ({
      "X-Hub-Signature-256": signature(TOKEN, body),
    }));
    expect({ status: refused.status, reason: refused.body.reason }).toEqual({
      status: 401,
      reason: "signature mismatch (X-Hub-Signature-256)",
    });
    expect((await githubQuery("domains", [target!])).status).toBe(200);
  });

  test("a query's signature is no delivery's: a captured query posted as a delivery is refused", async () => {
    const [target] = await deliver("domains");
    const before = stack.requestedAt(GIT, "GitRepository", NS, "app");
    const body = encodeStatusQuery({ targets: [target!] });
    const res = await stack.post(githubPath("domains"), {
      headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", ...signed(body) },
      body,
    });
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 400,
      reason: "signature mismatch (X-Hub-Signature-256)",
    });
    expect(stack.requestedAt(GIT, "GitRepository", NS, "app")).toBe(before);
  });

  test("the signature covers the body: a signed query with other targets is refused", async () => {
    const [target] = await deliver("push");
    const signedBody = encodeStatusQuery({ targets: [target!] });
    const res = await stack.post(statusQueryPath(githubPath("push"))!, {
      headers: { "Content-Type": "application/json", ...signed(signedBody) },
      body: encodeStatusQuery({ targets: [{ ...target!, name: "infra" }] }),
    });
    expect(res.status).toBe(401);
  });

  // Each refusal spends its Receiver's failure budget (a burst of 3 here): one Receiver per case.
  test.each([
    {
      name: "an object the Receiver does not name",
      target: "other",
      receiver: "refusals-0",
      reason: "is not one of this Receiver's resources",
    },
    {
      name: "a name in another namespace",
      target: "app",
      namespace: "elsewhere",
      receiver: "refusals-1",
      reason: "is outside this Receiver's namespace",
    },
    {
      name: "another kind with the same name",
      target: "app",
      kind: "OCIRepository",
      receiver: "refusals-2",
      reason: "is not one of this Receiver's resources",
    },
  ])("refuses $name, reading nothing", async ({ target, namespace, kind, receiver, reason }) => {
    let res: Awaited<ReturnType<typeof githubQuery>> | undefined;
    const requests = await apiRequestsDuring(async () => {
      res = await githubQuery(receiver, [
        {
          kind: kind ?? "GitRepository",
          namespace: namespace ?? NS,
          name: target,
          requestedAt: "2026-01-01T00:00:00Z",
        },
      ]);
    });
    expect(res!.status).toBe(403);
    expect(res!.body.reason).toContain(reason);
    expect(requests).toEqual([]);
  });

  test("a target selected by labels is answered; one whose labels do not match is refused", async () => {
    const targets = await deliver("selector");
    expect(targets.map((t) => t.name)).toEqual(["labelled"]);
    expect((await githubQuery("selector", targets)).status).toBe(200);
    const res = await githubQuery("selector", [{ ...targets[0]!, name: "unlabelled" }]);
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).not.toContain("lastHandledReconcileAt");
  });

  test("a deleted target is reported as not found", async () => {
    const infra: QueriedTarget = { kind: "GitRepository", namespace: NS, name: "infra", requestedAt: "x" };
    expect((await githubQuery("two", [infra])).body.targets[0]).toMatchObject({ found: true });
    stack.api.store.delete(GIT, "GitRepository", NS, "infra");
    const gone = await githubQuery("two", [infra]);
    stack.target(GIT, "GitRepository", NS, "infra");
    expect(gone.body.targets[0]).toEqual({ ...infra, found: false, handled: false });
  });

  test("an answer is bounded: consumers past the cap are flagged, long messages cut", async () => {
    stack.target(GIT, "GitRepository", NS, "popular");
    for (let i = 0; i <= MAX_STATUS_ANSWER_CONSUMERS; i++)
      consumer(KS, "Kustomization", NS, `popular-${String(i).padStart(3, "0")}`, {
        sourceRef: { kind: "GitRepository", name: "popular" },
      });
    stack.api.store.patch(
      KS,
      "Kustomization",
      NS,
      "popular-000",
      { status: { conditions: [ready("False", "BuildFailed", "x".repeat(10_000))] } },
      { subresource: "status" },
    );
    const path = await stack.readyReceiver(NS, "popular", {
      type: "generic",
      token: TOKEN,
      secretName: "token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "popular" }],
    });
    // The namespace's Kustomizations may have been listed for another query in this interval.
    const res = await waitForQueries("the new consumers to be listed", async () => {
      const r = await query(
        path,
        [{ kind: "GitRepository", namespace: NS, name: "popular", requestedAt: "x" }],
        () => ({}),
      );
      return r.body.targets?.[0]?.consumers?.length ? r : undefined;
    });
    const [t] = res.body.targets;
    expect(t.consumers.length).toBe(MAX_STATUS_ANSWER_CONSUMERS);
    expect(t.consumersTruncated).toBe(true);
    expect(t.complete).toBeUndefined();
    expect(t.consumers[0].ready.message).toBe(`${"x".repeat(MAX_CONDITION_MESSAGE_CHARS)}…`);
  });

  test("consumers are read from every page of the namespace's list (a consumer on the second page)", async () => {
    const ns = "status-paged";
    // More than a page (LIST_PAGE_SIZE) of other Kustomizations, then the consumer, last in name order.
    for (let i = 0; i < 120; i++)
      consumer(KS, "Kustomization", ns, `crowd-${String(i).padStart(3, "0")}`, {
        sourceRef: { kind: "GitRepository", name: "elsewhere" },
      });
    consumer(KS, "Kustomization", ns, "zz-uses-app", { sourceRef: { kind: "GitRepository", name: "app" } });
    const path = await stack.readyReceiver(ns, "paged", {
      type: "generic",
      token: TOKEN,
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const res = await query(
      path,
      [{ kind: "GitRepository", namespace: ns, name: "app", requestedAt: "x" }],
      () => ({}),
    );
    expect(res.body.targets[0].consumers.map((c: { name: string }) => c.name)).toEqual(["zz-uses-app"]);
  });

  describe("each type authenticates as its deliveries do", () => {
    const app = (requestedAt = "2026-01-01T00:00:00Z"): QueriedTarget[] => [
      { kind: "GitRepository", namespace: NS, name: "app", requestedAt },
    ];
    test("generic: the URL alone", async () => {
      expect((await query(webhookPath(TOKEN, "url-only", NS), app(), () => ({}))).status).toBe(200);
    });
    // The token's own header, carrying the query's HMAC under the query key: the token itself,
    // which a delivery carries, is no query's credential, and a query's is no delivery's.
    test.each([
      { type: "gitlab", header: "X-Gitlab-Token" },
      { type: "harbor", header: "Authorization" },
    ])("$type: the query's HMAC in $header, never the token", async ({ type, header }) => {
      const path = webhookPath(TOKEN, type, NS);
      const sent = (value: (body: string) => string) => query(path, app(), (body) => ({ [header]: value(body) }));
      expect((await sent((body) => statusQueryTokenHeader(TOKEN, body))).status).toBe(200);
      // Two refusals here (the failure budget's burst is 3); the query-auth unit test has the rest.
      for (const [value, reason] of [
        [() => TOKEN, "malformed signature header"],
        [(body: string) => signature(TOKEN, body), "signature mismatch"],
      ] as const) {
        const refused = await sent(value);
        expect({ status: refused.status, reason: refused.body.reason }).toEqual({
          status: 401,
          reason: `${reason} (${header})`,
        });
      }
      // A query answers for its own body only: the same header over other targets is refused.
      const other = await query(path, app("2026-01-02T00:00:00Z"), () => ({
        [header]: statusQueryTokenHeader(TOKEN, encodeStatusQuery({ targets: app() })),
      }));
      expect(other.status).toBe(401);
    });
    test("generic-oidc: a bearer token the Receiver's validations accept", async () => {
      const path = webhookPath("", "oidc", NS);
      const token = (repository: string) => issuer.sign({ iss: issuer.url, aud: "flux", sub: "s", repository });
      const good = `Bearer ${await token("org/repo")}`;
      const bad = `Bearer ${await token("org/other")}`;
      expect((await query(path, app(), () => ({ Authorization: good }))).status).toBe(200);
      const refused = await query(path, app(), () => ({ Authorization: bad }));
      expect(refused.status).toBe(401);
      expect(refused.body.reason).toContain("wrong repository");
    });
  });

  test.each([
    { name: "not JSON", receiver: "refusals-3", body: "{", status: 400, reason: "not JSON" },
    { name: "no targets", receiver: "refusals-4", body: '{"targets":[]}', status: 400, reason: "non-empty" },
    {
      name: "a target with a missing field",
      receiver: "refusals-5",
      body: '{"targets":[{"kind":"GitRepository","namespace":"status","name":"app"}]}',
      status: 400,
      reason: "targets[0].requestedAt",
    },
    {
      name: "more targets than the bound",
      receiver: "refusals-6",
      body: encodeStatusQuery({
        targets: Array.from({ length: MAX_STATUS_QUERY_TARGETS + 1 }, () => ({
          kind: "GitRepository",
          namespace: NS,
          name: "app",
          requestedAt: "x",
        })),
      }),
      status: 400,
      reason: `at most ${MAX_STATUS_QUERY_TARGETS}`,
    },
    {
      name: "a body over the cap",
      receiver: "refusals-0",
      body: "x".repeat(MAX_STATUS_QUERY_BYTES + 1),
      status: 413,
      reason: "larger than",
    },
  ])("refuses $name", async ({ receiver, body, status, reason }) => {
    const res = await stack.post(statusQueryPath(githubPath(receiver))!, {
      headers: { "Content-Type": "application/json", ...signed(body) },
      body,
    });
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status,
      reason: expect.stringContaining(reason),
    });
  });

  test("GET is 405, an unknown hook is 404", async () => {
    const get = await stack.post(statusQueryPath(githubPath("push"))!, { method: "GET" });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await stack.post(statusQueryPath(webhookPath("x", "y", "z"))!, { body: "{}" })).status).toBe(404);
  });
});

describe("rfc3339Nanos: which requestedAt is later", () => {
  test.each([
    ["2026-12-01T00:00:00.123400001Z", "2026-12-01T00:00:00.1234Z", -1],
    ["2026-12-01T00:00:00.1234Z", "2026-12-01T00:00:00.123400000Z", 0],
    ["2026-12-01T01:00:00.5+01:00", "2026-12-01T00:00:00.500000001Z", 1],
    ["2026-12-01T00:00:00Z", "2026-12-01T00:00:00.000000001Z", 1],
  ])("%s vs %s", (a, b, sign) => {
    const [x, y] = [rfc3339Nanos(a)!, rfc3339Nanos(b)!];
    expect(x < y ? 1 : x > y ? -1 : 0).toBe(sign);
  });
  test("anything else is no time", () => {
    for (const v of ["", "x", "2026-12-01", "2026-12-01T00:00:00.1234567890Z"]) expect(rfc3339Nanos(v)).toBeUndefined();
  });
});
