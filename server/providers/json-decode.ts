/**
 * @module server/providers/json-decode
 * Go's encoding/json decoding rules, for the receiver types whose only check in Flux is "the body
 * decodes into this struct" (dockerhub, quay, acr, nexus, gcr):
 *
 *   - `json.NewDecoder(body).Decode` reads the first JSON value and ignores what follows;
 *     `json.Unmarshal` needs the whole body to be one value. An empty body is an error.
 *   - Decoding into a struct: `null` (anywhere) leaves the zero value; unknown fields are ignored;
 *     field names match exactly or else case-insensitively; a value of the wrong JSON type is an
 *     error ("cannot unmarshal number into Go struct field … of type string").
 */
import { exceedsJsonBounds } from "./json-bounds";

/** A Go type, as far as these payloads need: string, time.Time, []T, or a struct. */
export type Shape = "string" | "time" | readonly [Shape] | { readonly [field: string]: Shape };

/** `tooCostly`: the body crossed a bound of json-bounds.ts and was not parsed (a 400, not a syntax error). */
export type Decoded = { ok: true; value: unknown } | { ok: false; error: string; tooCostly?: true };

const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD, as Go's decoder does

const WHITESPACE = /^[ \t\r\n]*/;
/** A JSON literal or number at the start of the text; Go stops reading a top-level value there. */
const SCALAR = /^(?:null|true|false|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/;

/** The end (exclusive) of the object, array or string starting at `start`, or -1 if unterminated. */
function compositeEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

const syntaxError = (err: unknown) => `invalid JSON: ${(err as Error).message}`;

/** `json.Decoder.Decode`: the first JSON value of the body; anything after it is ignored. */
export function firstJsonValue(body: Uint8Array): Decoded {
  // Bounded before the body is even decoded: a refused body costs one pass over its bytes.
  const tooCostly = exceedsJsonBounds(body, true);
  if (tooCostly) return { ok: false, error: tooCostly, tooCostly: true };
  const text = decoder.decode(body);
  const start = WHITESPACE.exec(text)![0].length;
  if (start === text.length) return { ok: false, error: "EOF: the body is empty" };
  const c = text[start];
  let end: number;
  if (c === "{" || c === "[" || c === '"') {
    end = compositeEnd(text, start);
    if (end < 0) return { ok: false, error: "unexpected EOF: the JSON value is not terminated" };
  } else {
    const m = SCALAR.exec(text.slice(start));
    if (!m) return { ok: false, error: `invalid character ${JSON.stringify(c)} looking for beginning of value` };
    end = start + m[0].length;
  }
  try {
    return { ok: true, value: JSON.parse(text.slice(start, end)) };
  } catch (err) {
    return { ok: false, error: syntaxError(err) };
  }
}

/** `json.Unmarshal`: the whole body is one JSON value. */
export function wholeJsonValue(body: Uint8Array): Decoded {
  const tooCostly = exceedsJsonBounds(body);
  if (tooCostly) return { ok: false, error: tooCostly, tooCostly: true };
  const text = decoder.decode(body);
  if (text.trim() === "") return { ok: false, error: "unexpected end of JSON input" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: syntaxError(err) };
  }
}

const jsonKind = (v: unknown) =>
  Array.isArray(v) ? "array" : v === null ? "null" : typeof v === "object" ? "object" : typeof v;

/** RFC 3339 with optional fractional seconds, as Go's time.Time accepts in JSON. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

function goType(shape: Shape): string {
  if (shape === "string") return "string";
  if (shape === "time") return "time.Time";
  if (Array.isArray(shape)) return `[]${goType(shape[0])}`;
  return "struct";
}

/**
 * Checks that `value` decodes into `shape` as Go would; undefined when it does, else the error.
 * `path` names the field for the message.
 */
export function conforms(value: unknown, shape: Shape, path = ""): string | undefined {
  if (value === null) return undefined;
  const mismatch = () =>
    `cannot unmarshal ${jsonKind(value)} into ${path ? `field ${path}` : "the payload"} of type ${goType(shape)}`;
  if (shape === "string") return typeof value === "string" ? undefined : mismatch();
  if (shape === "time") {
    if (typeof value !== "string") return mismatch();
    return RFC3339.test(value) && !Number.isNaN(Date.parse(value))
      ? undefined
      : `parsing time ${JSON.stringify(value)} in ${path}: not RFC 3339`;
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return mismatch();
    for (const [i, item] of value.entries()) {
      const e = conforms(item, shape[0] as Shape, `${path}[${i}]`);
      if (e) return e;
    }
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value)) return mismatch();
  const fields = Object.keys(shape);
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const field = fields.includes(key) ? key : fields.find((f) => f.toLowerCase() === key.toLowerCase());
    if (field === undefined) continue;
    const e = conforms(item, (shape as Record<string, Shape>)[field]!, path ? `${path}.${field}` : field);
    if (e) return e;
  }
  return undefined;
}
