/**
 * CEL filters (server/cel, server/targets/filters.ts) on generated `req` bodies: compiling the
 * filters Receivers typically carry, then evaluating them on any JSON a sender can post (any
 * shape, deep nesting, long strings, huge numbers) never throws, always ends in a verdict or an
 * error value, and stays within the per-delivery bound. Two regression tests pin what the fuzzing
 * found: cel-js resolved the runtime type of a `dyn` value by walking its whole first-element
 * chain and kept every type it met, so one deeply nested body cost seconds and gigabytes, and
 * bodies of varied shapes grew memory by ~15 KB per delivery for good.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CelMeter, compile, evaluateBool, RUNTIME_TYPE_DEPTH, type CelProgram } from "../../server/cel";
import { CEL_TIME_LIMIT_MS } from "../../server/limits";
import { deliveryFilters } from "../../server/targets/filters";
import type { CompiledReceiver } from "../../server/receivers/prepare";
import { body, contentType, HUGE_NUMBERS, nested } from "./arbitraries";
import { params } from "./settings";
import { GIT } from "../support/kinds";

/** Filters as Receivers write them: field tests, optional fields, macros, regexes, sizes, deep equality. */
const FILTERS = [
  "req.ref == 'refs/heads/main'",
  "has(req.ref) && req.ref.startsWith('refs/tags/')",
  "req.?repository.?full_name.orValue('') == 'example/app'",
  "'latest' in req.updated_tags",
  "req.commits.exists(c, c.message.contains('[deploy]'))",
  "req.tag.matches('^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$')",
  "size(req) > 0 && req.a == req.b",
  "req.a.all(x, req.a.exists(y, x == y))",
  "res.metadata.name == 'app' && req.push_data.tag != ''",
  "req.action == 'INSERT' || req.event_data.resources[0].tag == 'v1'",
  "req.items.filter(i, i.kind == 'x').size() < 5",
  "string(req.number) == '1'",
];

const compiled: CelProgram[] = FILTERS.map((f) => {
  const c = compile(f, { variables: ["res", "req"], output: "bool" });
  if (!c.ok) throw new Error(c.error);
  return c.program;
});

const RES = {
  apiVersion: GIT,
  kind: "GitRepository",
  metadata: { name: "app", namespace: "flux-system" },
};

/** `req` values: any JSON object, plus the shapes that stress an evaluator. */
const reqValue: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.dictionary(
    fc.constantFrom(
      "ref",
      "a",
      "b",
      "tag",
      "commits",
      "updated_tags",
      "items",
      "number",
      "repository",
      "push_data",
      "event_data",
      "action",
      "x",
    ),
    fc.jsonValue({ maxDepth: 5 }),
    { maxKeys: 6 },
  ),
  fc.record({ a: fc.jsonValue({ maxDepth: 3 }), b: fc.jsonValue({ maxDepth: 3 }) }),
  fc
    .record({
      depth: fc.integer({ min: 1, max: 20_000 }),
      kind: fc.constantFrom("array" as const, "object" as const),
      key: fc.constantFrom("a", "ref", "commits", "items"),
    })
    .map(({ depth, kind, key }) => JSON.parse(`{"${key}":${nested(depth, kind, true)}}`)),
  fc
    .record({ n: fc.integer({ min: 1, max: 3000 }), key: fc.constantFrom("a", "commits", "updated_tags", "items") })
    .map(({ n, key }) => ({
      [key]: Array.from({ length: n }, (_, i) => ({ kind: "x", message: "m".repeat(i % 50) })),
      b: [],
    })),
  fc
    .record({ len: fc.integer({ min: 1, max: 1 << 20 }) })
    .map(({ len }) => ({ ref: "r".repeat(len), tag: `${"v".repeat(len % 5000)}!`, a: "x".repeat(len) })),
  fc.constantFrom(...HUGE_NUMBERS).map((n) => JSON.parse(`{"number":${n},"a":[${n}],"b":[${n}]}`)),
);

describe("filter evaluation", () => {
  test("never throws and stays within the per-delivery bound, whatever req is", () => {
    let slowest = 0;
    fc.assert(
      fc.property(reqValue, (req) => {
        const meter = new CelMeter();
        const started = performance.now();
        for (const program of compiled) {
          const r = evaluateBool(program, { res: RES, req }, meter);
          if (r.ok) expect(typeof r.value).toBe("boolean");
          else expect(typeof r.error).toBe("string");
        }
        slowest = Math.max(slowest, performance.now() - started);
      }),
      params(150),
    );
    // Every expression of a delivery shares one budget; generous slack for a loaded CI machine
    // (a GC pause), still far below what an unbounded evaluation takes.
    expect(slowest).toBeLessThan(CEL_TIME_LIMIT_MS + 1900);
  });

  test("deliveryFilters takes any payload and content type, and every target gets a verdict", () => {
    const receiver: CompiledReceiver = {
      resourceFilter: compiled[0],
      resourceFilters: [undefined, ...compiled.slice(1)],
      oidcProviders: [],
    };
    fc.assert(
      fc.property(body, fc.option(contentType, { nil: "" }), (payload, payloadType) => {
        const built = deliveryFilters(receiver, { payload, payloadType }, new CelMeter());
        if (!built.ok) {
          expect(built.error).toStartWith("failed to parse request body as JSON");
          return;
        }
        for (let i = 0; i < compiled.length; i++) {
          const verdict = built.filters.forResource(i)?.(RES);
          if (verdict)
            expect(verdict.ok ? typeof verdict.accept : typeof verdict.error).toBe(verdict.ok ? "boolean" : "string");
        }
      }),
      params(200),
    );
  });
});

describe("regression: runtime types of deeply nested dyn values", () => {
  const program = compiled[0]!; // req.ref == 'refs/heads/main'

  const heapMiB = () => {
    Bun.gc(true);
    return process.memoryUsage().heapUsed / 2 ** 20;
  };

  test(`a body nested 20,000 levels deep is compared in milliseconds (types are looked for ${RUNTIME_TYPE_DEPTH} levels deep)`, () => {
    const before = heapMiB();
    for (const kind of ["object", "array"] as const) {
      const req = JSON.parse(`{"ref":${nested(20_000, kind, true)}}`);
      const started = performance.now();
      const r = evaluateBool(program, { res: RES, req }, new CelMeter());
      // Before the fix: 54 s and 9 GB of heap for the object case (the bound leaves room for a loaded machine).
      expect(performance.now() - started).toBeLessThan(2000);
      expect(r).toEqual({ ok: true, value: false });
    }
    expect(heapMiB() - before).toBeLessThan(32);
  });

  test("bodies of ever-new shapes do not grow memory", () => {
    // Chains of lists and objects 24 levels deep, a new shape each time: each one used to add
    // its types (~15 KB) to the evaluator's registry, for good.
    const leaves = ["1", '"s"', "true", "null", "1.5", "{}", "[]"];
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 48271) >>> 0) % 2147483647);
    const chain = (d: number): string =>
      d === 0 ? leaves[next() % leaves.length]! : next() % 2 ? `[${chain(d - 1)}]` : `{"k":${chain(d - 1)}}`;
    const run = (n: number) => {
      for (let i = 0; i < n; i++)
        evaluateBool(program, { res: RES, req: JSON.parse(`{"ref":${chain(24)}}`) }, new CelMeter());
    };
    run(500);
    const before = heapMiB();
    run(3000);
    // Before the fix: about 45 MB more.
    expect(heapMiB() - before).toBeLessThan(8);
  });

  test("equality and membership still see nested values", () => {
    const check = (expression: string, req: Record<string, unknown>) => {
      const c = compile(expression, { variables: ["res", "req"], output: "bool" });
      if (!c.ok) throw new Error(c.error);
      return evaluateBool(c.program, { res: RES, req }, new CelMeter());
    };
    expect(check("req.a == req.b", { a: [[[[[1]]]]], b: [[[[[1]]]]] })).toEqual({ ok: true, value: true });
    expect(check("req.a == req.b", { a: [[[[[1]]]]], b: [[[[[2]]]]] })).toEqual({ ok: true, value: false });
    expect(check("req.a == req.b", { a: { x: { y: { z: { w: 1 } } } }, b: { x: { y: { z: { w: "1" } } } } })).toEqual({
      ok: true,
      value: false,
    });
    expect(check("req.a in req.b", { a: [[[["x"]]]], b: [[[[["x"]]]]] })).toEqual({ ok: true, value: true });
    expect(check("req.a == [[1.0]]", { a: [[1]] })).toEqual({ ok: true, value: true });
  });
});
