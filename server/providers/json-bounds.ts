/**
 * @module server/providers/json-bounds
 * A cheap pass over JSON text that bounds what parsing it would cost, run before every parse of
 * a sender's body. Parsing is amplified: a 3 MiB body of a million empty arrays, or 1.5 million
 * nested ones, becomes ~130 MB of heap and 100-300 ms of CPU, while the byte budget only sees
 * 3 MiB. The pass counts nesting depth and values (object keys included) in one loop over the
 * bytes, before they are even decoded to text, allocates nothing, and stops at the first bound
 * crossed. (In UTF-8 every byte of a multi-byte character is 0x80 or above, so the structural
 * characters and quotes are found byte by byte.)
 *
 * Written by hand: no JSON library bounds the value count without building the values, and the
 * pass needs no validation (the parse that follows reports syntax errors).
 */
import { MAX_JSON_DEPTH, MAX_JSON_VALUES } from "../limits";

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Characters that start a number or a literal (true, false, null). */
const isScalarStart = (c: number) => (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e;

export interface JsonBounds {
  readonly maxDepth: number;
  readonly maxValues: number;
  /** What a body past the bounds is more than, in the reason ("more than any webhook sends"). */
  readonly holds?: string;
}

const WEBHOOKS = "more than any webhook sends";

export const DEFAULT_JSON_BOUNDS: JsonBounds = { maxDepth: MAX_JSON_DEPTH, maxValues: MAX_JSON_VALUES };

/**
 * undefined when the JSON in `bytes` stays within the bounds, else why not (a reason that names
 * the bound, never the body). Strings, keys, numbers, literals, arrays and objects count as one
 * value each. With `firstValueOnly` (Go's json.Decoder, which reads one value and ignores what
 * follows) the pass stops at the end of the first value.
 */
export function exceedsJsonBounds(
  bytes: Uint8Array,
  firstValueOnly = false,
  bounds: JsonBounds = DEFAULT_JSON_BOUNDS,
): string | undefined {
  let depth = 0;
  let values = 0;
  // True where a value may start: at the beginning, after `[`, `,` and `:`.
  let expectValue = true;
  const end = bytes.length;
  for (let i = 0; i < end; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) {
      // Skip the string; a key is counted like a value.
      for (i++; i < end; i++) {
        const s = bytes[i]!;
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
      values++;
      expectValue = false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      values++;
      if (++depth > bounds.maxDepth)
        return `JSON nesting is deeper than ${bounds.maxDepth} levels, ${bounds.holds ?? WEBHOOKS}`;
      expectValue = true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
      expectValue = false;
    } else if (c === COMMA || c === COLON) {
      expectValue = true;
    } else if (expectValue && isScalarStart(c)) {
      values++;
      expectValue = false;
    } else continue;
    if (values > bounds.maxValues) return `JSON has more than ${bounds.maxValues} values, ${bounds.holds ?? WEBHOOKS}`;
    // The first value ends when its container closes, or (a scalar or string) where it ends.
    if (firstValueOnly && depth <= 0 && !expectValue) return undefined;
  }
  return undefined;
}
