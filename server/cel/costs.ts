/**
 * @module server/cel/costs
 * What one CEL builtin call costs, in evaluation steps, from the size of its inputs. It is
 * charged to the delivery's CelMeter before the call runs, so a call that would run past the
 * budget never starts: one step counted per AST node does not weigh `sets.intersects` over two
 * lists of 20,000 strings (8 s here) or `reverse` on a 3 MiB string (0.2 s).
 *
 * The shapes are cel-go's cost model (checker/cost.go, interpreter/runtimecost.go, and the
 * Kubernetes CEL library's costs for the extension functions): string functions are linear in
 * the string's length, `matches` in the length times the pattern's, `sets.*` the product of the
 * lists' sizes, `in` and list equality linear in the list. The weights are measured on this
 * evaluator (cel-js and re2js under Bun), so that a charged step takes no longer than an
 * evaluated node (30-100 ns): cel-go's 0.1 per character is calibrated for Go, and a builtin that
 * loops in JS per code point costs 20 times a native scan.
 */

/** Native scans (contains, indexOf, size, lowerAscii, ==): ~5 ns a character. cel-go: 0.1. */
export const SCAN_STEPS_PER_CHAR = 0.2;
/** Functions that build per code point in JS (reverse, charAt, split, replace, quote): ~100 ns. */
export const BUILD_STEPS_PER_CHAR = 4;
/** RE2 (re2js) per character of the subject, plus per character of the pattern (NFA states). */
export const MATCH_STEPS_PER_CHAR = 4;
export const MATCH_STEPS_PER_CHAR_AND_PATTERN_CHAR = 0.5;
/** One comparison of two elements (sets.*, `in`, list equality). */
export const COMPARE_STEPS = 1;

/** The size cel-go's cost model uses: characters of a string, bytes, elements of a list or map. */
export function sizeOf(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  if (typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype)
    return Object.keys(v).length;
  return 1;
}

const textLength = (v: unknown) => (typeof v === "string" || v instanceof Uint8Array ? v.length : 0);
const scanned = (values: readonly unknown[]) => {
  let chars = 0;
  for (const v of values) chars += textLength(v);
  return chars * SCAN_STEPS_PER_CHAR;
};
const built = (v: unknown) => textLength(v) * BUILD_STEPS_PER_CHAR;

/** Steps of `s.matches(p)` (the subject and the pattern as evaluated). */
export function matchCost(subject: unknown, pattern: unknown): number {
  const p = textLength(pattern);
  return Math.ceil(textLength(subject) * (MATCH_STEPS_PER_CHAR + p * MATCH_STEPS_PER_CHAR_AND_PATTERN_CHAR));
}

type Cost = (values: readonly unknown[]) => number;

/**
 * Functions by name; `values` are the call's evaluated arguments, the receiver first for a
 * method call (`sets.*` have the namespace as receiver). Any other function is charged as a scan
 * of its string and bytes arguments.
 */
const FUNCTION_COSTS: Readonly<Record<string, Cost>> = {
  // A list's size is stored; a string's is counted in code points.
  size: ([v]) => textLength(v) * SCAN_STEPS_PER_CHAR,
  reverse: ([s]) => built(s),
  charAt: ([s]) => built(s),
  split: ([s]) => built(s),
  quote: ([, s]) => built(s),
  // The output is at most the subject plus one replacement per match: charged before it is built.
  replace: ([s, from, to]) => {
    const matches = textLength(s) / Math.max(1, textLength(from)) + 1;
    return built(s) + matches * textLength(to) * SCAN_STEPS_PER_CHAR;
  },
  join: ([list, sep]) => {
    if (!Array.isArray(list)) return 0;
    let chars = list.length * textLength(sep);
    for (const v of list) chars += textLength(v);
    return chars * SCAN_STEPS_PER_CHAR;
  },
  format: ([template, args]) => scanned([template, ...(Array.isArray(args) ? args : [])]),
  matches: ([s, p]) => matchCost(s, p),
  contains: (values) => (values.length === 3 ? setCost(values) : scanned(values)),
  intersects: (values) => setCost(values),
  equivalent: (values) => 2 * setCost(values),
};

/** sets.contains/intersects(a, b): every element of one compared with every element of the other. */
function setCost([, a, b]: readonly unknown[]): number {
  return sizeOf(a) * sizeOf(b) * COMPARE_STEPS;
}

export function functionCost(name: string, values: readonly unknown[]): number {
  const cost = FUNCTION_COSTS[name];
  return Math.ceil(cost ? cost(values) : scanned(values));
}

/** Operators whose cost grows with their operands. */
export const SIZED_OPERATORS: ReadonlySet<string> = new Set(["==", "!=", "in", "+", "<", "<=", ">", ">="]);

export function operatorCost(op: string, left: unknown, right: unknown): number {
  if (op === "in") return Array.isArray(right) ? right.length * COMPARE_STEPS : 0;
  if (op === "+") {
    // Strings are joined as ropes; lists are copied.
    if (Array.isArray(left) || Array.isArray(right)) return sizeOf(left) + sizeOf(right);
    return Math.ceil((textLength(left) + textLength(right)) * SCAN_STEPS_PER_CHAR);
  }
  // Comparisons stop at the shorter operand.
  if (typeof left === "string" || left instanceof Uint8Array)
    return Math.ceil(Math.min(textLength(left), textLength(right)) * SCAN_STEPS_PER_CHAR);
  if (typeof left === "object" && left !== null && typeof right === "object" && right !== null)
    return Math.min(sizeOf(left), sizeOf(right)) * COMPARE_STEPS;
  return 0;
}
