/**
 * @module server/receivers/controller
 * Keeps the index and the Receivers' status in step with the cluster.
 *
 * It is fed by two watches (Receivers and Secrets), and for every Receiver whose object or
 * Secret changed it decides readiness the way Flux's controller does, swaps the index entry,
 * and (unless --status-updates=false) writes the status. Decisions wait until both watches have
 * delivered their first list, and a Secret the watch has not shown is read before its Receivers
 * are decided, so a Receiver is never marked TokenNotFound only because its Secret had not been
 * seen yet.
 */
import { webhookPath } from "../../shared";
import type { KubePort, WatchSink } from "../kube/port";
import type { Logger } from "../observe/log";
import {
  keyString,
  readReceiver,
  type ObjectKey,
  type ReceiverObject,
  type ReceiverSpec,
  type ReceiverStatus,
} from "../api/receiver";
import type { ReceiverIndex, ReceiverEntry } from "./index";
import { compilationKey, NOTHING_COMPILED, type Prepared } from "./prepare";
import { readSecret, type SecretRecord } from "../api/secret";
import { atLeastVersion, olderVersion } from "../kube/resource-version";
import { Reason, desiredStatus, sameStatus, type Readiness } from "../api/status";

/** Status writes in flight at once: enough to mark thousands of Receivers Ready at start-up in seconds. */
const STATUS_WRITE_CONCURRENCY = 16;
/** Retry delays of a failed status write: it is retried until it lands, gently. */
const STATUS_RETRY_MIN_MS = 500;
const STATUS_RETRY_MAX_MS = 60_000;

export interface ControllerOptions {
  readonly index: ReceiverIndex;
  /** Undefined when status updates are off. */
  readonly statusWriter: Pick<KubePort, "patchReceiverStatus"> | undefined;
  /** False while another replica leads: status is then that replica's to write. */
  readonly canWrite?: () => boolean;
  readonly log: Logger;
  /** Kubernetes' condition timestamp format (RFC 3339, seconds). */
  readonly now?: () => string;
  /**
   * Compiles and checks a valid spec (CEL expressions, OIDC providers); a failure is a terminal
   * error. Called once per change of what it depends on (prepare.ts compilationKey), not per
   * decision. Without it every valid spec serves with nothing compiled.
   */
  readonly prepare?: (spec: ReceiverSpec) => Prepared;
  /**
   * Told of every Secret a Receiver references, so that a Secret known only by its metadata is
   * read (secret-fetcher.ts). A Receiver whose Secret is pending is not decided until it is read.
   */
  readonly wantSecret?: (key: ObjectKey) => void;
  /**
   * True while a Secret ("namespace/name") the Secret watch has not shown is being read to learn
   * whether it exists: its Receivers are not decided TokenNotFound before the answer.
   */
  readonly secretAwaited?: (secret: string) => boolean;
}

const metaNow = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export class ReceiverController {
  readonly index: ReceiverIndex;
  readonly #receivers = new Map<string, ReceiverObject>();
  readonly #secrets = new Map<string, SecretRecord>();
  /** secret key → receiver keys referencing it, so a Secret change touches only its Receivers. */
  readonly #referrers = new Map<string, Set<string>>();
  /** Secrets whose reads keep failing, with the error, until one is read or the Secret is deleted. */
  readonly #unreadable = new Map<string, string>();
  /**
   * path → Receivers refused that path because an older Receiver serves it, decided again when it
   * frees. The path is sha256(token + name + namespace), so "a" in "bc" and "ab" in "c" with one
   * token collide; with generic-oidc's empty token, anyone who may create a Receiver somewhere
   * could otherwise take over another namespace's path (Flux serves whichever its cache lists first).
   */
  readonly #refused = new Map<string, Set<string>>();
  /** receiver key → the path it was refused, so the entry goes when the Receiver or its path does. */
  readonly #refusedPath = new Map<string, string>();
  /** receiver key → the last preparation and what it was computed from. */
  readonly #prepared = new Map<string, { key: string; result: Prepared }>();
  readonly #options: ControllerOptions;
  readonly #statusQueue = new Map<string, ObjectKey>();
  readonly #statusAttempts = new Map<string, number>();
  /** Receivers with a status write in flight: one at a time each, so writes land in order; its size is the writes in flight. */
  readonly #statusWriting = new Set<string>();
  /**
   * receiver key → the status we wrote and the resourceVersion it produced, until the watch shows
   * that version. Watch events older than our write carry a stale status; deciding on them would
   * write again (or, worse, "correct" a newer status back).
   */
  readonly #written = new Map<string, { resourceVersion: string; status: ReceiverStatus }>();
  #receiversSynced = false;
  #secretsSynced = false;

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.index = options.index;
  }

  /** Receivers by readiness, for the metrics (suspended ones count as not ready). */
  counts(): { ready: number; notReady: number } {
    let ready = 0;
    for (const entry of this.index.entries()) if (entry.unavailable === undefined) ready++;
    return { ready, notReady: this.#receivers.size - ready };
  }

  /** True once both watches delivered their first list and every Receiver was decided. */
  get synced(): boolean {
    return this.#receiversSynced && this.#secretsSynced;
  }

  readonly receiverSink: WatchSink = this.#sink({
    read: readReceiver,
    keyOf: (r) => keyString(r.key),
    known: () => this.#receivers.keys(),
    put: (r) => this.#putReceiver(r),
    remove: (k) => this.#deleteReceiver(k),
    synced: () => (this.#receiversSynced = true),
  });

  readonly secretSink: WatchSink = this.#sink({
    read: readSecret,
    keyOf: keyString,
    known: () => this.#secrets.keys(),
    put: (s) => this.#putSecret(s),
    remove: (k) => this.#deleteSecret(k),
    synced: () => (this.#secretsSynced = true),
  });

  /** True while a list page is applied: Receivers are decided once at the list's end, not per item. */
  #bulk = false;

  /**
   * A watch sink over one kind: a full list replaces what is known (each page is read into
   * fluxhook's small records at once, and what no page named is removed at the end); events add
   * or remove.
   */
  #sink<T>(kind: {
    read: (obj: unknown) => T | undefined;
    keyOf: (item: T) => string;
    known: () => Iterable<string>;
    put: (item: T) => void;
    remove: (key: string) => void;
    synced: () => void;
  }): WatchSink {
    let seen = new Set<string>();
    return {
      listPage: (items, first) => {
        if (first) seen = new Set();
        this.#bulk = true;
        try {
          for (const obj of items) {
            const item = kind.read(obj);
            if (!item) continue;
            seen.add(kind.keyOf(item));
            kind.put(item);
          }
        } finally {
          this.#bulk = false;
        }
      },
      listEnd: () => {
        this.#bulk = true;
        try {
          for (const k of [...kind.known()]) if (!seen.has(k)) kind.remove(k);
        } finally {
          this.#bulk = false;
        }
        seen = new Set();
        kind.synced();
        this.#afterBulk();
      },
      upsert: (obj) => {
        const item = kind.read(obj);
        if (item) kind.put(item);
      },
      remove: (obj) => {
        const item = kind.read(obj);
        if (item) kind.remove(kind.keyOf(item));
      },
    };
  }

  #afterBulk() {
    if (!this.synced) return;
    for (const k of this.#receivers.keys()) this.#reconcile(k);
  }

  #putReceiver(r: ReceiverObject) {
    const k = keyString(r.key);
    const before = this.#receivers.get(k);
    if (before?.secretName && before.secretName !== r.secretName) {
      this.#unrefer(`${before.key.namespace}/${before.secretName}`, k);
    }
    if (r.secretName) {
      const sk = `${r.key.namespace}/${r.secretName}`;
      let set = this.#referrers.get(sk);
      if (!set) this.#referrers.set(sk, (set = new Set()));
      set.add(k);
      this.#options.wantSecret?.({ namespace: r.key.namespace, name: r.secretName });
    }
    this.#receivers.set(k, r);
    if (this.synced && !this.#bulk) this.#reconcile(k);
  }

  #deleteReceiver(k: string) {
    const r = this.#receivers.get(k);
    if (!r) return;
    this.#receivers.delete(k);
    this.#prepared.delete(k);
    this.#written.delete(k);
    this.#statusAttempts.delete(k);
    if (r.secretName) this.#unrefer(`${r.key.namespace}/${r.secretName}`, k);
    const path = this.index.get(r.key)?.path;
    this.index.remove(r.key);
    this.#unrefuse(k);
    if (path !== undefined) this.#release(path);
    this.#statusQueue.delete(k);
    this.#options.log.info("receiver deleted", { receiver: k });
  }

  #unrefer(secret: string, receiver: string) {
    const set = this.#referrers.get(secret);
    set?.delete(receiver);
    if (set?.size === 0) {
      this.#referrers.delete(secret);
      this.#unreadable.delete(secret);
    }
  }

  /** Reads of a referenced Secret keep failing (secret-fetcher.ts): its Receivers show the error. */
  secretUnreadable(secret: string, reason: string): void {
    if (!this.#referrers.has(secret) || this.#unreadable.get(secret) === reason) return;
    this.#unreadable.set(secret, reason);
    if (this.synced) for (const r of this.#referrers.get(secret) ?? []) this.#reconcile(r);
  }

  #putSecret(s: SecretRecord) {
    const k = keyString(s);
    const before = this.#secrets.get(k);
    // Metadata of a version already read (a re-list, or a watch behind the read) changes nothing.
    if (before && s.pending && !before.pending && atLeastVersion(before.resourceVersion, s.resourceVersion)) return;
    this.#secrets.set(k, s);
    if (!s.pending && this.#unreadable.delete(k)) {
      if (this.synced && !this.#bulk) for (const r of this.#referrers.get(k) ?? []) this.#reconcile(r);
      return;
    }
    // The same data under a newer version: recorded, nothing to decide again.
    if (before && before.pending === s.pending && sameData(before, s)) return;
    if (this.synced && !this.#bulk) for (const r of this.#referrers.get(k) ?? []) this.#reconcile(r);
  }

  /** Also told of a referenced Secret found absent by a read, which the watch never showed. */
  #deleteSecret(k: string) {
    this.#secrets.delete(k);
    this.#unreadable.delete(k);
    if (this.synced && !this.#bulk) for (const r of this.#referrers.get(k) ?? []) this.#reconcile(r);
  }

  /** Decides one Receiver: index entry and desired status. */
  #reconcile(k: string) {
    const r = this.#receivers.get(k);
    if (!r) return;
    const decision = this.#decide(r);
    // Its Secret is being read: keep serving what was decided before, and decide once it is.
    if (decision.pending) return;
    const before = this.index.get(r.key)?.path;
    if (decision.refused !== undefined) this.#refuse(k, decision.refused);
    else this.#unrefuse(k);
    if (decision.entry) {
      // An older Receiver takes the path: the younger one is decided again, and refused.
      const evicted = this.index.set(decision.entry);
      if (evicted) this.#reconcile(keyString(evicted.key));
    } else this.index.remove(r.key);
    if (before !== undefined && before !== this.index.get(r.key)?.path) this.#release(before);
    // Suspended receivers keep their status untouched, as Flux does.
    if (decision.readiness && this.#options.statusWriter && (this.#options.canWrite?.() ?? true)) {
      const current = this.#currentStatus(k, r);
      const desired = desiredStatus(
        decision.readiness,
        r.generation,
        current,
        (this.#options.now ?? metaNow)(),
        r.requestedAt,
      );
      if (!sameStatus(current, desired)) this.#queueStatus(r.key);
    }
  }

  #refuse(k: string, path: string) {
    if (this.#refusedPath.get(k) === path) return;
    this.#unrefuse(k);
    let waiting = this.#refused.get(path);
    if (!waiting) this.#refused.set(path, (waiting = new Set()));
    waiting.add(k);
    this.#refusedPath.set(k, path);
    const holder = this.index.lookup(path);
    this.#options.log.error("webhook path collision: an older Receiver has the same path", {
      receiver: k,
      servedBy: holder ? keyString(holder.key) : undefined,
    });
  }

  /** The Receiver no longer waits for a path (it got one, changed, or is gone). */
  #unrefuse(k: string) {
    const path = this.#refusedPath.get(k);
    if (path === undefined) return;
    this.#refusedPath.delete(k);
    const waiting = this.#refused.get(path);
    waiting?.delete(k);
    if (waiting?.size === 0) this.#refused.delete(path);
  }

  /** A path no longer served by the Receiver that held it: those refused it are decided again. */
  #release(path: string) {
    // Before the lists are in, or within one, everything is decided at its end anyway.
    if (!this.synced || this.#bulk) return;
    const waiting = this.#refused.get(path);
    if (!waiting) return;
    for (const k of [...waiting]) this.#reconcile(k);
  }

  /** The Receiver's status as it stands: our own last write until the watch has caught up with it. */
  #currentStatus(k: string, r: ReceiverObject): ReceiverStatus | undefined {
    const written = this.#written.get(k);
    if (!written) return r.status;
    if (olderVersion(r.resourceVersion, written.resourceVersion)) return written.status;
    this.#written.delete(k);
    return r.status;
  }

  /** The spec's preparation, reused while what it depends on is unchanged. */
  #prepare(r: ReceiverObject, spec: ReceiverSpec): Prepared {
    const prepare = this.#options.prepare;
    if (!prepare) return { ok: true, compiled: NOTHING_COMPILED };
    const k = keyString(r.key);
    const key = compilationKey(spec);
    const cached = this.#prepared.get(k);
    if (cached?.key === key) return cached.result;
    const result = prepare(spec);
    this.#prepared.set(k, { key, result });
    return result;
  }

  #decide(r: ReceiverObject): { entry?: ReceiverEntry; readiness?: Readiness; pending?: true; refused?: string } {
    const spec = r.spec;
    // Flux checks the spec (CEL, OIDC providers) before it reads the token.
    const prepared: Prepared = spec
      ? this.#prepare(r, spec)
      : { ok: false, reason: Reason.validationFailed, message: r.invalid ?? "invalid spec" };
    const terminal = (p: Extract<Prepared, { ok: false }>): Readiness => ({
      kind: "terminal",
      reason: p.reason,
      message: p.message,
    });
    let token: Buffer | undefined;
    let secret: SecretRecord["data"] = {};
    if (r.secretName) {
      const sk = `${r.key.namespace}/${r.secretName}`;
      const s = this.#secrets.get(sk);
      // A Secret read once is served from what was read; reads that keep failing decide.
      const unreadable = s?.pending === false ? undefined : this.#unreadable.get(sk);
      if (unreadable === undefined && (s ? s.pending : this.#options.secretAwaited?.(sk))) return { pending: true };
      const ref = `'${r.key.namespace}/${r.secretName}'`;
      if (!s?.data.token?.length) {
        if (spec?.suspend) return this.#suspendedWithoutToken(r, spec);
        if (spec && !prepared.ok) return { readiness: terminal(prepared) };
        if (unreadable !== undefined)
          return {
            readiness: {
              kind: "token-not-found",
              message: `unable to read token from secret ${ref} error: ${unreadable}`,
            },
          };
        if (!s)
          return {
            readiness: {
              kind: "token-not-found",
              message: `unable to read token from secret ${ref} error: secrets "${r.secretName}" not found`,
            },
          };
        // Flux serves an empty token; but then the path is sha256(name + namespace) and an HMAC
        // keyed with "" is anyone's: the Receiver would be open to whoever guesses its name.
        if (s.data.token)
          return {
            readiness: { kind: "token-not-found", message: `invalid ${ref} secret data: field 'token' is empty` },
          };
        return {
          readiness: { kind: "token-not-found", message: `invalid ${ref} secret data: required fields 'token'` },
        };
      }
      token = s.data.token;
      secret = s.data;
    } else if (spec?.type !== "generic-oidc") {
      // No Secret means no path (the token is part of it), so nothing to index.
      return {
        readiness: {
          kind: "terminal",
          reason: Reason.validationFailed,
          message: r.invalid ?? "secretRef is required when type is not generic-oidc",
        },
      };
    }
    const base = {
      key: r.key,
      generation: r.generation,
      path: webhookPath(token ?? "", r.key.name, r.key.namespace),
      secret,
    };
    const other = this.#otherAt(base.path, r);
    if (other && keepsPath(other, r)) {
      return {
        refused: base.path,
        readiness: spec?.suspend
          ? undefined
          : { kind: "terminal", reason: Reason.validationFailed, message: PATH_COLLISION },
      };
    }
    if (spec?.suspend) return { entry: { ...base, spec, unavailable: "receiver is suspended" } };
    if (!prepared.ok) {
      return {
        entry: { ...base, spec, unavailable: `receiver is not ready: ${prepared.message}` },
        readiness: terminal(prepared),
      };
    }
    return {
      entry: { ...base, spec: spec!, compiled: prepared.compiled, unavailable: undefined },
      readiness: { kind: "ready", path: base.path },
    };
  }

  /**
   * A suspended Receiver whose token cannot be read: as in Flux, its status is left alone and the
   * path it last had answers 503 (not 404), unless another Receiver serves it.
   */
  #suspendedWithoutToken(r: ReceiverObject, spec: ReceiverSpec): { entry?: ReceiverEntry } {
    const path = this.#currentStatus(keyString(r.key), r)?.webhookPath;
    if (!path || this.#otherAt(path, r)) return {};
    return {
      entry: { key: r.key, generation: r.generation, path, secret: {}, spec, unavailable: "receiver is suspended" },
    };
  }

  /** The other Receiver serving this path, if one does. */
  #otherAt(path: string, r: ReceiverObject): ReceiverObject | undefined {
    const holder = this.index.lookup(path);
    const k = holder && keyString(holder.key);
    return k !== undefined && k !== keyString(r.key) ? this.#receivers.get(k) : undefined;
  }

  #queueStatus(key: ObjectKey) {
    this.#statusQueue.set(keyString(key), key);
    this.#pumpStatus();
  }

  /** Checks every Receiver's status again (on becoming leader: the previous one may have left work). */
  resyncStatus(): void {
    if (this.synced) for (const k of this.#receivers.keys()) this.#reconcile(k);
  }

  /** True when a Receiver references this Secret ("namespace/name"). */
  isReferenced(secret: string): boolean {
    return (this.#referrers.get(secret)?.size ?? 0) > 0;
  }

  /** The uid of a known Receiver, for Events. */
  uidOf(key: ObjectKey): string | undefined {
    return this.#receivers.get(keyString(key))?.uid;
  }

  #pumpStatus() {
    const writer = this.#options.statusWriter;
    if (!writer || !(this.#options.canWrite?.() ?? true)) return;
    for (const [k, key] of this.#statusQueue) {
      if (this.#statusWriting.size >= STATUS_WRITE_CONCURRENCY) return;
      // Stays queued behind the write in flight, and is decided again when that one lands.
      if (this.#statusWriting.has(k)) continue;
      this.#statusQueue.delete(k);
      const r = this.#receivers.get(k);
      if (!r) continue;
      // Decide again at write time: the Secret or the object may have changed while queued.
      const { readiness } = this.#decide(r);
      if (!readiness) continue;
      const current = this.#currentStatus(k, r);
      const desired = desiredStatus(readiness, r.generation, current, (this.#options.now ?? metaNow)(), r.requestedAt);
      if (sameStatus(current, desired)) continue;
      this.#statusWriting.add(k);
      void this.#writeStatus(writer, key, desired).finally(() => {
        this.#statusWriting.delete(k);
        this.#pumpStatus();
      });
    }
  }

  async #writeStatus(writer: Pick<KubePort, "patchReceiverStatus">, key: ObjectKey, status: ReceiverStatus) {
    const k = keyString(key);
    const result = await writer.patchReceiverStatus(key, status);
    if (result.ok) {
      this.#statusAttempts.delete(k);
      const seen = this.#receivers.get(k);
      if (seen && olderVersion(seen.resourceVersion, result.value))
        this.#written.set(k, { resourceVersion: result.value, status });
      const ready = status.conditions?.find((c) => c.type === "Ready");
      this.#options.log.info("receiver status updated", { receiver: k, ready: ready?.status, reason: ready?.reason });
      return;
    }
    if (result.status === 404) return; // deleted meanwhile; the watch will tell us
    const attempt = (this.#statusAttempts.get(k) ?? 0) + 1;
    this.#statusAttempts.set(k, attempt);
    const delay = Math.min(STATUS_RETRY_MAX_MS, STATUS_RETRY_MIN_MS * 2 ** Math.min(attempt, 10));
    this.#options.log.error("receiver status update failed", { receiver: k, error: result.reason, retryInMs: delay });
    setTimeout(() => {
      if (this.#receivers.has(k)) this.#queueStatus(key);
    }, delay).unref?.();
  }
}

/** Why a Receiver is refused its path (the other Receiver is not named: it may be another tenant's). */
export const PATH_COLLISION =
  "webhook path collision: an older Receiver has the same path (sha256 of token, name and namespace); change the token or the name";

/** Of two Receivers with one path, whether `a` keeps it: the older, then the first by namespace/name. */
function keepsPath(a: ReceiverObject, b: ReceiverObject): boolean {
  if (a.createdAt && b.createdAt && a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return keyString(a.key) < keyString(b.key);
}

function sameData(a: SecretRecord, b: SecretRecord): boolean {
  for (const key of ["token", "email", "audience"] as const) {
    const x = a.data[key];
    const y = b.data[key];
    if (x === undefined || y === undefined ? x !== y : !x.equals(y)) return false;
  }
  return true;
}
