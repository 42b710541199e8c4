/**
 * @module selectors
 * Label and field selectors with the API server's grammar and semantics: `!=` and `notin` also
 * match objects without the label; a field selector may only use the field labels a kind
 * supports (anything else is a 400, as in the real server).
 */
import { badRequest } from "./errors";
import type { KubeObject } from "./types";

export type LabelOperator = "=" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";

export interface LabelRequirement {
  key: string;
  op: LabelOperator;
  values: string[];
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

/** A parsed `labelSelector` + `fieldSelector` pair; empty lists match everything. */
export interface Selector {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

export const EVERYTHING: Selector = { labels: [], fields: [] };

const KEY = `(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const VALUE = `(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const EXISTS = new RegExp(`^(${KEY})$`);
const NOT_EXISTS = new RegExp(String.raw`^!\s*(${KEY})$`);
const EQUALITY = new RegExp(String.raw`^(${KEY})\s*(==|=|!=)\s*(${VALUE})$`);
const SET = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\(([^()]*)\)$`);
const NUMERIC = new RegExp(String.raw`^(${KEY})\s*(>|<)\s*(-?\d+)$`);
const VALUE_ONLY = new RegExp(`^${VALUE}$`);

/** Split on commas that are not inside `( … )`. */
function splitTopLevel(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(input.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(input.slice(start));
  return parts.map((p) => p.trim());
}

function parseLabelTerm(term: string): LabelRequirement {
  let m: RegExpExecArray | null;
  if ((m = NOT_EXISTS.exec(term))) return { key: m[1]!, op: "!", values: [] };
  if ((m = EXISTS.exec(term))) return { key: m[1]!, op: "exists", values: [] };
  if ((m = EQUALITY.exec(term))) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] };
  if ((m = SET.exec(term))) {
    const values = m[3]!.split(",").map((v) => v.trim());
    if (values.some((v) => !VALUE_ONLY.test(v)))
      throw badRequest(`unable to parse requirement: invalid label value in "${term}"`);
    return { key: m[1]!, op: m[2] as "in" | "notin", values };
  }
  if ((m = NUMERIC.exec(term))) return { key: m[1]!, op: m[2] === ">" ? "gt" : "lt", values: [m[3]!] };
  throw badRequest(
    `unable to parse requirement: found '${term}', expected: key, !key, key=value, key!=value, key in (…), key notin (…)`,
  );
}

/** Parse a `labelSelector` query value; throws a 400 KubeApiError when malformed. */
export function parseLabelSelector(input: string | null | undefined): LabelRequirement[] {
  if (!input || input.trim() === "") return [];
  return splitTopLevel(input).map((term) => {
    if (term === "") throw badRequest(`unable to parse requirement: empty term in label selector "${input}"`);
    return parseLabelTerm(term);
  });
}

function matchesLabel(req: LabelRequirement, labels: Record<string, string> | undefined): boolean {
  const has = labels !== undefined && Object.hasOwn(labels, req.key);
  const value = has ? labels![req.key]! : undefined;
  switch (req.op) {
    case "exists":
      return has;
    case "!":
      return !has;
    case "=":
      return has && value === req.values[0];
    case "!=":
      return !has || value !== req.values[0];
    case "in":
      return has && req.values.includes(value!);
    case "notin":
      return !has || !req.values.includes(value!);
    case "gt":
    case "lt": {
      if (!has || !/^-?\d+$/.test(value!)) return false;
      const [n, limit] = [Number(value), Number(req.values[0])];
      return req.op === "gt" ? n > limit : n < limit;
    }
  }
}

export function matchesLabels(reqs: readonly LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  return reqs.every((req) => matchesLabel(req, labels));
}

/** Split on unescaped commas, then on the first unescaped `!=`, `==` or `=`. Backslash escapes one char. */
function parseFieldTerm(term: string): FieldRequirement {
  for (let i = 0; i < term.length; i++) {
    const ch = term[i];
    if (ch === "\\") {
      i++;
      continue;
    }
    if (ch === "!" && term[i + 1] === "=") return fieldReq(term.slice(0, i), "!=", term.slice(i + 2));
    if (ch === "=") return fieldReq(term.slice(0, i), "=", term.slice(term[i + 1] === "=" ? i + 2 : i + 1));
  }
  throw badRequest(`invalid selector: '${term}'; can't understand '${term}'`);
}

function unescapeSelector(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}

function fieldReq(field: string, op: "=" | "!=", value: string): FieldRequirement {
  return { field: unescapeSelector(field.trim()), op, value: unescapeSelector(value.trim()) };
}

function splitUnescaped(input: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    if (input[i] === "\\") i++;
    else if (input[i] === ",") {
      parts.push(input.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(input.slice(start));
  return parts;
}

/** Parse a `fieldSelector`; only the given field labels are allowed (a 400 otherwise). */
export function parseFieldSelector(input: string | null | undefined, allowed: ReadonlySet<string>): FieldRequirement[] {
  if (!input || input.trim() === "") return [];
  return splitUnescaped(input).map((term) => {
    const req = parseFieldTerm(term.trim());
    if (!allowed.has(req.field)) throw badRequest(`field label not supported: ${req.field}`);
    return req;
  });
}

function fieldValue(obj: KubeObject, path: string): string {
  let current: unknown = obj;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null) return "";
    current = (current as Record<string, unknown>)[part];
  }
  return current === undefined || current === null ? "" : String(current);
}

export function matchesFields(reqs: readonly FieldRequirement[], obj: KubeObject): boolean {
  return reqs.every((req) => (fieldValue(obj, req.field) === req.value) === (req.op === "="));
}

/** True when the object satisfies both halves of the selector. */
export function matches(selector: Selector, obj: KubeObject): boolean {
  return matchesLabels(selector.labels, obj.metadata.labels) && matchesFields(selector.fields, obj);
}
