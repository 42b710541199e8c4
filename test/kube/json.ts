/**
 * @module json
 * Helpers for plain JSON values. Stored objects are immutable snapshots, so deep equality
 * decides whether a write is a no-op and whether anything outside metadata/status changed
 * (which bumps `metadata.generation`).
 */

/** True for a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Structural equality of two JSON values; key order does not matter. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

/** A deep copy, so callers can never mutate a stored snapshot. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}
