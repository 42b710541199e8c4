/**
 * @module server/receivers/paths
 * Which of two Receivers with one webhook path keeps it. The path is sha256(token + name +
 * namespace), so "a" in "bc" and "ab" in "c" with one token collide; with generic-oidc's empty
 * token, anyone who may create a Receiver somewhere could otherwise take over another namespace's
 * path (Flux serves whichever its cache lists first). The older Receiver keeps it; the younger is
 * refused, and waits here to be decided again when the path frees.
 */
import { keyString, receiverLogFields, type ObjectKey, type ReceiverObject } from "../api/receiver";
import type { Logger } from "../runtime/log";

/** Why a Receiver is refused its path (the other Receiver is not named: it may be another tenant's). */
export const PATH_COLLISION =
  "webhook path collision: an older Receiver has the same path (sha256 of token, name and namespace); change the token or the name";

/** Of two Receivers with one path, whether `a` keeps it: the older, then the first by namespace/name. */
export function keepsPath(a: ReceiverObject, b: ReceiverObject): boolean {
  if (a.createdAt && b.createdAt && a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return keyString(a.key) < keyString(b.key);
}

export class PathArbiter {
  /** path → Receivers refused it, decided again when it frees. */
  readonly #refused = new Map<string, Set<string>>();
  /** Receiver → the path it was refused, so the entry goes when the Receiver or its path does. */
  readonly #refusedPath = new Map<string, string>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The Receiver `key` is refused `path`, which `holder` serves. */
  refuse(key: ObjectKey, path: string, holder: string | undefined): void {
    const receiver = keyString(key);
    if (this.#refusedPath.get(receiver) === path) return;
    this.release(receiver);
    let waiting = this.#refused.get(path);
    if (!waiting) this.#refused.set(path, (waiting = new Set()));
    waiting.add(receiver);
    this.#refusedPath.set(receiver, path);
    this.#log.error("webhook path collision: an older Receiver has the same path", {
      ...receiverLogFields(key),
      servedBy: holder,
    });
  }

  /** The Receiver no longer waits for a path (it got one, changed, or is gone). */
  release(receiver: string): void {
    const path = this.#refusedPath.get(receiver);
    if (path === undefined) return;
    this.#refusedPath.delete(receiver);
    const waiting = this.#refused.get(path);
    waiting?.delete(receiver);
    if (waiting?.size === 0) this.#refused.delete(path);
  }

  /** The Receivers refused this path. */
  waiting(path: string): readonly string[] {
    return [...(this.#refused.get(path) ?? [])];
  }
}
