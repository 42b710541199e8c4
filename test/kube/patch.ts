/**
 * @module patch
 * The patch formats a Kubernetes client may send. Merge patch (RFC 7386) also stands in for
 * strategic merge patch and for server-side apply: for the maps and scalars fluxhook touches
 * (annotations, status fields) the three give the same result.
 */
import { clone, deepEqual, isObject } from "./json";

/** RFC 7386 JSON merge patch. Returns a new value; `target` is not modified. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** Why a JSON patch was refused: a malformed document (400) or an operation that failed (422). */
export class JsonPatchError extends Error {
  constructor(
    readonly malformed: boolean,
    message: string,
  ) {
    super(message);
    this.name = "JsonPatchError";
  }
}

export interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: unknown;
  from?: string;
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function parsePointer(pointer: unknown): string[] {
  if (typeof pointer !== "string" || (pointer !== "" && !pointer.startsWith("/"))) {
    throw new JsonPatchError(true, `invalid JSON pointer ${JSON.stringify(pointer)}`);
  }
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number {
  if (allowEnd && token === "-") return length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new JsonPatchError(false, `invalid array index "${token}"`);
  const index = Number(token);
  if (index > length || (!allowEnd && index === length))
    throw new JsonPatchError(false, `array index ${index} out of bounds`);
  return index;
}

function get(doc: unknown, tokens: string[]): unknown {
  let current = doc;
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[arrayIndex(token, current.length, false)];
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token];
    else throw new JsonPatchError(false, `path /${tokens.join("/")} does not exist`);
  }
  return current;
}

/** The container holding the last token, and that token. */
function parentOf(doc: unknown, tokens: string[]): [Record<string, unknown> | unknown[], string] {
  const parent = get(doc, tokens.slice(0, -1));
  if (!Array.isArray(parent) && !isObject(parent)) {
    throw new JsonPatchError(false, `path /${tokens.join("/")} has no container`);
  }
  return [parent, tokens[tokens.length - 1]!];
}

function add(doc: unknown, tokens: string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const [parent, key] = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true), 0, value);
  else parent[key] = value;
  return doc;
}

function remove(doc: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) throw new JsonPatchError(false, "cannot remove the whole document");
  const [parent, key] = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, false), 1);
  else if (Object.hasOwn(parent, key)) delete parent[key];
  else throw new JsonPatchError(false, `path /${tokens.join("/")} does not exist`);
  return doc;
}

function validate(raw: unknown): JsonPatchOperation[] {
  if (!Array.isArray(raw)) throw new JsonPatchError(true, "a JSON patch must be an array of operations");
  return raw.map((op, i) => {
    if (!isObject(op) || typeof op.op !== "string" || !OPS.has(op.op) || typeof op.path !== "string") {
      throw new JsonPatchError(true, `operation ${i} is not a valid JSON patch operation`);
    }
    if ((op.op === "add" || op.op === "replace" || op.op === "test") && !Object.hasOwn(op, "value")) {
      throw new JsonPatchError(true, `operation ${i} (${op.op}) needs a value`);
    }
    if ((op.op === "move" || op.op === "copy") && typeof op.from !== "string") {
      throw new JsonPatchError(true, `operation ${i} (${op.op}) needs from`);
    }
    return op as unknown as JsonPatchOperation;
  });
}

/** RFC 6902 JSON patch. Returns a new document; throws {@link JsonPatchError}. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  let doc = clone(target);
  for (const op of validate(patch)) {
    const path = parsePointer(op.path);
    switch (op.op) {
      case "add":
        doc = add(doc, path, clone(op.value));
        break;
      case "remove":
        doc = remove(doc, path);
        break;
      case "replace":
        get(doc, path);
        doc = path.length === 0 ? clone(op.value) : add(remove(doc, path), path, clone(op.value));
        break;
      case "move": {
        const from = parsePointer(op.from);
        if (op.path.startsWith(`${op.from}/`)) throw new JsonPatchError(false, `cannot move ${op.from} into itself`);
        const value = get(doc, from);
        doc = add(remove(doc, from), path, value);
        break;
      }
      case "copy":
        doc = add(doc, path, clone(get(doc, parsePointer(op.from))));
        break;
      case "test":
        if (!deepEqual(get(doc, path), op.value))
          throw new JsonPatchError(false, `test operation failed at ${op.path}`);
        break;
    }
  }
  return doc;
}
