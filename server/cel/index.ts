/**
 * @module server/cel
 * CEL as Flux uses it (fluxcd/pkg runtime/cel): expressions over JSON-like variables (`res`,
 * `req`, `claims`, `vars`, each a google.protobuf.Struct in Flux, a `map<string, dyn>` here),
 * compiled with a type check, optionally required to return bool, and evaluated under a cost
 * bound.
 *
 * The evaluator is @marcbachmann/cel-js: it has a type checker (undeclared references and the
 * output type are compile errors, as in cel-go), optional types (`?.`, `[?]`, `.value()`) and
 * homogeneous aggregate literals; server/cel/extensions.ts adds what it lacks of the libraries
 * Flux enables.
 *
 * Two things are done here around the library, because expressions run on attacker-supplied
 * bodies:
 *   - a cost bound (CelMeter): every evaluation step of every expression of one delivery is
 *     counted against CEL_COST_LIMIT, and the time spent evaluating against CEL_TIME_LIMIT_MS,
 *     so no body can make a filter run for long (cel-go has an interrupt check every 100
 *     comprehension iterations for the same reason);
 *   - `matches` runs on RE2 (re2js, linear time, the syntax cel-go uses) instead of the
 *     library's backtracking JS RegExp, so no body can trigger catastrophic backtracking;
 *   - the runtime type of a `dyn` value (which picks an operator's or a function's overload) is
 *     looked for RUNTIME_TYPE_DEPTH levels deep only (boundRuntimeTypes).
 * All three are attached through the evaluator object the library passes to AST nodes (a version
 * bump that changes it fails the tests in test/server/cel.test.ts, not silently).
 */
import { Environment } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";
import { CEL_COST_LIMIT, CEL_TIME_LIMIT_MS } from "../limits";
import { registerExtensions } from "./extensions";
import { functionCost, matchCost, operatorCost, SIZED_OPERATORS } from "./costs";

/** The variables an expression may use; all are JSON-like maps. */
export type CelVariable = "res" | "req" | "claims" | "vars";

export interface CelProgram {
  /** The expression as written. */
  readonly expression: string;
  /** @internal the library's callable program. */
  readonly run: (bindings: Record<string, unknown>) => unknown;
}

export type CompileResult = { ok: true; program: CelProgram } | { ok: false; error: string };
export type EvalResult<T> = { ok: true; value: T } | { ok: false; error: string };

// ---------------------------------------------------------------------------------------------
// Cost bound

/** Thrown from inside an evaluation when the meter runs out; unwinds the evaluator. */
class CelLimitExceeded extends Error {}

/**
 * The evaluation budget of one delivery. Every expression evaluated for the delivery (each
 * filter, for each target; each OIDC variable and validation) draws from it, so the bound is on
 * what one request can cost the server, whatever the number of targets.
 */
export class CelMeter {
  #steps: number;
  #remainingMs: number;
  #deadline = Infinity;
  /** Set once the budget ran out; every later evaluation fails at once. */
  exceeded: string | undefined;

  constructor(limits: { steps?: number; ms?: number } = {}) {
    this.#steps = limits.steps ?? CEL_COST_LIMIT;
    this.#remainingMs = limits.ms ?? CEL_TIME_LIMIT_MS;
    this.limits = { steps: this.#steps, ms: this.#remainingMs };
  }

  readonly limits: { readonly steps: number; readonly ms: number };

  /** Steps left (for tests and logs). */
  get steps(): number {
    return Math.max(0, this.#steps);
  }

  /** One evaluation step (one AST node evaluated). */
  tick(): void {
    // The clock is read every 64 steps: a builtin call is charged by the size of its inputs
    // before it runs (server/cel/costs.ts), so no single step overshoots the time limit by much.
    if (--this.#steps >= 0 && ((this.#steps & 63) !== 0 || performance.now() <= this.#deadline)) return;
    this.exceeded ??=
      this.#steps < 0
        ? `CEL evaluation exceeded the cost limit of ${this.limits.steps} steps for one delivery`
        : `CEL evaluation exceeded the time limit of ${this.limits.ms} ms for one delivery`;
    this.#steps = -1;
    throw this.#stop();
  }

  #stopError: CelLimitExceeded | undefined;

  /**
   * The one error every step throws once the budget is spent. `all` and `exists` absorb errors
   * of single elements (CEL's semantics) and go on iterating, so each later step throws again: a
   * new Error each time, stack captured, made a spent budget over 250,000 elements cost 0.4 s.
   */
  #stop(): CelLimitExceeded {
    this.#stopError ??= new CelLimitExceeded(this.exceeded);
    return this.#stopError;
  }

  /**
   * Charges `steps` at once: a builtin call by the size of its inputs (server/cel/costs.ts), before
   * it runs. Throws, like tick, when the budget runs out.
   */
  charge(steps: number, what: string): void {
    if (this.spend(steps, what)) throw this.#stop();
  }

  /** As charge, outside an evaluation (the parse of `req`): the reason when the budget ran out. */
  spend(steps: number, what: string): string | undefined {
    if (this.exceeded) return this.exceeded;
    if (steps <= 0) return undefined;
    this.#steps -= steps;
    if (this.#steps >= 0) return undefined;
    this.exceeded = `CEL evaluation exceeded the cost limit of ${this.limits.steps} steps for one delivery (${what})`;
    this.#steps = -1;
    return this.exceeded;
  }

  /** Runs one evaluation against the budget; time between evaluations (API calls) is not counted. */
  measure<T>(fn: () => T): T {
    const started = performance.now();
    this.#deadline = started + this.#remainingMs;
    try {
      return fn();
    } finally {
      this.#remainingMs -= performance.now() - started;
      this.#deadline = Infinity;
    }
  }
}

/** The meter of the evaluation in progress (evaluation is synchronous, so one at a time). */
let activeMeter: CelMeter | undefined;

interface EvaluatorLike {
  run(ast: unknown, ctx: unknown): unknown;
  /** Evaluates and returns the error instead of throwing it (`all`, `exists` absorb element errors). */
  tryEval(ast: unknown, ctx: unknown): unknown;
}

/**
 * Counts every node evaluation of `ev` against the active meter. cel-js evaluates each child
 * node, and each comprehension step, through `ev.run`; the root node is ticked by `evaluate`.
 */
function instrument(ev: EvaluatorLike): void {
  const run = ev.run;
  ev.run = function (ast, ctx) {
    activeMeter?.tick();
    return run.call(this, ast, ctx);
  };
  // A spent budget is not an element's error for `all` or `exists` to absorb: it ends the
  // evaluation at once, instead of one caught throw per remaining element.
  const tryEval = ev.tryEval;
  ev.tryEval = function (ast, ctx) {
    const result = tryEval.call(this, ast, ctx);
    if (result instanceof CelLimitExceeded) throw result;
    return result;
  };
}

// ---------------------------------------------------------------------------------------------
// Runtime types of dyn values

/**
 * How many levels of a `dyn` value's first-element chain the evaluator inspects to pick an
 * overload (`[[1]]` is `list<list<double>>` two levels down; deeper, `list<dyn>`/`map<dyn, dyn>`).
 * cel-js walks the whole chain and keeps every type it meets in its registry for good: a body
 * nested 5,000 levels deep cost 3 s and 900 MB for one `req.a == 1`, and bodies with varied
 * shapes grew the registry by ~15 KB per delivery. Three levels keep both bounded (at most ~90
 * distinct JSON-derived types) and cover what filters compare (strings, lists of strings).
 */
export const RUNTIME_TYPE_DEPTH = 3;

interface TypingEvaluator {
  debugType(value: unknown): unknown;
  debugTypeDeep(value: unknown): unknown;
}

/** Caps the depth of `ev.debugTypeDeep`, which recurses through `this`, so the override sees every level. */
function boundRuntimeTypes(ev: TypingEvaluator): void {
  const deep = ev.debugTypeDeep;
  let depth = 0;
  ev.debugTypeDeep = function (value) {
    if (depth >= RUNTIME_TYPE_DEPTH) return this.debugType(value);
    depth++;
    try {
      return deep.call(this, value);
    } finally {
      depth--;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// RE2 `matches`

interface AstNode {
  op: string;
  args: unknown;
  evaluate: (ev: EvaluatorLike, ast: AstNode, ctx: unknown) => unknown;
}

const isNode = (x: unknown): x is AstNode =>
  typeof x === "object" && x !== null && typeof (x as AstNode).op === "string" && "args" in x;

/**
 * Calls `fn` on every node of an AST, parents before children. Node arguments are nodes, arrays
 * of nodes, or (comprehensions) plain objects holding nodes; each node is visited once.
 */
function walk(root: unknown, fn: (node: AstNode) => void): void {
  const seen = new Set<object>();
  const visit = (x: unknown) => {
    if (typeof x !== "object" || x === null || seen.has(x)) return;
    seen.add(x);
    if (Array.isArray(x)) return x.forEach(visit);
    if (isNode(x)) {
      fn(x);
      return visit(x.args);
    }
    if (Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) visit(v);
  };
  visit(root);
}

/** Largest number of compiled patterns kept per `matches` call site (patterns may be dynamic). */
const REGEX_CACHE_PER_SITE = 16;

function re2(pattern: string): RE2JS {
  return RE2JS.compile(pattern);
}

/**
 * Replaces the evaluation of every `s.matches(p)` / `matches(s, p)` call with RE2. A constant
 * pattern is compiled here, so an invalid one is a compile error (as with cel-go's OptOptimize).
 */
function useRe2(root: AstNode): string | undefined {
  let problem: string | undefined;
  walk(root, (x) => {
    const args = x.args as unknown[];
    let subject: AstNode | undefined;
    let patternNode: AstNode | undefined;
    if (x.op === "rcall" && args[0] === "matches" && Array.isArray(args[2]) && args[2].length === 1) {
      subject = args[1] as AstNode;
      patternNode = args[2][0] as AstNode;
    } else if (x.op === "call" && args[0] === "matches" && Array.isArray(args[1]) && args[1].length === 2) {
      [subject, patternNode] = args[1] as AstNode[];
    }
    if (subject && patternNode) {
      const cache = new Map<string, RE2JS>();
      if (patternNode.op === "value" && typeof patternNode.args === "string") {
        try {
          cache.set(patternNode.args, re2(patternNode.args));
        } catch (err) {
          problem ??= `invalid regular expression ${JSON.stringify(patternNode.args)}: ${(err as Error).message}`;
        }
      }
      const s = subject;
      const p = patternNode;
      x.evaluate = (ev, _ast, ctx) => {
        const text = ev.run(s, ctx);
        const pattern = ev.run(p, ctx);
        if (typeof text !== "string" || typeof pattern !== "string") throw new Error("no such overload: matches");
        activeMeter?.charge(matchCost(text, pattern), "matches");
        let compiled = cache.get(pattern);
        if (!compiled) {
          compiled = re2(pattern);
          if (cache.size >= REGEX_CACHE_PER_SITE) cache.clear();
          cache.set(pattern, compiled);
        }
        return compiled.matcher(text).find();
      };
    }
  });
  return problem;
}

// ---------------------------------------------------------------------------------------------
// Builtins charged by the size of their inputs

interface CheckedNode extends AstNode {
  /** Set by cel-js's type check: the call's overload dispatch, called with the evaluated operands. */
  handle?: (...args: unknown[]) => unknown;
}

/**
 * Wraps every function call and sized operator of a checked AST so that its cost
 * (server/cel/costs.ts) is charged to the active meter before it runs. cel-js calls
 * `handle(values, …)` for a call (the receiver first for a method) and `handle(left, right, …)`
 * for a binary operator.
 */
function chargeBuiltins(root: AstNode): void {
  walk(root, (x) => {
    const node = x as CheckedNode;
    const handle = node.handle;
    if (typeof handle === "function") {
      if (node.op === "call" || node.op === "rcall") {
        const name = (node.args as unknown[])[0] as string;
        node.handle = function (this: unknown, values: unknown, ...rest: unknown[]) {
          if (activeMeter && Array.isArray(values)) activeMeter.charge(functionCost(name, values), name);
          return handle.call(this, values, ...rest);
        };
      } else if (SIZED_OPERATORS.has(node.op)) {
        const op = node.op;
        node.handle = function (this: unknown, left: unknown, right: unknown, ...rest: unknown[]) {
          activeMeter?.charge(operatorCost(op, left, right), op);
          return handle.call(this, left, right, ...rest);
        };
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Environments

interface Env {
  readonly env: Environment;
}

const environments = new Map<string, Env>();

/** Parse-time limits: expressions come from Receiver authors, not senders; these are generous. */
const PARSE_LIMITS = {
  maxAstNodes: 10_000,
  maxDepth: 100,
  maxListElements: 1000,
  maxMapEntries: 1000,
  maxCallArguments: 32,
};

function environment(variables: readonly CelVariable[]): Env {
  const key = [...variables].sort().join(",");
  let cached = environments.get(key);
  if (cached) return cached;
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: true, limits: PARSE_LIMITS });
  for (const v of variables) env.registerVariable(v, "map<string, dyn>");
  registerExtensions(env);
  // Reach the evaluator once, through a trivial program's root node, to count its steps.
  const probe = env.parse("true") as unknown as { ast: AstNode; (ctx: Record<string, unknown>): unknown };
  const root = probe.ast;
  const original = root.evaluate;
  let captured: EvaluatorLike | undefined;
  root.evaluate = function (ev, ast, ctx) {
    captured = ev;
    return original.call(this, ev, ast, ctx);
  };
  probe(Object.fromEntries(variables.map((v) => [v, {}])));
  const typing = captured as unknown as Partial<TypingEvaluator> | undefined;
  if (
    !captured ||
    typeof captured.run !== "function" ||
    typeof captured.tryEval !== "function" ||
    typeof typing?.debugTypeDeep !== "function" ||
    typeof typing.debugType !== "function"
  ) {
    throw new Error("cel: cannot instrument the evaluator of @marcbachmann/cel-js");
  }
  instrument(captured);
  boundRuntimeTypes(captured as unknown as TypingEvaluator);
  cached = { env };
  environments.set(key, cached);
  return cached;
}

// ---------------------------------------------------------------------------------------------
// Compile and evaluate

/** `<input>:line:col` of an offset, as cel-go reports positions. */
function position(expression: string, offset: number | undefined): string {
  if (offset === undefined) return "";
  const before = expression.slice(0, offset);
  const line = before.split("\n").length;
  const col = offset - (before.lastIndexOf("\n") + 1) + 1;
  return `<input>:${line}:${col}: `;
}

/** cel-js's error, worded as cel-go words the common ones. */
function issue(expression: string, err: unknown): string {
  const error = err as { summary?: string; message?: string; range?: { start: number } };
  let summary = error.summary ?? error.message ?? String(err);
  const unknown = /^Unknown variable: (.+)$/.exec(summary);
  if (unknown) summary = `undeclared reference to '${unknown[1]}' (in container '')`;
  return `ERROR: ${position(expression, error.range?.start)}${summary.split("\n")[0]}`;
}

export interface CompileOptions {
  readonly variables: readonly CelVariable[];
  /** Required output type (Flux's WithOutputType); any type when undefined. */
  readonly output?: "bool";
}

/**
 * Parses and type-checks an expression, with Flux's error texts:
 * `failed to parse the CEL expression '<expr>': ERROR: <input>:1:1: undeclared reference to …`
 * and `CEL expression output type mismatch: expected bool, got string`.
 */
export function compile(expression: string, options: CompileOptions): CompileResult {
  const { env } = environment(options.variables);
  let parsed: ReturnType<Environment["parse"]>;
  try {
    parsed = env.parse(expression);
  } catch (err) {
    return { ok: false, error: `failed to parse the CEL expression '${expression}': ${issue(expression, err)}` };
  }
  const checked = parsed.check();
  if (!checked.valid)
    return {
      ok: false,
      error: `failed to parse the CEL expression '${expression}': ${issue(expression, checked.error)}`,
    };
  if (options.output && checked.type !== options.output) {
    return { ok: false, error: `CEL expression output type mismatch: expected ${options.output}, got ${checked.type}` };
  }
  const regexProblem = useRe2(parsed.ast as unknown as AstNode);
  if (regexProblem) return { ok: false, error: `failed to create CEL program: ${regexProblem}` };
  chargeBuiltins(parsed.ast as unknown as AstNode);
  return { ok: true, program: { expression, run: parsed as unknown as CelProgram["run"] } };
}

/** Evaluates a compiled program; every failure (including the cost bound) is a value. */
export function evaluate(program: CelProgram, bindings: Record<string, unknown>, meter: CelMeter): EvalResult<unknown> {
  if (meter.exceeded) return { ok: false, error: meter.exceeded };
  const previous = activeMeter;
  activeMeter = meter;
  try {
    const value = meter.measure(() => {
      meter.tick();
      return program.run(bindings);
    });
    // An error inside `a || b` may be absorbed by CEL's logic; a spent budget never is.
    if (meter.exceeded) return { ok: false, error: meter.exceeded };
    if (value instanceof Promise) return { ok: false, error: "asynchronous CEL functions are not supported" };
    return { ok: true, value };
  } catch (err) {
    if (meter.exceeded) return { ok: false, error: meter.exceeded };
    return {
      ok: false,
      error: `failed to evaluate the CEL expression '${program.expression}': ${(err as { summary?: string }).summary ?? (err as Error).message}`,
    };
  } finally {
    activeMeter = previous;
  }
}

/** Evaluates a program that was compiled with `output: "bool"`. */
export function evaluateBool(
  program: CelProgram,
  bindings: Record<string, unknown>,
  meter: CelMeter,
): EvalResult<boolean> {
  const r = evaluate(program, bindings, meter);
  if (!r.ok) return r;
  if (typeof r.value !== "boolean")
    return { ok: false, error: `failed to evaluate CEL expression as boolean: '${program.expression}'` };
  return { ok: true, value: r.value };
}
