/**
 * CEL filters: compilation with Flux's messages (receiver_resource_filter_test.go), evaluation
 * and filter stacking (its TestCELEvaluation and TestResourceFilterStacking tables), the functions
 * Flux's environment has, the cost bound, and, through a whole stack, what a Receiver with a
 * filter does: Stalled on a broken expression (404 while never Ready, as in Flux), skipped and
 * failed targets, and a crafted body cut off by the limit while the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CelMeter, compile, evaluate, type CelVariable } from "../../server/cel";
import { prepareReceiver } from "../../server/receivers/prepare";
import type { ReceiverSpec } from "../../server/api/receiver";
import { deliveryFilters } from "../../server/targets/filters";
import { replaceAll, type PartialObject } from "../../server/kube/port";
import { CEL_COST_LIMIT, CEL_TIME_LIMIT_MS } from "../../server/limits";
import { startStack, waitFor, type Stack } from "../support/stack";
import { reconcilerRig } from "../support/reconciler";
import { GIT, RECEIVER } from "../support/kinds";

const FILTER_VARS: CelVariable[] = ["res", "req"];

const spec = (over: Partial<ReceiverSpec>): ReceiverSpec => ({
  type: "generic",
  events: [],
  resources: [
    {
      apiVersion: undefined,
      kind: "GitRepository",
      name: "podinfo",
      namespace: undefined,
      matchLabels: undefined,
      filter: undefined,
    },
  ],
  resourceFilter: undefined,
  secretName: "token",
  oidcProviders: [],
  suspend: false,
  ...over,
});

const resource = (name: string, labels: Record<string, string> = {}): PartialObject => ({
  apiVersion: RECEIVER,
  kind: "Receiver",
  metadata: { name, labels },
});

const json = (value: unknown) => ({
  payload: new TextEncoder().encode(JSON.stringify(value)),
  payloadType: "application/json",
});

describe("compile (ValidateResourceFilter)", () => {
  test.each([
    ["true", FILTER_VARS, undefined],
    ["false", FILTER_VARS, undefined],
    ["req.value == 'test'", FILTER_VARS, undefined],
    ["'test'", FILTER_VARS, "CEL expression output type mismatch: expected bool, got string"],
    ["req.value", FILTER_VARS, "CEL expression output type mismatch: expected bool, got dyn"],
    ["requrest.body.value", FILTER_VARS, "undeclared reference to 'requrest'"],
    ["claims.sub == 'test'", FILTER_VARS, "undeclared reference to 'claims'"],
    ["claims.sub == 'test'", ["res", "req", "claims"] as CelVariable[], undefined],
    ["req.a ==", FILTER_VARS, "failed to parse the CEL expression 'req.a =='"],
    ["['a', 1].size() == 2", FILTER_VARS, "List elements must have the same type"],
    ["req.tag.matches('(?=lookahead)')", FILTER_VARS, "failed to create CEL program: invalid regular expression"],
  ])("%p", (expression, variables, error) => {
    const r = compile(expression, { variables, output: "bool" });
    if (error === undefined) expect(r).toMatchObject({ ok: true });
    else expect(r.ok === false && r.error).toContain(error);
  });

  test("messages carry cel-go's position", () => {
    const r = compile("requrest.body.value", { variables: FILTER_VARS, output: "bool" });
    expect(r).toEqual({
      ok: false,
      error:
        "failed to parse the CEL expression 'requrest.body.value': ERROR: <input>:1:1: undeclared reference to 'requrest' (in container '')",
    });
  });
});

describe("evaluation (TestCELEvaluation)", () => {
  test.each([
    {
      expression: "res.metadata.name == 'test-resource' && req.target.repository == 'hello-world'",
      input: json({ target: { repository: "hello-world" } }),
      want: true,
    },
    {
      expression:
        "res.metadata.name == 'test-resource' && claims.sub == 'system:serviceaccount:apps:deployer' && claims.repository == 'hello-world'",
      input: {
        payload: new Uint8Array(0),
        payloadType: "",
        claims: { sub: "system:serviceaccount:apps:deployer", repository: "hello-world" },
      },
      want: true,
    },
    {
      expression: "claims.environment == 'production'",
      input: { payload: new Uint8Array(0), payloadType: "", claims: { environment: "staging" } },
      want: false,
    },
    { expression: "req.bool == true", input: json({ bool: true }), want: true },
    {
      expression: "res.metadata.name == 'test-resource' && req.image.source.split(':').last().value().startsWith('v')",
      input: json({ image: { source: "hello-world:v1.0.0" } }),
      want: true,
    },
    // req is {} unless the body is JSON: a form body or CloudEvents JSON is not parsed.
    {
      expression: "!has(req.action)",
      input: { payload: new TextEncoder().encode("action=push"), payloadType: "application/x-www-form-urlencoded" },
      want: true,
    },
    {
      expression: "!has(req.action)",
      input: { payload: new TextEncoder().encode('{"action":"push"}'), payloadType: "application/cloudevents+json" },
      want: true,
    },
    {
      expression: "req.action == 'push'",
      input: { payload: new TextEncoder().encode('{"action":"push"}'), payloadType: "text/plain, application/json" },
      want: true,
    },
    { expression: "req.n == 1 && req.n == 1.0 && req.n > 0", input: json({ n: 1 }), want: true },
  ])("$expression", ({ expression, input, want }) => {
    const variables: CelVariable[] = "claims" in input ? ["res", "req", "claims"] : FILTER_VARS;
    const program = compile(expression, { variables, output: "bool" });
    if (!program.ok) throw new Error(program.error);
    const filters = deliveryFilters(
      { resourceFilter: program.program, resourceFilters: [undefined] },
      input,
      new CelMeter(),
    );
    if (!filters.ok) throw new Error(filters.error);
    expect(filters.filters.forResource(0)!(resource("test-resource"))).toEqual({ ok: true, accept: want });
  });

  test("a JSON body that is not an object cannot be a filter's req (Flux answers 500)", () => {
    const program = compile("true", { variables: FILTER_VARS, output: "bool" });
    if (!program.ok) throw new Error(program.error);
    const compiled = { resourceFilter: program.program, resourceFilters: [undefined], oidcProviders: [] };
    expect(deliveryFilters(compiled, json([1, 2]), new CelMeter())).toEqual({
      ok: false,
      status: 500,
      error: "failed to parse request body as JSON: cannot unmarshal array into a JSON object",
    });
    expect(
      deliveryFilters(
        compiled,
        { payload: new TextEncoder().encode("{"), payloadType: "application/json" },
        new CelMeter(),
      ).ok,
    ).toBe(false);
    // Without any filter the body is never parsed.
    expect(
      deliveryFilters({ resourceFilter: undefined, resourceFilters: [undefined] }, json([1]), new CelMeter()).ok,
    ).toBe(true);
  });
});

describe("filter stacking (TestResourceFilterStacking)", () => {
  test.each([
    ["no filters accept all", "", "", true],
    ["top-level only true", "res.metadata.name == 'podinfo'", "", true],
    ["top-level only false", "res.metadata.name == 'other'", "", false],
    ["per-resource only true", "", "res.metadata.labels['team'] == 'dev'", true],
    ["per-resource only false", "", "res.metadata.labels['team'] == 'ops'", false],
    ["both true", "res.metadata.name == 'podinfo'", "res.metadata.labels['team'] == 'dev'", true],
    ["top true per-resource false", "res.metadata.name == 'podinfo'", "res.metadata.labels['team'] == 'ops'", false],
    ["top false per-resource true", "res.metadata.name == 'other'", "res.metadata.labels['team'] == 'dev'", false],
  ])("%s", (_name, top, perResource, want) => {
    const s = spec({ resourceFilter: top || undefined });
    const prepared = prepareReceiver({ ...s, resources: [{ ...s.resources[0]!, filter: perResource || undefined }] });
    if (!prepared.ok) throw new Error(prepared.message);
    const filters = deliveryFilters(prepared.compiled, json(null), new CelMeter());
    if (!filters.ok) throw new Error(filters.error);
    const filter = filters.filters.forResource(0);
    const accept = filter ? filter(resource("podinfo", { team: "dev" })) : { ok: true, accept: true };
    expect(accept).toEqual({ ok: true, accept: want });
  });
});

describe("functions of Flux's environment", () => {
  // Each expression must be true. ext.Strings, ext.Sets, ext.Encoders, optional types.
  test.each([
    "req.tag.split('/').last().value() == 'hello:1.1'",
    "req.tag.split('/').first().value() == 'us'",
    "[].last().hasValue() == false",
    "req.?missing.orValue('default') == 'default'",
    "req.?tag.hasValue()",
    "optional.of(1).value() == 1",
    "optional.ofNonZeroValue('').hasValue() == false",
    "'abc'.charAt(1) == 'b' && 'abc'.charAt(3) == ''",
    "'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3",
    "['a', 'b'].join('-') == 'a-b'",
    "'AbC'.lowerAscii() == 'abc' && 'abc'.upperAscii() == 'ABC'",
    "'aXaXa'.replace('a', 'b') == 'bXbXb' && 'aXaXa'.replace('a', 'b', 2) == 'bXbXa'",
    "'a,b,c'.split(',', 2) == ['a', 'b,c']",
    "'hello'.substring(1, 3) == 'el'",
    "'  x '.trim() == 'x'",
    "'abc'.reverse() == 'cba'",
    "'%s=%d'.format([dyn('n'), dyn(3)]) == 'n=3' && '%.2f'.format([1.5]) == '1.50' && '%x'.format([255]) == 'ff'",
    "strings.quote('a\"b') == '\"a\\\\\"b\"'",
    "sets.contains([1, 2, 3], [3, 1]) && sets.contains([1], [1.0])",
    "sets.equivalent([1, 2], [2, 1, 1]) && sets.intersects([1, 2], [2, 3])",
    "base64.encode(b'hello') == 'aGVsbG8=' && base64.decode('aGVsbG8=') == b'hello'",
    "req.tag.matches('hello:[0-9.]+$') && matches(req.tag, '^us/')",
    "['a', 'b'].exists(x, x == 'b') && [1, 2].all(x, x > 0) && [1, 2].map(x, x * 2) == [2, 4]",
    "timestamp('2024-01-01T00:00:00Z') < timestamp('2025-01-01T00:00:00Z')",
  ])("%s", (expression) => {
    const program = compile(expression, { variables: FILTER_VARS, output: "bool" });
    if (!program.ok) throw new Error(program.error);
    expect(evaluate(program.program, { req: { tag: "us/x/hello:1.1" }, res: {} }, new CelMeter())).toEqual({
      ok: true,
      value: true,
    });
  });
});

describe("cost bound", () => {
  const run = (expression: string, req: unknown, meter = new CelMeter()) => {
    const program = compile(expression, { variables: FILTER_VARS, output: "bool" });
    if (!program.ok) throw new Error(program.error);
    const started = performance.now();
    const result = evaluate(program.program, { req, res: {} }, meter);
    return { result, ms: performance.now() - started };
  };
  const items = Array.from({ length: 5000 }, (_, i) => `item-${i}`);

  // The step-limit tests lift the time limit: on a loaded machine it could otherwise fire first.
  const stepsOnly = () => new CelMeter({ ms: 60_000 });

  test("a nested comprehension over a large body is cut off by the step limit", () => {
    const { result, ms } = run("req.items.exists(a, req.items.exists(b, a != b && a == b))", { items }, stepsOnly());
    expect(result).toEqual({
      ok: false,
      error: `CEL evaluation exceeded the cost limit of ${CEL_COST_LIMIT} steps for one delivery`,
    });
    expect(ms).toBeLessThan(5000);
  });

  test("an error absorbed by || does not hide a spent budget", () => {
    const { result } = run("req.items.all(a, req.items.all(b, a == b || true)) || true", { items }, stepsOnly());
    expect(result).toEqual({
      ok: false,
      error: `CEL evaluation exceeded the cost limit of ${CEL_COST_LIMIT} steps for one delivery`,
    });
  });

  test("few steps over a huge string are cut off: each builtin call is charged by its input's size", () => {
    const big = "x".repeat(3 * 1024 * 1024);
    const { result, ms } = run("req.items.all(i, !req.big.contains(i))", { items, big });
    expect(result).toEqual({
      ok: false,
      error: "CEL evaluation exceeded the cost limit of 1000000 steps for one delivery (contains)",
    });
    expect(ms).toBeLessThan(CEL_TIME_LIMIT_MS * 20); // cut off, not run to the end (room for a loaded machine)
  });

  test("the budget is per delivery: later evaluations fail at once", () => {
    const meter = new CelMeter({ steps: 1000 });
    expect(run("req.items.size() > 0", { items }, meter).result).toEqual({ ok: true, value: true });
    expect(run("req.items.all(i, i != '')", { items }, meter).result.ok).toBe(false);
    expect(run("true", {}, meter).result).toEqual({
      ok: false,
      error: "CEL evaluation exceeded the cost limit of 1000 steps for one delivery",
    });
  });

  test("matches runs on RE2: no catastrophic backtracking", () => {
    const { result, ms } = run("req.s.matches('^(a+)+$')", { s: `${"a".repeat(5000)}!` });
    expect(result).toEqual({ ok: true, value: false });
    expect(ms).toBeLessThan(3000); // backtracking would take longer than the universe's age
  });
});

describe("compiled once per generation", () => {
  test("status writes and Secret changes reuse the programs; a changed expression recompiles", () => {
    const compiled: string[] = [];
    const { secrets, receivers, index } = reconcilerRig({
      prepare: (s) => {
        compiled.push(s.resourceFilter ?? "");
        return prepareReceiver(s);
      },
    });
    const receiver = (generation: number, filter: string, status: Record<string, unknown> = {}) => ({
      apiVersion: RECEIVER,
      kind: "Receiver",
      metadata: { name: "r", namespace: "ns", generation, uid: "u1" },
      spec: {
        type: "generic",
        secretRef: { name: "token" },
        resources: [{ kind: "GitRepository", name: "app" }],
        resourceFilter: filter,
      },
      status,
    });
    const secret = (token: string) => ({
      metadata: { name: "token", namespace: "ns" },
      data: { token: Buffer.from(token).toString("base64") },
    });
    replaceAll(secrets.sink, [secret("a")]);
    replaceAll(receivers.sink, [receiver(1, "true")]);
    receivers.sink.upsert(receiver(1, "true", { observedGeneration: 1 }));
    secrets.sink.upsert(secret("b"));
    expect(compiled).toEqual(["true"]);
    const entry = [...index.entries()][0]!;
    expect(entry.unavailable).toBeUndefined();
    receivers.sink.upsert(receiver(2, "false"));
    expect(compiled).toEqual(["true", "false"]);
  });
});

describe("a Receiver with filters, through the stack", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.stop());

  const conditions = (ns: string) =>
    (stack.receiverObject(ns, "receiver")?.status?.conditions ?? []).map((c: any) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
    }));

  test.each([
    {
      name: "broken resourceFilter",
      filters: { resourceFilter: "'test'" },
      message: "invalid resourceFilter expression: CEL expression output type mismatch: expected bool, got string",
    },
    {
      name: "broken per-resource filter",
      filters: {
        resources: [
          { kind: "GitRepository", name: "app" },
          { kind: "GitRepository", name: "other", filter: "requrest.body.value" },
        ],
      },
      message:
        "invalid filter expression for resources[1] (kind=\"GitRepository\", name=\"other\"): failed to parse the CEL expression 'requrest.body.value': ERROR: <input>:1:1: undeclared reference to 'requrest' (in container '')",
    },
  ])(
    "$name: Stalled with InvalidCELExpression, 404 (never Ready, as Flux), Ready once fixed",
    async ({ filters, message }) => {
      const ns = `stalled-${filters.resourceFilter ? "top" : "per"}`;
      const base = {
        type: "generic",
        secretRef: { name: "token" },
        resources: [{ kind: "GitRepository", name: "app" }],
      };
      stack.makeReceiver(ns, "receiver", {
        type: "generic",
        token: "token",
        secretName: "token",
        targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
        spec: filters,
      });
      await waitFor("Stalled", () => conditions(ns).some((c: any) => c.type === "Stalled"));
      const full = `Reconciliation failed terminally due to configuration error: ${message}`;
      expect(conditions(ns)).toEqual([
        { type: "Ready", status: "False", reason: "InvalidCELExpression", message: full },
        { type: "Stalled", status: "True", reason: "InvalidCELExpression", message: full },
      ]);
      const obj = stack.receiverObject(ns, "receiver")!;
      expect(obj.status.observedGeneration).toBe(obj.metadata.generation);
      const path = `/hook/${new Bun.CryptoHasher("sha256").update(`tokenreceiver${ns}`).digest("hex")}`;
      expect((await stack.post(path, { body: "{}" })).status).toBe(404);

      stack.api.store.patch(RECEIVER, "Receiver", ns, "receiver", {
        spec: { ...base, resourceFilter: "true", resources: base.resources },
      });
      expect(await stack.readyPath(ns, "receiver")).toBe(path);
      expect((await stack.post(path, { body: "{}" })).status).toBe(200);
    },
  );

  test("false skips a target, an evaluation error fails it (500 after all were tried)", async () => {
    const ns = "outcomes";
    for (const name of ["match", "other", "broken"])
      stack.target(GIT, "GitRepository", ns, name, { team: name === "other" ? "ops" : "dev" });
    const path = await stack.readyReceiver(ns, "receiver", {
      type: "generic",
      token: "token",
      spec: {
        resources: [
          { kind: "GitRepository", name: "match", filter: "res.metadata.labels.team == 'dev'" },
          { kind: "GitRepository", name: "other", filter: "res.metadata.labels.team == 'dev'" },
          { kind: "GitRepository", name: "broken", filter: "res.metadata.nope == 'x'" },
          { kind: "GitRepository", name: "missing", filter: "true" },
        ],
      },
    });
    const res = await stack.post(path, {
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(500);
    expect(res.body.reason).toBe("2 targets failed; 1 of 4 targets annotated");
    expect(res.body.targets).toEqual([
      {
        kind: "GitRepository",
        namespace: ns,
        name: "match",
        outcome: "annotated",
        requestedAt: stack.requestedAt(GIT, "GitRepository", ns, "match"),
      },
      {
        kind: "GitRepository",
        namespace: ns,
        name: "other",
        outcome: "skipped",
        reason: "the CEL filter returned false",
      },
      {
        kind: "GitRepository",
        namespace: ns,
        name: "broken",
        outcome: "failed",
        reason:
          "resources[2].filter: failed to evaluate the CEL expression 'res.metadata.nope == 'x'': No such key: nope",
      },
      {
        kind: "GitRepository",
        namespace: ns,
        name: "missing",
        outcome: "failed",
        reason: `GitRepository ${ns}/missing: not found`,
      },
    ]);
    expect(stack.requestedAt(GIT, "GitRepository", ns, "match")).toBeDefined();
    expect(stack.requestedAt(GIT, "GitRepository", ns, "other")).toBeUndefined();
  });

  test("a body crafted to make the filter expensive is cut off, and the server keeps serving", async () => {
    const ns = "expensive";
    const path = await stack.readyReceiver(ns, "receiver", {
      type: "generic",
      token: "token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
      // A plausible filter: "some commit message appears twice". Quadratic in the commits.
      spec: { resourceFilter: "req.commits.exists(c, req.commits.exists(d, c.id != d.id && c.message == d.message))" },
    });
    const commits = Array.from({ length: 20_000 }, (_, i) => ({ id: String(i), message: `m${i}` }));
    const res = await stack.post(path, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ commits }),
    });
    expect(res.status).toBe(500);
    // The step limit is met first on a quiet machine, the time limit on a loaded one: either cuts it
    // off. A step budget spent by a sized operator's charge names that operator, e.g. "(==)".
    const cutOff = new RegExp(
      `^resourceFilter: CEL evaluation exceeded the (cost limit of ${CEL_COST_LIMIT} steps|time limit of ${CEL_TIME_LIMIT_MS} ms) for one delivery( \\([^)]+\\))?$`,
    );
    expect(res.body.targets).toEqual([
      { kind: "GitRepository", namespace: ns, name: "app", outcome: "failed", reason: expect.stringMatching(cutOff) },
    ]);
    expect(stack.requestedAt(GIT, "GitRepository", ns, "app")).toBeUndefined();
    // A normal body is still served at once.
    const ok = await stack.post(path, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        commits: [
          { id: "1", message: "a" },
          { id: "2", message: "a" },
        ],
      }),
    });
    expect(ok.status).toBe(200);
  });

  test("a JSON array body with a filter is a 500 (Flux cannot build req)", async () => {
    const ns = "array-body";
    const path = await stack.readyReceiver(ns, "receiver", {
      type: "generic",
      token: "token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
      spec: { resourceFilter: "true" },
    });
    const res = await stack.post(path, {
      headers: { "Content-Type": "application/json" },
      body: "[1]",
    });
    expect(res).toMatchObject({
      status: 500,
      body: { reason: "failed to parse request body as JSON: cannot unmarshal array into a JSON object" },
    });
  });
});
