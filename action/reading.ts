/**
 * @module action/reading
 * How the inputs are read, for every concern's parser (inputs.ts, destination.ts): one `Reading`
 * gives each input raw or trimmed and collects what the parsers find (errors, warnings, secrets),
 * so every problem of one run is reported at once. Pure: the inputs and the environment are
 * injected.
 */
import type { Env, InputGetter, InputName } from "./vocabulary";

/** One reading of the inputs and the environment; each concern's parser adds what it finds. */
export interface Reading {
  /** An input as given: untrimmed, "" when unset. */
  raw(name: InputName): string;
  /** An input without its surrounding ASCII whitespace (see `asciiTrim`). */
  text(name: InputName): string;
  /** A true-or-false input: `fallback` when empty, an error (and `fallback`) when neither. */
  flag(name: InputName, fallback: boolean): boolean;
  readonly env: Env;
  /** What stops the run, in the order the parsers found it. */
  readonly errors: string[];
  /** Worth a warning; the run goes on. */
  readonly warnings: string[];
  /** Every value to mask, added the moment it is read, so it is masked even when another input is wrong. */
  readonly secrets: Set<string>;
}

// core.getInput()'s default trim is String.prototype.trim, which also strips Unicode spaces such
// as NBSP or a BOM. We strip only the ASCII whitespace that copy-paste, `echo` and YAML block
// scalars add; the token's parser warns when it did, since a receiver Secret created from a file
// that ends in a newline then no longer matches (see the `token` input in action.yml).
const ASCII_SPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
export const asciiTrim = (value: string) => value.replace(ASCII_SPACE, "");

/** Header values generated from inputs must be printable ASCII on one line. */
export const HEADER_SAFE = /^[\x20-\x7e]+$/;

const TRUE = ["true", "True", "TRUE"];
const FALSE = ["false", "False", "FALSE"];

export function startReading(get: InputGetter, env: Env): Reading {
  const errors: string[] = [];
  const text = (name: InputName) => asciiTrim(get(name));
  return {
    raw: get,
    text,
    flag(name, fallback) {
      const value = text(name);
      if (value === "") return fallback;
      if (TRUE.includes(value)) return true;
      if (FALSE.includes(value)) return false;
      errors.push(`Input \`${name}\` must be true or false; got "${value}".`);
      return fallback;
    },
    env,
    errors,
    warnings: [],
    secrets: new Set(),
  };
}

export function isOneOf<T extends string>(list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value);
}

/** The first of `names` set to something other than "" in `env`. */
export function envValue(env: Env, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
}

/** An absolute http:// or https:// URL, or undefined. */
export function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
}

/** A plain decimal number (`2`, `2.5`); `fallback` when empty; undefined when it is not one. */
export function parseNumber(value: string, fallback: number): number | undefined {
  if (value === "") return fallback;
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : undefined;
}
