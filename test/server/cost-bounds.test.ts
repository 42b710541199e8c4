/**
 * Hardening, round 2 (issue 11): what a request whose URL is its only credential can make the
 * server spend. Bodies that are cheap to send and costly to parse are refused by a pass over
 * their bytes before any parse; github and bitbucket check the signature before parsing a form;
 * CEL builtins are charged by the size of their inputs.
 */
import { describe, expect, test } from "bun:test";
import examples from "@octokit/webhooks-examples";
import { PROVIDERS, type Validation } from "../../server/providers";
import { formPayload, signedPayload } from "../../server/providers/github";
import { exceedsJsonBounds } from "../../server/providers/json-bounds";
import { NOTHING_COMPILED } from "../../server/receivers/prepare";
import type { ReceiverSpec } from "../../server/api/receiver";
import type { ReceiverType } from "../../shared";
import { MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_JSON_VALUES } from "../../server/limits";
import type { AuthServices } from "../../server/jwt";
import { CelMeter, compile, evaluate } from "../../server/cel";
import { deliveryFilters } from "../../server/targets/filters";
import { startStack, TEST_CONFIG, waitFor } from "../support/stack";
import { Slots } from "../../server/runtime/slots";
import type { GuardConfig } from "../../server/delivery/protect/guards";
import { edgeApp, receiverSpec, servingEntry } from "../support/edge";
import type { KubePort } from "../../server/kube/port";
import { MAX_PARSED_BODIES } from "../../server/limits";
import { GIT } from "../support/kinds";
import { signature } from "../support/signer";

/** The costly bodies of the red-team report, each at most 3 MiB. */
export const COSTLY_BODIES = {
  "1.5 M nested arrays": "[".repeat(1_500_000) + "]".repeat(1_500_000),
  "1 M empty arrays": `[${Array(1_000_000).fill("[]").join(",")}]`,
  "300 k keys": `{${Array.from({ length: 300_000 }, (_, i) => `"${i.toString(36)}":0`).join(",")}}`,
} as const;

const enc = (s: string) => new TextEncoder().encode(s);
const noAuth = {} as AuthServices;

const spec = (type: ReceiverType): ReceiverSpec => receiverSpec("ns", "r", { type, secretRef: { name: "s" } });

function validate(type: ReceiverType, body: string, headers: Record<string, string> = {}): Promise<Validation> {
  return Promise.resolve(
    PROVIDERS[type].validate(
      { headers: new Headers(headers), body: enc(body) },
      {
        spec: spec(type),
        secret: { token: Buffer.from("t") },
        compiled: NOTHING_COMPILED,
        auth: noAuth,
        meter: new CelMeter(),
      },
    ),
  );
}

describe("JSON bounds: costly bodies are refused before any parse", () => {
  test("the costly bodies fit in the body cap", () => {
    for (const body of Object.values(COSTLY_BODIES)) expect(body.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
  });

  test.each([
    ["1.5 M nested arrays", `JSON nesting is deeper than ${MAX_JSON_DEPTH} levels, more than any webhook sends`],
    ["1 M empty arrays", `JSON has more than ${MAX_JSON_VALUES} values, more than any webhook sends`],
    ["300 k keys", `JSON has more than ${MAX_JSON_VALUES} values, more than any webhook sends`],
  ] as const)("%s", async (name, reason) => {
    expect(exceedsJsonBounds(enc(COSTLY_BODIES[name]))).toBe(reason);
    const cases: [ReceiverType, string][] = [
      ["dockerhub", `cannot decode DockerHub webhook payload: ${reason}`],
      ["quay", `cannot decode Quay webhook payload: ${reason}`],
      ["acr", `cannot decode ACR webhook payload: ${reason}`],
      ["cdevents", `unable to validate CDEvent event: ${reason}`],
    ];
    for (const [type, want] of cases) {
      // A spy on JSON.parse: the body never reaches it.
      const parse = JSON.parse;
      let parsed = 0;
      JSON.parse = ((text: string, reviver?: never) => {
        parsed++;
        return parse(text, reviver);
      }) as typeof JSON.parse;
      try {
        expect(await validate(type, COSTLY_BODIES[name])).toEqual({ ok: false, reason: want });
      } finally {
        JSON.parse = parse;
      }
      expect(parsed).toBe(0);
    }
  });

  test("every real GitHub payload is within the bounds", () => {
    let checked = 0;
    for (const group of examples as { examples: unknown[] }[])
      for (const example of group.examples) {
        expect(exceedsJsonBounds(enc(JSON.stringify(example)))).toBeUndefined();
        checked++;
      }
    expect(checked).toBeGreaterThan(100);
  });

  test("brackets, commas and colons inside strings do not count; keys and scalars do", () => {
    const bounds = { maxDepth: 2, maxValues: 5 };
    expect(exceedsJsonBounds(enc('{"[[[,:\\"[": "]]]{{{"}'), false, bounds)).toBeUndefined();
    expect(exceedsJsonBounds(enc("[[1]]"), false, bounds)).toBeUndefined();
    expect(exceedsJsonBounds(enc("[[[1]]]"), false, bounds)).toContain("deeper than 2");
    expect(exceedsJsonBounds(enc("[1, true, null, -2]"), false, bounds)).toBeUndefined(); // 5 values
    expect(exceedsJsonBounds(enc('[1, true, null, -2, "x"]'), false, bounds)).toContain("more than 5 values");
    expect(exceedsJsonBounds(enc('{"a": 1, "b": 2}'), false, bounds)).toBeUndefined(); // 5 values
    expect(exceedsJsonBounds(enc('{"a": 1, "b": 2, "c": 3}'), false, bounds)).toContain("more than 5 values");
  });

  test("Go's decoding reads only the first value: the bounds apply to it alone", async () => {
    const dockerhub = '{"push_data":{"tag":"v1"}}';
    expect(await validate("dockerhub", `${dockerhub} ${COSTLY_BODIES["1 M empty arrays"]}`)).toMatchObject({
      ok: true,
    });
  });
});

describe("github and bitbucket check the signature before parsing a form", () => {
  const form = `payload=${encodeURIComponent('{"ref":"refs/heads/main"}')}&${"x=1&".repeat(700_000)}`;

  test.each(["github", "bitbucket"] as const)(
    "%s: a forged form body is refused without being parsed",
    async (type) => {
      expect(form.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
      let parses = 0;
      const counting = (body: Uint8Array) => {
        parses++;
        return formPayload(body);
      };
      const validator = signedPayload(type === "github" ? "X-GitHub-Event" : "X-Event-Key", counting);
      const context = {
        spec: spec(type),
        secret: { token: Buffer.from("t") },
        compiled: NOTHING_COMPILED,
        auth: noAuth,
        meter: new CelMeter(),
      };
      const formType = { "Content-Type": "application/x-www-form-urlencoded" };

      for (const headers of [
        formType,
        { ...formType, "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` },
        { ...formType, "X-Hub-Signature": signature("wrong", form, "sha1") },
      ]) {
        const verdict = await validator({ headers: new Headers(headers), body: enc(form) }, context);
        expect(verdict.ok).toBe(false);
      }
      expect(parses).toBe(0);

      const signed = { ...formType, "X-Hub-Signature-256": signature("t", form) };
      const verdict = await validator({ headers: new Headers(signed), body: enc(form) }, context);
      expect(parses).toBe(1);
      if (!verdict.ok) throw new Error(verdict.reason);
      expect(new TextDecoder().decode(verdict.payload)).toBe('{"ref":"refs/heads/main"}');
    },
  );
});

/** The CEL cases of the report: each over a body no larger than the cap, with a filter an author might write. */
const MiB = 1024 * 1024;
const strings = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const CEL_CASES = [
  {
    filter: "sets.intersects(req.a, req.b)",
    req: { a: strings(20_000, "a"), b: strings(20_000, "b") },
    at: "intersects",
  },
  { filter: "req.s.replace('a', 'b') != ''", req: { s: "a".repeat(2.9 * MiB) }, at: "replace" },
  { filter: "req.s.reverse() != ''", req: { s: "ab".repeat(1.45 * MiB) }, at: "reverse" },
  {
    filter: "req.i.exists(i, req.s.charAt(int(i)) == 'z')",
    req: { s: "a".repeat(100_000), i: Array.from({ length: 1000 }, (_, i) => i) },
    at: "charAt",
  },
  { filter: "req.s.matches('(a|b|c)*d$')", req: { s: "abc".repeat(0.95 * MiB) }, at: "matches" },
] as const;

describe("CEL builtins are charged by the size of their inputs", () => {
  test.each(CEL_CASES)("$filter is cut off before it runs past the budget", ({ filter, req, at }) => {
    const program = compile(filter, { variables: ["res", "req"], output: "bool" });
    if (!program.ok) throw new Error(program.error);
    const meter = new CelMeter();
    expect(evaluate(program.program, { res: {}, req }, meter)).toEqual({
      ok: false,
      error: `CEL evaluation exceeded the cost limit of 1000000 steps for one delivery (${at})`,
    });
  });

  test("the same builtins on real-sized inputs stay far within the budget", () => {
    const small = [
      ["sets.intersects(req.a, req.b)", { a: strings(20, "a"), b: strings(20, "a") }],
      ["req.s.replace('a', 'b') != ''", { s: "refs/heads/main" }],
      ["req.i.exists(i, req.s.charAt(int(i)) == 'z')", { s: "a".repeat(200), i: [1, 2, 3] }],
      ["req.s.matches('^refs/tags/v[0-9]+$')", { s: "refs/tags/v12" }],
    ] as const;
    for (const [filter, req] of small) {
      const program = compile(filter, { variables: ["res", "req"], output: "bool" });
      if (!program.ok) throw new Error(program.error);
      const meter = new CelMeter();
      expect(evaluate(program.program, { res: {}, req }, meter).ok).toBe(true);
      expect(meter.steps).toBeGreaterThan(990_000);
    }
  });

  test("parsing req is paid from the same budget", () => {
    const program = compile("true", { variables: ["res", "req"], output: "bool" });
    if (!program.ok) throw new Error(program.error);
    const compiled = { resourceFilter: program.program, resourceFilters: [undefined], oidcProviders: [] };
    const payload = new TextEncoder().encode(JSON.stringify({ s: "x".repeat(100_000) }));
    const meter = new CelMeter({ steps: 1000 });
    expect(deliveryFilters(compiled, { payload, payloadType: "application/json" }, meter)).toEqual({
      ok: false,
      status: 500,
      error: "CEL evaluation exceeded the cost limit of 1000 steps for one delivery (parsing the request body)",
    });
    const roomy = new CelMeter();
    expect(deliveryFilters(compiled, { payload, payloadType: "application/json" }, roomy).ok).toBe(true);
    expect(roomy.steps).toBeLessThanOrEqual(1_000_000 - payload.byteLength * 0.2);
  });

  test("through the server: each case is a 500 naming the budget, and a body past the JSON bounds a 400", async () => {
    await using stack = await startStack();
    const paths: string[] = [];
    for (const [i, { filter }] of CEL_CASES.entries())
      paths.push(
        await stack.readyReceiver("cel", `r${i}`, {
          type: "generic",
          token: "cel-cases-token",
          secretName: "token",
          targets: [{ apiVersion: GIT, kind: "GitRepository", name: `app${i}` }],
          spec: { resourceFilter: filter },
        }),
      );
    for (const [i, { req, at }] of CEL_CASES.entries()) {
      const body = JSON.stringify(req);
      expect(body.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
      const res = await stack.post(paths[i]!, { headers: { "Content-Type": "application/json" }, body });
      expect(res.status).toBe(500);
      expect(res.body.targets[0].reason).toBe(
        `resourceFilter: CEL evaluation exceeded the cost limit of 1000000 steps for one delivery (${at})`,
      );
      expect(stack.requestedAt(GIT, "GitRepository", "cel", `app${i}`)).toBeUndefined();
    }
    for (const body of Object.values(COSTLY_BODIES)) {
      const res = await stack.post(paths[0]!, { headers: { "Content-Type": "application/json" }, body });
      expect(res.status).toBe(400);
      expect(res.body.reason).toStartWith("failed to parse request body as JSON: JSON ");
    }
  });
});

/**
 * An app with one generic Receiver at /hook/filtered whose filter parses the body, over `kube`
 * and guards of `guardConfig`, with no coalescing of PATCHes across deliveries (each waits for its own).
 */
function filteredApp(
  resourceFilter: string,
  kube: Pick<KubePort, "annotateObject" | "listObjects" | "getObject">,
  guardConfig: GuardConfig,
) {
  const s: ReceiverSpec = {
    ...spec("generic"),
    resourceFilter,
    resources: [
      {
        apiVersion: GIT,
        kind: "GitRepository",
        name: "app",
        namespace: undefined,
        matchLabels: undefined,
        filter: undefined,
      },
    ],
  };
  const { handle, guards } = edgeApp([servingEntry("ns", "filtered", s, "t")], {
    kube,
    guards: guardConfig,
    coalesce: Object.assign(<T>(_key: string, write: () => Promise<T>) => write(), { waiting: () => 0 }),
  });
  const post = (body: string) =>
    handle(
      new Request("http://localhost/hook/filtered", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
  return { post, guards };
}

const readsApp: Pick<KubePort, "listObjects" | "getObject"> = {
  listObjects: async () => ({ ok: true, value: [] }),
  getObject: async (ref) => ({
    ok: true,
    value: { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
  }),
};

describe("a small bound on parsed bodies held at once", () => {
  test("Slots: at most `capacity` holders, the others served in order", async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    const releases = await Promise.all([slots.acquire(), slots.acquire()]);
    const later = [3, 4].map((n) => slots.acquire().then((release) => (order.push(n), release)));
    expect({ held: slots.held, waiting: slots.waiting }).toEqual({ held: 2, waiting: 2 });
    releases[0]!();
    releases[0]!(); // a second call releases nothing
    const third = await later[0]!;
    expect({ held: slots.held, waiting: slots.waiting, order }).toEqual({ held: 2, waiting: 1, order: [3] });
    releases[1]!();
    (await later[1]!)();
    third();
    expect({ held: slots.held, waiting: slots.waiting, order }).toEqual({ held: 0, waiting: 0, order: [3, 4] });
  });

  test("Slots: a slot is handed over in a task of its own, so I/O is polled between one holder's parse and the next", async () => {
    const slots = new Slots(1);
    const first = await slots.acquire();
    let granted = false;
    const next = slots.acquire().then((release) => ((granted = true), release));
    first();
    // However many microtasks the releasing holder runs, the next one has not started.
    for (let i = 0; i < 100; i++) await Promise.resolve();
    expect(granted).toBe(false);
    (await next)();
    expect({ granted, held: slots.held }).toEqual({ granted: true, held: 0 });
  });

  test(`deliveries whose filters parse the body: ${MAX_PARSED_BODIES} at a time, the others wait and are served`, async () => {
    // PATCHes wait until the test lets them go: each delivery holds its parsed body meanwhile.
    const held: (() => void)[] = [];
    const { post, guards } = filteredApp(
      "req.ref == 'main'",
      {
        ...readsApp,
        annotateObject: () =>
          new Promise((resolve) => held.push(() => resolve({ ok: true as const, value: undefined }))),
      },
      { valid: { rate: 0, burst: 0 }, failed: { rate: 0, burst: 0 }, maxConcurrent: 64, replayWindowMs: 0 },
    );
    const answers = Array.from({ length: MAX_PARSED_BODIES + 3 }, () => post('{"ref":"main"}'));
    await waitFor("the first deliveries to hold their parsed bodies", () => held.length === MAX_PARSED_BODIES);
    expect({ held: guards.parsedBodies.held, waiting: guards.parsedBodies.waiting }).toEqual({
      held: MAX_PARSED_BODIES,
      waiting: 3,
    });
    // Let every PATCH through as it comes: the waiting ones take the freed slots.
    const drain = setInterval(() => {
      for (const go of held.splice(0)) go();
    }, 1);
    try {
      for (const res of await Promise.all(answers)) expect((await res).status).toBe(200);
    } finally {
      clearInterval(drain);
    }
    expect(guards.parsedBodies.held).toBe(0);
    guards.stop();
  });
});

describe("filters that spend their budget spend the failure budget", () => {
  test("a URL-only receiver whose failure budget is spent is not parsed again; a signed one keeps serving its sender", async () => {
    await using stack = await startStack({ limits: { ...TEST_CONFIG.limits, failedRate: 0.01, failedBurst: 2 } });
    const receiver = (type: string) => ({
      type,
      token: "spent-token",
      secretName: "token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
      spec: { resourceFilter: "sets.intersects(req.a, req.b)" },
    });
    const [generic, github] = await Promise.all([
      stack.readyReceiver("spent", "generic", receiver("generic")),
      stack.readyReceiver("spent", "github", receiver("github")),
    ]);
    const costly = JSON.stringify(CEL_CASES[0].req);
    const json = { "Content-Type": "application/json" };
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await stack.post(generic, { headers: json, body: costly }));
    expect(answers.map((a) => a.status)).toEqual([500, 500, 429]);
    // Refused before its body is read, let alone parsed.
    expect(answers[2]!.body.reason).toBe("too many failed deliveries for this receiver; retry later");
    expect(Number(answers[2]!.headers.get("retry-after"))).toBeGreaterThan(0);

    // Forged signatures spend the github receiver's failure budget; its real sender is still parsed and served.
    const small = JSON.stringify({ a: ["x"], b: ["x"] });
    const forged = { ...json, "X-GitHub-Event": "push", "X-Hub-Signature-256": signature("wrong", small) };
    for (let i = 0; i < 3; i++) await stack.post(github, { headers: forged, body: small });
    const signed = {
      ...json,
      "X-GitHub-Event": "push",
      "X-Hub-Signature-256": signature("spent-token", small),
    };
    const real = await stack.post(github, { headers: signed, body: small });
    expect({ status: real.status, reason: real.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target annotated",
    });
  });

  test("deliveries queued for a parse slot ask the failure budget once they hold it: a burst of 2 parses 2 bodies", async () => {
    const { post, guards } = filteredApp(
      "sets.intersects(req.a, req.b)",
      { ...readsApp, annotateObject: async () => ({ ok: true, value: undefined }) },
      {
        valid: { rate: 0, burst: 0 },
        failed: { rate: 0.001, burst: 2 },
        maxConcurrent: 64,
        replayWindowMs: 0,
        maxParsedBodies: 1,
      },
    );
    const costly = JSON.stringify(CEL_CASES[0].req);
    // All eight are admitted while the budget is whole, and queue for the one parse slot.
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(costly)));
    const bodies = await Promise.all(answers.map(async (a) => ({ status: a.status, reason: (await a.json()).reason })));
    expect(bodies.filter((b) => b.status === 500)).toHaveLength(2);
    expect(bodies.filter((b) => b.status === 429)).toEqual(
      Array(6).fill({ status: 429, reason: "too many failed deliveries for this receiver (filters); retry later" }),
    );
    guards.stop();
  });
});
