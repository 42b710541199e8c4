/**
 * @module server/receivers/index
 * The in-memory index that answers "which receiver owns this path?" in O(1), so a delivery
 * never lists anything. Entries are immutable and replaced whole, so a request sees either the
 * old entry or the new one, never a half-updated mix (a token rotation swaps the entry at once).
 */
import { keyString, type ObjectKey, type ReceiverSpec } from "../api/receiver";
import type { CompiledReceiver } from "./prepare";
import type { SecretData } from "../api/secret";

interface EntryBase {
  readonly key: ObjectKey;
  readonly generation: number;
  /** `/hook/<digest>`, Flux's formula. */
  readonly path: string;
  /** The keys of the referenced Secret (empty for generic-oidc). */
  readonly secret: SecretData;
}

/** A receiver that takes deliveries. */
export interface ServingEntry extends EntryBase {
  readonly spec: ReceiverSpec;
  /** The generation's CEL programs (filters, OIDC expressions), compiled once by the reconciler. */
  readonly compiled: CompiledReceiver;
  readonly unavailable: undefined;
}

/** A receiver whose path is known but which answers 503 (suspended, configuration error). */
export interface UnavailableEntry extends EntryBase {
  readonly spec: ReceiverSpec | undefined;
  readonly unavailable: string;
}

export type ReceiverEntry = ServingEntry | UnavailableEntry;

export class ReceiverIndex {
  readonly #byPath = new Map<string, ReceiverEntry>();
  readonly #pathByKey = new Map<string, string>();
  readonly #onSet: ((entry: ReceiverEntry) => void) | undefined;

  /** `onSet` is told of every entry set (server.ts starts the source index for a routing Receiver). */
  constructor(onSet?: (entry: ReceiverEntry) => void) {
    this.#onSet = onSet;
  }

  /** The receiver at exactly this request path (no normalisation, as Flux matches RequestURI). */
  lookup(path: string): ReceiverEntry | undefined {
    return this.#byPath.get(path);
  }

  /**
   * Adds or replaces the entry of one receiver; its old path stops answering at the same moment.
   * Another receiver's entry at the same path is dropped and returned (the reconciler decides
   * which of two receivers keeps a path).
   */
  set(entry: ReceiverEntry): ReceiverEntry | undefined {
    const k = keyString(entry.key);
    const old = this.#pathByKey.get(k);
    if (old !== undefined && old !== entry.path) this.#byPath.delete(old);
    const evicted = this.#byPath.get(entry.path);
    const other = evicted && keyString(evicted.key) !== k ? evicted : undefined;
    if (other) this.#pathByKey.delete(keyString(other.key));
    this.#byPath.set(entry.path, entry);
    this.#pathByKey.set(k, entry.path);
    this.#onSet?.(entry);
    return other;
  }

  remove(key: ObjectKey): void {
    const k = keyString(key);
    const path = this.#pathByKey.get(k);
    if (path === undefined) return;
    this.#pathByKey.delete(k);
    this.#byPath.delete(path);
  }

  get(key: ObjectKey): ReceiverEntry | undefined {
    const path = this.#pathByKey.get(keyString(key));
    return path === undefined ? undefined : this.#byPath.get(path);
  }

  get size(): number {
    return this.#pathByKey.size;
  }

  entries(): IterableIterator<ReceiverEntry> {
    return this.#byPath.values();
  }
}
