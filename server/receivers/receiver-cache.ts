/**
 * @module server/receivers/receiver-cache
 * The Receivers as the watch (or the files) last showed them: the informer's store, read into
 * fluxhook's small records (api/receiver.ts). It is the one owner of that state, and it keeps the
 * Secret cache told which Secrets Receivers reference, so that only those are read.
 *
 * Its one listener, the reconciler's event handler, is told the key of every Receiver that was
 * added, changed or removed; a list (the first, or a re-list after a watch error) tells every key
 * once, at its end.
 */
import { keyString, readReceiver, sharedWith, type ObjectKey, type ReceiverObject } from "../api/receiver";
import type { WatchSink } from "../kube/port";
import type { SecretCache } from "./secret-cache";

/** Told the key ("namespace/name") of a Receiver that changed, or of every Receiver after a list. */
export type ReceiverChanges = (receivers: Iterable<string>) => void;

export class ReceiverCache {
  readonly #receivers = new Map<string, ReceiverObject>();
  readonly #secrets: Pick<SecretCache, "refer" | "unrefer" | "referrersKnown">;
  #changed: ReceiverChanges = () => {};
  #synced = false;

  constructor(secrets: Pick<SecretCache, "refer" | "unrefer" | "referrersKnown">) {
    this.#secrets = secrets;
  }

  /** The one listener of changes (the reconciler's event handler). */
  onChange(listener: ReceiverChanges): void {
    this.#changed = listener;
  }

  /** True once the first list was delivered. */
  get synced(): boolean {
    return this.#synced;
  }

  get(receiver: string): ReceiverObject | undefined {
    return this.#receivers.get(receiver);
  }

  keys(): IterableIterator<string> {
    return this.#receivers.keys();
  }

  get size(): number {
    return this.#receivers.size;
  }

  /** The uid of a known Receiver, for Events. */
  uidOf(key: ObjectKey): string | undefined {
    return this.#receivers.get(keyString(key))?.uid;
  }

  /**
   * The sink of the Receiver watch (or files): a full list replaces what is known (each page is
   * read into fluxhook's small records at once, and what no page named is removed at the end);
   * events add or remove.
   */
  readonly sink: WatchSink = (() => {
    let seen = new Set<string>();
    return {
      listPage: (items: readonly unknown[], first: boolean) => {
        if (first) seen = new Set();
        for (const obj of items) {
          const r = readReceiver(obj);
          if (!r) continue;
          seen.add(keyString(r.key));
          this.#put(r);
        }
      },
      listEnd: () => {
        const gone = [...this.#receivers.keys()].filter((k) => !seen.has(k));
        for (const k of gone) this.#delete(k);
        seen = new Set();
        this.#synced = true;
        this.#secrets.referrersKnown();
        this.#changed([...this.#receivers.keys(), ...gone]);
      },
      upsert: (obj: unknown) => {
        const r = readReceiver(obj);
        if (!r) return;
        this.#put(r);
        this.#changed([keyString(r.key)]);
      },
      remove: (obj: unknown) => {
        const r = readReceiver(obj);
        if (!r || !this.#delete(keyString(r.key))) return;
        this.#changed([keyString(r.key)]);
      },
    };
  })();

  #put(parsed: ReceiverObject) {
    const k = keyString(parsed.key);
    const before = this.#receivers.get(k);
    // Most events repeat what is known (our own writes): equal parts are kept from before.
    const r = before ? sharedWith(before, parsed) : parsed;
    if (before?.secretName && before.secretName !== r.secretName)
      this.#secrets.unrefer(`${before.key.namespace}/${before.secretName}`, k);
    this.#receivers.set(k, r);
    if (r.secretName) this.#secrets.refer({ namespace: r.key.namespace, name: r.secretName }, k);
  }

  #delete(k: string): boolean {
    const r = this.#receivers.get(k);
    if (!r) return false;
    this.#receivers.delete(k);
    if (r.secretName) this.#secrets.unrefer(`${r.key.namespace}/${r.secretName}`, k);
    return true;
  }
}
