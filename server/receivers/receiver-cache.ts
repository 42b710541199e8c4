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
        for (const object of items) {
          const receiver = readReceiver(object);
          if (!receiver) continue;
          seen.add(keyString(receiver.key));
          this.#put(receiver);
        }
      },
      listEnd: () => {
        const gone = [...this.#receivers.keys()].filter((key) => !seen.has(key));
        for (const key of gone) this.#delete(key);
        seen = new Set();
        this.#synced = true;
        this.#secrets.referrersKnown();
        this.#changed([...this.#receivers.keys(), ...gone]);
      },
      upsert: (object: unknown) => {
        const receiver = readReceiver(object);
        if (!receiver) return;
        this.#put(receiver);
        this.#changed([keyString(receiver.key)]);
      },
      remove: (object: unknown) => {
        const receiver = readReceiver(object);
        if (!receiver || !this.#delete(keyString(receiver.key))) return;
        this.#changed([keyString(receiver.key)]);
      },
    };
  })();

  #put(parsed: ReceiverObject) {
    const key = keyString(parsed.key);
    const before = this.#receivers.get(key);
    // Most events repeat what is known (our own writes): equal parts are kept from before.
    const receiver = before ? sharedWith(before, parsed) : parsed;
    if (before?.secretName && before.secretName !== receiver.secretName)
      this.#secrets.unrefer(`${before.key.namespace}/${before.secretName}`, key);
    this.#receivers.set(key, receiver);
    if (receiver.secretName) this.#secrets.refer({ namespace: receiver.key.namespace, name: receiver.secretName }, key);
  }

  #delete(key: string): boolean {
    const receiver = this.#receivers.get(key);
    if (!receiver) return false;
    this.#receivers.delete(key);
    if (receiver.secretName) this.#secrets.unrefer(`${receiver.key.namespace}/${receiver.secretName}`, key);
    return true;
  }
}
