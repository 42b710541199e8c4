/**
 * The status query is as bounded as a delivery: what one query, and a flood of them,
 * costs the API server; what a query may see; how long it may take and what it holds meanwhile;
 * what its refusals cost the logs; what its body may cost to parse; what its answer may carry.
 * Through real HTTP against the API test server at default flags, except where a seam is named.
 */
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import {
  encodeStatusQuery,
  MAX_STATUS_TEXT_CHARS,
  MAX_TARGET_STATE_BYTES,
  statusQueryKey,
  statusQueryPath,
  webhookPath,
  type QueriedTarget,
  mapPool,
} from "../../shared";
import { MAX_CONDITION_MESSAGE_CHARS, STATUS_QUERY_BURST } from "../../server/limits";
import type { KubePort } from "../../server/kube/port";
import { githubExample } from "../support/payloads";
import { edgeApp, receiverSpec, servingEntry } from "../support/edge";
import { startStack, waitFor, type Stack } from "../support/stack";
import { waitForQueries } from "../support/wait";
import { GIT, HR, KS } from "../support/kinds";
import { signature } from "../support/signer";

const NS = "bounds";
const TOKEN = "bounds-token";

let stack: Stack;

const target = (name: string, namespace = NS, requestedAt = "2026-01-01T00:00:00Z"): QueriedTarget => ({
  kind: "GitRepository",
  namespace,
  name,
  requestedAt,
});

/** An unsigned query: the URL is a generic Receiver's only credential. */
function query(receiver: string, targets: readonly QueriedTarget[], namespace = NS) {
  const body = encodeStatusQuery({ targets });
  return stack.post(statusQueryPath(webhookPath(TOKEN, receiver, namespace))!, {
    headers: { "Content-Type": "application/json" },
    body,
  });
}

function signedQuery(receiver: string, targets: readonly QueriedTarget[]) {
  const body = encodeStatusQuery({ targets });
  return stack.post(statusQueryPath(webhookPath(TOKEN, receiver, NS))!, {
    headers: {
      "Content-Type": "application/json",
      "X-Hub-Signature-256": signature(statusQueryKey(TOKEN), body),
    },
    body,
  });
}

/** fluxhook's reads of the API server while `run` ran (its watches left out). */
async function readsDuring(run: () => Promise<unknown>) {
  const before = stack.api.requests.length;
  await run();
  // Requests still in flight when `run` ended are in the log already (logged on arrival).
  return stack.api.requests.slice(before).filter((r) => !r.watch && r.method === "GET");
}

const lists = (reads: { path: string }[], plural: string) => reads.filter((r) => r.path.endsWith(`/${plural}`)).length;

function generic(namespace: string, name: string, resources: unknown[]) {
  stack.receiver(namespace, name, { type: "generic", secretRef: { name: "token" }, resources });
}

beforeAll(async () => {
  stack = await startStack();
  for (const ns of [NS, "tenant", "flux-system"]) stack.secret(ns, "token", { token: TOKEN });
  for (const name of ["app", "siege", "fresh", "budget", "refusals", "forbidden", "deadline", "long", "broken"])
    stack.target(GIT, "GitRepository", NS, name);
  stack.target(GIT, "GitRepository", "flux-system", "platform");
  // 150 Kustomizations and 150 HelmReleases: two pages of each to list.
  for (let i = 0; i < 150; i++) {
    stack.api.store.create({
      apiVersion: KS,
      kind: "Kustomization",
      metadata: { name: `ks-${i}`, namespace: NS },
      spec: { sourceRef: { kind: "GitRepository", name: i === 0 ? "app" : "elsewhere" } },
    });
    stack.api.store.create({
      apiVersion: HR,
      kind: "HelmRelease",
      metadata: { name: `hr-${i}`, namespace: NS },
      spec: { chart: { spec: { chart: "c", sourceRef: { kind: "GitRepository", name: "elsewhere" } } } },
    });
  }
  stack.api.store.create({
    apiVersion: KS,
    kind: "Kustomization",
    metadata: { name: "platform-apps", namespace: "flux-system" },
    spec: { sourceRef: { kind: "GitRepository", name: "platform" } },
  });
  for (const name of ["app", "siege", "fresh", "budget", "refusals", "forbidden", "deadline", "long"])
    generic(NS, name, [{ kind: "GitRepository", name }]);
  stack.receiver(NS, "signed", {
    type: "github",
    secretRef: { name: "token" },
    resources: [{ kind: "GitRepository", name: "broken" }],
  });
  generic(NS, "broken", [{ kind: "GitRepository", name: "broken" }]);
  // A tenant's Receiver naming a source in flux-system: its deliveries may trigger it (Flux allows it).
  generic("tenant", "cross", [{ kind: "GitRepository", name: "platform", namespace: "flux-system" }]);
  for (const name of [
    "app",
    "siege",
    "fresh",
    "budget",
    "refusals",
    "forbidden",
    "deadline",
    "long",
    "signed",
    "broken",
  ])
    await stack.readyPath(NS, name);
  await stack.readyPath("tenant", "cross");
});
afterAll(() => stack.stop());

describe("what queries cost the API server does not grow with their rate", () => {
  test("one query naming a target 100 times reads it once, lists each consumer kind once, answers it once", async () => {
    let res: Awaited<ReturnType<typeof query>> | undefined;
    const reads = await readsDuring(async () => {
      res = await query(
        "app",
        Array.from({ length: 100 }, () => target("app")),
      );
    });
    expect(res!.status).toBe(200);
    expect(res!.body.targets.length).toBe(1);
    expect(res!.body.targets[0].consumers.map((c: { name: string }) => c.name)).toEqual(["ks-0"]);
    const gets = reads.filter((r) => r.path.endsWith("/gitrepositories/app")).length;
    // Two pages of each kind at most (150 objects, pages of 100), whatever the queries ask.
    expect({
      gets,
      kustomizations: lists(reads, "kustomizations") <= 2,
      helmreleases: lists(reads, "helmreleases") <= 2,
    }).toEqual({
      gets: 1,
      kustomizations: true,
      helmreleases: true,
    });
  });

  test("16 senders for many queries: the API requests stay bounded, and a delivery to the same Receiver is 200", async () => {
    let statuses: number[] = [];
    const reads = await readsDuring(async () => {
      const sends = Array.from(
        { length: 200 },
        () => () =>
          query(
            "siege",
            Array.from({ length: 100 }, () => target("siege")),
          ),
      );
      statuses = (await mapPool(sends, 16, (send) => send())).map((r) => r.status);
    });
    const answered = statuses.filter((s) => s === 200).length;
    // The always-on query budget: a burst, then 429 (with Retry-After), whatever the valid-delivery limit says.
    expect({
      answered: answered <= STATUS_QUERY_BURST + 10,
      refused: statuses.filter((s) => s === 429).length >= 150,
    }).toEqual({
      answered: true,
      refused: true,
    });
    // Each answered query read its target (concurrent ones shared the GET); the consumer lists were
    // shared by all, one LIST per kind per interval.
    const gets = reads.filter((r) => r.path.endsWith("/gitrepositories/siege")).length;
    expect({ gets: gets <= answered, kustomizations: lists(reads, "kustomizations") <= 6 }).toEqual({
      gets: true,
      kustomizations: true,
    });
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const delivery = await stack.post(webhookPath(TOKEN, "siege", NS), {
      headers: { "Content-Type": "application/json" },
      body,
    });
    expect(delivery.status).toBe(200);
  });

  test("a 429 from the query budget carries Retry-After", async () => {
    const sends = Array.from({ length: STATUS_QUERY_BURST + 5 }, () => () => query("budget", [target("budget")]));
    const answers = await mapPool(sends, 8, (send) => send());
    const refused = answers.find((a) => a.status === 429);
    expect(refused?.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(refused?.body.reason).toContain("status queries");
  });

  test("consumer lists are served again within the interval, then read anew", async () => {
    // Two queries in a row: one paged LIST of each kind between them (two pages of 150 objects).
    const reads = await readsDuring(async () => {
      await query("fresh", [target("fresh")]);
      await query("fresh", [target("fresh")]);
    });
    expect(lists(reads, "kustomizations")).toBeLessThanOrEqual(2);
    // A consumer added now is seen once the interval has passed.
    stack.api.store.create({
      apiVersion: KS,
      kind: "Kustomization",
      metadata: { name: "fresh-consumer", namespace: NS },
      spec: { sourceRef: { kind: "GitRepository", name: "fresh" } },
    });
    await waitForQueries("a later query to list the new consumer", async () => {
      const res = await query("fresh", [target("fresh")]);
      return (
        res.status === 200 && res.body.targets[0].consumers.some((c: { name: string }) => c.name === "fresh-consumer")
      );
    });
  });
});

describe("a query never reveals an object outside the Receiver's namespace", () => {
  test("a target in another namespace is refused before anything is read", async () => {
    let res: Awaited<ReturnType<typeof query>> | undefined;
    const reads = await readsDuring(async () => {
      res = await query("cross", [target("platform", "flux-system")], "tenant");
    });
    expect(res!.status).toBe(403);
    expect(res!.body.reason).toContain("outside this Receiver's namespace");
    expect(JSON.stringify(res!.body)).not.toContain("platform-apps");
    expect(reads).toEqual([]);
    // The Receiver's deliveries still trigger it, as Flux's do.
    const delivery = await stack.post(webhookPath(TOKEN, "cross", "tenant"), {
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    expect(delivery.status).toBe(200);
  });
});

describe("a deadline on every query, and slots released when the client goes away", () => {
  test("a query whose reads outlast the deadline is answered 504 at the deadline", async () => {
    await using slow = await startStack({}, { statusQueryDeadlineMs: 300 });
    const path = await slow.readyReceiver(NS, "app", {
      type: "generic",
      token: TOKEN,
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const hang = slow.api.faults.add({
      method: "GET",
      path: /\/gitrepositories\/app$/,
      times: Infinity,
      respond: "hang",
    });
    const started = performance.now();
    const res = await slow.post(statusQueryPath(path)!, {
      headers: { "Content-Type": "application/json" },
      body: encodeStatusQuery({ targets: [target("app")] }),
    });
    hang.remove();
    expect({ status: res.status, fast: performance.now() - started < 4_000 }).toEqual({ status: 504, fast: true });
    expect(res.body.reason).toContain("did not answer");
  });

  test("a query whose client went away frees its slot at once", async () => {
    const spec = receiverSpec(NS, "q", {
      type: "generic",
      secretRef: { name: "token" },
      resources: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const never = new Promise<never>(() => {});
    let reading = 0;
    const cluster: Pick<KubePort, "observeObject" | "observeObjects"> = {
      observeObject: () => {
        reading++;
        return never;
      },
      observeObjects: () => never,
    };
    // One slot on the replica; the cluster never answers a read.
    const { handle, guards } = edgeApp([servingEntry(NS, "q", spec, TOKEN)], {
      guards: { maxConcurrent: 1 },
      statusReader: cluster,
    });
    const client = new AbortController();
    const pending = handle(
      new Request("http://edge/hook/q/status", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: encodeStatusQuery({ targets: [target("app")] }),
        signal: client.signal,
      }),
    );
    const deliver = () =>
      handle(
        new Request("http://edge/hook/q", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        }),
      );
    // The query holds the only slot while it waits on the cluster (its body in, it is not evicted).
    await waitFor("the query to read the cluster", () => reading > 0);
    expect((await deliver()).status).toBe(429);
    client.abort();
    await waitFor("the slot to be free", async () => (await deliver()).status === 200, 2_000);
    await pending.catch(() => undefined);
    guards.stop();
  });
});

describe("refused queries spend the failure budget, and their log lines are bounded with it", () => {
  test.each([
    { name: "malformed queries (400)", body: () => '{"targets":[]}', status: 400 },
    {
      name: "queries naming another object (403)",
      body: () => encodeStatusQuery({ targets: [target("app")] }),
      status: 403,
    },
  ])("$name", async ({ body, status }) => {
    const receiver = status === 400 ? "refusals" : "forbidden";
    const path = statusQueryPath(webhookPath(TOKEN, receiver, NS))!;
    const logged = stack.logs.length;
    const sends = Array.from(
      { length: 300 },
      () => () => stack.post(path, { headers: { "Content-Type": "application/json" }, body: body() }),
    );
    const answers = await mapPool(sends, 16, (send) => send());
    const errors = stack.logs
      .slice(logged)
      .filter((l) => l.level === "error" && l.msg === "status query refused" && l.name === receiver).length;
    // Default flags: a burst of 100 failures, then 10 a second; the rest are 429s, logged at debug.
    expect({
      refused: answers.filter((a) => a.status === status).length <= 130,
      throttled: answers.filter((a) => a.status === 429 && /too many failed/.test(a.body.reason)).length >= 170,
      errorLines: errors <= 130,
    }).toEqual({ refused: true, throttled: true, errorLines: true });
  });
});

describe("query bodies are bounded before they are parsed", () => {
  test.each([
    {
      name: "nesting",
      body: `${"[".repeat(40_000)}${"]".repeat(40_000)}`,
      reason: /nesting is deeper than \d+ levels/,
    },
    { name: "values", body: `{"targets":[${Array(20_000).fill("0").join(",")}]}`, reason: /more than \d+ values/ },
  ])("$name: 400 naming the bound, no parse", async ({ body, reason }) => {
    const parse = spyOn(JSON, "parse");
    try {
      const refused = await fetch(stack.fluxhook.receiverUrl + statusQueryPath(webhookPath(TOKEN, "long", NS))!, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
      const text = await refused.text();
      const calls = parse.mock.calls.filter(([s]) => typeof s === "string" && s.length >= body.length).length;
      expect({ status: refused.status, calls }).toEqual({ status: 400, calls: 0 });
      expect(text).toMatch(reason);
    } finally {
      parse.mockRestore();
    }
  });
});

describe("API server error text is cut, and generic toward unauthenticated senders", () => {
  const secretish =
    'gitrepositories.source.toolkit.fluxcd.io "broken" is forbidden: User "system:serviceaccount:flux-system:fluxhook" cannot get resource "gitrepositories" at https://10.96.0.1:443 ' +
    "x".repeat(2_000);
  test("a URL-only Receiver's answer names the status, not the API's message", async () => {
    const fault = stack.api.faults.add({
      method: "GET",
      path: /\/gitrepositories\/broken$/,
      times: Infinity,
      respond: { status: 403, message: secretish },
    });
    try {
      const generic = await query("broken", [target("broken")]);
      const signed = await signedQuery("signed", [target("broken")]);
      expect(generic.status).toBe(200);
      const error = generic.body.targets[0].error as string;
      expect({ leaks: /serviceaccount|10\.96|forbidden/.test(error), short: error.length <= 200 }).toEqual({
        leaks: false,
        short: true,
      });
      expect(error).toContain("403");
      // The Receiver's authenticated sender sees the API's message, cut to the contract's bound.
      const signedError = signed.body.targets[0].error as string;
      expect({ cut: signedError.length <= MAX_STATUS_TEXT_CHARS, names: signedError.includes("forbidden") }).toEqual({
        cut: true,
        names: true,
      });
    } finally {
      fault.remove();
    }
  });
});

describe("every text of an answer is cut to the contract's bounds", () => {
  // Names and kinds are bounded by the API server itself (253 characters, MAX_STATUS_NAME_CHARS).
  test("revisions, reasons, messages, lastHandledReconcileAt; a cut revision is not complete", async () => {
    const long = (c: string) => c.repeat(5_000);
    stack.api.store.patch(
      GIT,
      "GitRepository",
      NS,
      "long",
      {
        status: {
          lastHandledReconcileAt: long("t"),
          artifact: { revision: long("r") },
          conditions: [{ type: "Ready", status: "True", reason: long("R"), message: long("m") }],
        },
      },
      { subresource: "status" },
    );
    stack.api.store.create({
      apiVersion: KS,
      kind: "Kustomization",
      metadata: { name: "long-consumer", namespace: NS },
      spec: { sourceRef: { kind: "GitRepository", name: "long" } },
      status: { lastAppliedRevision: long("a"), lastAttemptedRevision: long("b") },
    });
    const res = await waitForQueries("the long consumer to be listed", async () => {
      const r = await query("long", [target("long")]);
      return r.body.targets?.[0]?.consumers?.length ? r : undefined;
    });
    const [t] = res.body.targets;
    const c = t.consumers[0];
    expect({
      revision: t.revision.length,
      handledAt: t.lastHandledReconcileAt.length,
      reason: t.ready.reason.length,
      message: t.ready.message.length,
      applied: c.appliedRevision.length,
      attempted: c.attemptedRevision.length,
      complete: t.complete,
    }).toEqual({
      revision: MAX_STATUS_TEXT_CHARS,
      handledAt: MAX_STATUS_TEXT_CHARS,
      reason: MAX_STATUS_TEXT_CHARS,
      message: MAX_CONDITION_MESSAGE_CHARS + 1,
      applied: MAX_STATUS_TEXT_CHARS,
      attempted: MAX_STATUS_TEXT_CHARS,
      complete: undefined,
    });
    const { consumers: _, ...state } = t;
    expect(Buffer.byteLength(JSON.stringify(state))).toBeLessThanOrEqual(MAX_TARGET_STATE_BYTES);
  });
});

test("a delivery's answer still names what it wrote (the query's input)", async () => {
  const body = githubExample("push");
  const res = await stack.post(webhookPath(TOKEN, "app", NS), {
    headers: { "Content-Type": "application/json" },
    body,
  });
  expect(res.body.targets[0]).toMatchObject({ name: "app", outcome: "annotated", requestedAt: expect.any(String) });
});
