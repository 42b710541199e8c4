/**
 * @module server/cel/extensions
 * The CEL functions Flux enables (pkg/runtime/cel: `ext.Strings`, `ext.Sets`, `ext.Encoders`,
 * `OptionalTypes`) that @marcbachmann/cel-js does not ship, registered on an Environment. The
 * library already has the rest of ext.Strings (indexOf, lastIndexOf, join, lowerAscii,
 * upperAscii, split, substring, trim) and of the optional library (`?.`, `[?]`, optional.of,
 * optional.none, value, hasValue, or, orValue).
 *
 * Semantics follow cel-go's: strings are indexed by code point, equality across int, uint and
 * double is numeric (`sets.contains([1], [1.0])` is true).
 */
import { type Environment, Optional } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";

/** Code points, as CEL indexes strings (a JS string indexes UTF-16 units). */
const codePoints = (s: string) => Array.from(s);

class CelExtensionError extends Error {}

/** A cel-js uint: `{ valueOf(): bigint }` (class UnsignedInt). */
function numeric(v: unknown): number | bigint | undefined {
  if (typeof v === "bigint" || typeof v === "number") return v;
  if (typeof v === "object" && v !== null && v.constructor?.name === "UnsignedInt")
    return (v as { valueOf(): bigint }).valueOf();
  return undefined;
}

/** CEL equality (heterogeneous: numbers compare by value across int, uint and double). */
export function celEquals(a: unknown, b: unknown): boolean {
  const x = numeric(a);
  const y = numeric(b);
  if (x !== undefined || y !== undefined) {
    if (x === undefined || y === undefined) return false;
    // bigint == number compares by mathematical value in JS, which is CEL's rule.
    // biome-ignore lint/suspicious/noDoubleEquals: CEL's heterogeneous equality (1 == 1.0, 1u == 1n)
    return x == y;
  }
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));
  }
  if (a instanceof Optional || b instanceof Optional) {
    if (!(a instanceof Optional && b instanceof Optional)) return false;
    return a.hasValue() === b.hasValue() && (!a.hasValue() || celEquals(a.value(), b.value()));
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => celEquals(v, b[i]));
  }
  const entries = (m: object): [unknown, unknown][] => (m instanceof Map ? [...m.entries()] : Object.entries(m));
  const ea = entries(a);
  const eb = entries(b);
  if (ea.length !== eb.length) return false;
  return ea.every(([k, v]) => eb.some(([k2, v2]) => celEquals(k, k2) && celEquals(v, v2)));
}

const containsAll = (list: readonly unknown[], sub: readonly unknown[]) =>
  sub.every((x) => list.some((y) => celEquals(x, y)));

/** Go's %v-like rendering for `format`'s %s verb. */
function display(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null) return "null";
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "number") return Number.isInteger(v) ? v.toFixed(0) : String(v);
  if (numeric(v) !== undefined) return String(numeric(v));
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  if (Array.isArray(v)) return `[${v.map(display).join(", ")}]`;
  if (v instanceof Map) return `{${[...v.entries()].map(([k, x]) => `${display(k)}: ${display(x)}`).join(", ")}}`;
  if (typeof v === "object")
    return `{${Object.entries(v as object)
      .map(([k, x]) => `${k}: ${display(x)}`)
      .join(", ")}}`;
  return String(v);
}

/**
 * `string.format(list)`: the verbs of cel-go's ext.Strings (%s %d %f %e %x %X %o %b %%), with an
 * optional precision for %f and %e.
 */
function format(template: string, args: readonly unknown[]): string {
  let next = 0;
  const arg = (verb: string) => {
    if (next >= args.length) throw new CelExtensionError(`index ${next} out of range for format verb %${verb}`);
    return args[next++];
  };
  return template.replace(/%(?:\.(\d+))?([sdfexXob%])/g, (_m, precision: string | undefined, verb: string) => {
    if (verb === "%") return "%";
    const v = arg(verb);
    const n = numeric(v);
    switch (verb) {
      case "s":
        return display(v);
      case "d":
        if (n === undefined || (typeof n === "number" && !Number.isInteger(n)))
          throw new CelExtensionError("%d needs an integer");
        return String(n);
      case "f":
      case "e": {
        if (n === undefined) throw new CelExtensionError(`%${verb} needs a number`);
        const digits = precision === undefined ? 6 : Number(precision);
        return verb === "f"
          ? Number(n).toFixed(digits)
          : Number(n)
              .toExponential(digits)
              .replace(/e([+-])(\d)$/, "e$10$2");
      }
      default: {
        const radix = verb === "o" ? 8 : verb === "b" ? 2 : 16;
        let text: string;
        if (n !== undefined) text = (typeof n === "bigint" ? n : BigInt(Math.trunc(n))).toString(radix);
        else if (typeof v === "string" || v instanceof Uint8Array) {
          if (radix !== 16) throw new CelExtensionError(`%${verb} needs an integer`);
          text = Buffer.from(typeof v === "string" ? Buffer.from(v, "utf8") : v).toString("hex");
        } else throw new CelExtensionError(`%${verb} needs an integer, a string or bytes`);
        return verb === "X" ? text.toUpperCase() : text;
      }
    }
  });
}

/** Go's strconv.Quote for valid UTF-8: the string CEL's `strings.quote` returns. */
function quote(s: string): string {
  const escapes: Record<string, string> = {
    "\x07": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
  };
  let out = '"';
  for (const ch of s) {
    const e = escapes[ch];
    if (e) out += e;
    else if (ch.codePointAt(0)! < 0x20 || ch === "\x7f")
      out += `\\x${ch.codePointAt(0)!.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's strings.Replace: at most `n` replacements (all when n < 0); an empty `from` matches around every code point. */
function replace(s: string, from: string, to: string, n: number): string {
  if (n === 0) return s;
  if (from === "") {
    const cps = codePoints(s);
    let out = "";
    let done = 0;
    for (let i = 0; i <= cps.length; i++) {
      if (n < 0 || done < n) {
        out += to;
        done++;
      }
      out += cps[i] ?? "";
    }
    return out;
  }
  const parts = s.split(from);
  if (n < 0 || n >= parts.length - 1) return parts.join(to);
  return parts.slice(0, n + 1).join(to) + from + parts.slice(n + 1).join(from);
}

/** Zero values, for optional.ofNonZeroValue. */
function isZero(v: unknown): boolean {
  const n = numeric(v);
  // biome-ignore lint/suspicious/noDoubleEquals: zero of any numeric kind (0, 0n, 0.0)
  if (n !== undefined) return n == 0;
  if (v === null || v === false || v === "") return true;
  if (v instanceof Uint8Array) return v.length === 0;
  if (Array.isArray(v)) return v.length === 0;
  if (v instanceof Map) return v.size === 0;
  if (v instanceof Optional) return !v.hasValue();
  if (typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype)
    return Object.keys(v).length === 0;
  return false;
}

class SetsNamespace {}
class Base64Namespace {}
class StringsNamespace {}

/** Registers the missing functions on `env` (before it is used or cloned). */
export function registerExtensions(env: Environment): void {
  // OptionalTypes (cel-go optional library v2+): first/last of a list, and ofNonZeroValue.
  env.registerFunction("list<A>.first(): optional<A>", (l: unknown[]) =>
    l.length > 0 ? Optional.of(l[0]) : Optional.none(),
  );
  env.registerFunction("list<A>.last(): optional<A>", (l: unknown[]) =>
    l.length > 0 ? Optional.of(l[l.length - 1]) : Optional.none(),
  );
  env.registerFunction("OptionalNamespace.ofNonZeroValue(A): optional<A>", (_ns: unknown, v: unknown) =>
    isZero(v) ? Optional.none() : Optional.of(v),
  );

  // ext.Strings
  env.registerFunction("string.charAt(int): string", (s: string, i: bigint) => {
    const cps = codePoints(s);
    if (i < 0n || i > BigInt(cps.length)) throw new CelExtensionError(`index out of range: ${i}`);
    return cps[Number(i)] ?? "";
  });
  env.registerFunction("string.replace(string, string): string", (s: string, from: string, to: string) =>
    replace(s, from, to, -1),
  );
  env.registerFunction(
    "string.replace(string, string, int): string",
    (s: string, from: string, to: string, n: bigint) => replace(s, from, to, Number(n)),
  );
  // The global form of matches (cel-js has only the method); RE2, as server/cel runs every matches.
  env.registerFunction("matches(string, string): bool", (s: string, p: string) => RE2JS.compile(p).matcher(s).find());
  env.registerFunction("string.reverse(): string", (s: string) => codePoints(s).reverse().join(""));
  env.registerFunction("string.format(list): string", (s: string, args: unknown[]) => format(s, args));
  env.registerType("StringsNamespace", StringsNamespace);
  env.registerConstant("strings", "StringsNamespace", new StringsNamespace());
  env.registerFunction("StringsNamespace.quote(string): string", (_ns: unknown, s: string) => quote(s));

  // ext.Sets
  env.registerType("SetsNamespace", SetsNamespace);
  env.registerConstant("sets", "SetsNamespace", new SetsNamespace());
  env.registerFunction("SetsNamespace.contains(list, list): bool", (_ns: unknown, a: unknown[], b: unknown[]) =>
    containsAll(a, b),
  );
  env.registerFunction(
    "SetsNamespace.equivalent(list, list): bool",
    (_ns: unknown, a: unknown[], b: unknown[]) => containsAll(a, b) && containsAll(b, a),
  );
  env.registerFunction("SetsNamespace.intersects(list, list): bool", (_ns: unknown, a: unknown[], b: unknown[]) =>
    a.some((x) => b.some((y) => celEquals(x, y))),
  );

  // ext.Encoders
  env.registerType("Base64Namespace", Base64Namespace);
  env.registerConstant("base64", "Base64Namespace", new Base64Namespace());
  env.registerFunction("Base64Namespace.encode(bytes): string", (_ns: unknown, b: Uint8Array) =>
    Buffer.from(b).toString("base64"),
  );
  env.registerFunction("Base64Namespace.decode(string): bytes", (_ns: unknown, s: string) => {
    // Go accepts padded and unpadded standard base64; anything else is an error, not garbage.
    const text = s.length % 4 === 0 ? s : s + "=".repeat(4 - (s.length % 4));
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || s.length % 4 === 1) throw new CelExtensionError("illegal base64 data");
    return new Uint8Array(Buffer.from(text, "base64"));
  });
}
