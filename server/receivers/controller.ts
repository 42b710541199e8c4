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
import { webhookPath, type Backoff } from "../../shared";
import { DEFAULT_TUNING } from "../limits";
import {
  keyString,
  readReceiver,
  receiverLogFields,
  sharedWith,
  type ObjectKey,
  type ReceiverObject,
  type ReceiverSpec,
  type ReceiverStatus,
} from "../api/receiver";
import type { SecretData } from "../api/secret";
import {
  Reason,
  SUCCEEDED_MESSAGE,
  TERMINAL_PREFIX,
  desiredStatus,
  sameStatus,
  transitionEvent,
  type Readiness,
  type ReconcileEvent,
} from "../api/status";
import type { KubePort, WatchSink } from "../kube/port";
import type { Logger } from "../runtime/log";
import type { ReceiverIndex, ReceiverEntry } from "./index";
import { keepsPath, PATH_COLLISION, PathArbiter } from "./paths";
import { compilationKey, NOTHING_COMPILED, type Prepared } from "./prepare";
import type { SecretCache } from "./secret-cache";
import { FinalizerWriter } from "./finalizers";
import { StatusWriter, type StatusSubject } from "./status-writer";

export interface ControllerOptions {
  readonly index: ReceiverIndex;
  /** The one owner of Secret state (secret-cache.ts); the controller only asks it. */
  readonly secrets: SecretCache;
  /** Undefined when status updates are off (or Receivers come from files). */
  readonly statusWriter: Pick<KubePort, "patchReceiverStatus"> | undefined;
  /**
   * Keeps Flux's finalizer (finalizers.ts): set exactly when statusWriter is, since the finalizer is
   * kept by whoever writes status (beside Flux, --status-updates=false, it is Flux's).
   */
  readonly finalizerWriter?: Pick<KubePort, "patchReceiverFinalizers">;
  /**
   * Receivers from files have no status: one that cannot serve (suspended, Stalled) answers 503
   * at the path its token gives, not 404 for want of a status.webhookPath.
   */
  readonly withoutStatus?: boolean;
  /** Records an Event on a status transition (Flux's reasons); the recorder aggregates, and writes only as leader. */
  readonly recordEvent?: (key: ObjectKey, event: ReconcileEvent) => void;
  /** False while another replica leads: status is then that replica's to write. */
  readonly canWrite?: () => boolean;
  /** Retry delays of failed status writes (limits.ts DEFAULT_TUNING). */
  readonly statusWriteBackoff?: Backoff;
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
   * Told when a Receiver was reconciled, with how long it took: deciding it (preparing its spec
   * included) and, when its status changed, until that status was written. Flux's runtime
   * measures its Reconcile the same way (gotk_reconcile_duration_seconds).
   */
  readonly onReconciled?: (key: ObjectKey, seconds: number) => void;
  /** Told when a Receiver is gone, so that what was recorded about it can go too. */
  readonly onDeleted?: (key: ObjectKey) => void;
}

const metaNow = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

type Decision = { entry?: ReceiverEntry; readiness?: Readiness; pending?: true; refused?: string };

export class ReceiverController {
  readonly index: ReceiverIndex;
  readonly #receivers = new Map<string, ReceiverObject>();
  readonly #secrets: SecretCache;
  readonly #paths: PathArbiter;
  /** receiver key → the last preparation and what it was computed from. */
  readonly #prepared = new Map<string, { key: string; result: Prepared }>();
  readonly #options: ControllerOptions;
  readonly #status: StatusWriter | undefined;
  /** receiver key → when the reconcile began whose status write is still to land. */
  readonly #reconcileStarted = new Map<string, number>();
  readonly #finalizers: FinalizerWriter | undefined;
  #receiversSynced = false;

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.index = options.index;
    this.#secrets = options.secrets;
    this.#paths = new PathArbiter(options.log);
    this.#secrets.onChange((receivers) => {
      if (!this.synced) return;
      for (const k of receivers === "all" ? [...this.#receivers.keys()] : [...receivers]) this.#reconcile(k);
    });
    const patch = options.statusWriter;
    this.#status = patch
      ? new StatusWriter({
          patch: {
            patchReceiverStatus: async (key, status) => {
              const result = await patch.patchReceiverStatus(key, status);
              if (result.ok) this.#reconciled(key);
              return result;
            },
          },
          backoff: options.statusWriteBackoff ?? DEFAULT_TUNING.statusWriteBackoff,
          canWrite: options.canWrite ?? (() => true),
          log: options.log,
          subject: (k) => this.#statusSubject(k),
          resourceVersionOf: (k) => this.#receivers.get(k)?.resourceVersion,
          onWritten: (key, before, after, readiness) => this.#written(key, before, after, readiness),
        })
      : undefined;
    this.#finalizers = options.finalizerWriter
      ? new FinalizerWriter({
          patch: options.finalizerWriter,
          backoff: options.statusWriteBackoff ?? DEFAULT_TUNING.statusWriteBackoff,
          canWrite: options.canWrite ?? (() => true),
          log: options.log,
          subject: (k) => this.#receivers.get(k),
        })
      : undefined;
  }

  /** Receivers by readiness, for the metrics (suspended ones count as not ready). */
  counts(): { ready: number; notReady: number } {
    let ready = 0;
    for (const entry of this.index.entries()) if (entry.unavailable === undefined) ready++;
    return { ready, notReady: this.#receivers.size - ready };
  }

  /** True once both watches delivered their first list and every Receiver was decided. */
  get synced(): boolean {
    return this.#receiversSynced && this.#secrets.synced;
  }

  /** True while a list page is applied: Receivers are decided once at the list's end, not per item. */
  #bulk = false;

  /**
   * The sink of the Receiver watch (or files): a full list replaces what is known (each page is
   * read into fluxhook's small records at once, and what no page named is removed at the end);
   * events add or remove.
   */
  readonly receiverSink: WatchSink = (() => {
    let seen = new Set<string>();
    return {
      listPage: (items: readonly unknown[], first: boolean) => {
        if (first) seen = new Set();
        this.#bulk = true;
        try {
          for (const obj of items) {
            const r = readReceiver(obj);
            if (!r) continue;
            seen.add(keyString(r.key));
            this.#putReceiver(r);
          }
        } finally {
          this.#bulk = false;
        }
      },
      listEnd: () => {
        this.#bulk = true;
        try {
          for (const k of [...this.#receivers.keys()]) if (!seen.has(k)) this.#deleteReceiver(k);
        } finally {
          this.#bulk = false;
        }
        seen = new Set();
        this.#receiversSynced = true;
        this.#secrets.referrersKnown();
        if (this.synced) for (const k of this.#receivers.keys()) this.#reconcile(k);
      },
      upsert: (obj: unknown) => {
        const r = readReceiver(obj);
        if (r) this.#putReceiver(r);
      },
      remove: (obj: unknown) => {
        const r = readReceiver(obj);
        if (r) this.#deleteReceiver(keyString(r.key));
      },
    };
  })();

  #putReceiver(parsed: ReceiverObject) {
    const k = keyString(parsed.key);
    const before = this.#receivers.get(k);
    const r = before ? sharedWith(before, parsed) : parsed;
    if (before?.secretName && before.secretName !== r.secretName)
      this.#secrets.unrefer(`${before.key.namespace}/${before.secretName}`, k);
    this.#receivers.set(k, r);
    if (r.secretName) this.#secrets.refer({ namespace: r.key.namespace, name: r.secretName }, k);
    if (this.synced && !this.#bulk) this.#reconcile(k);
  }

  #deleteReceiver(k: string) {
    const r = this.#receivers.get(k);
    if (!r) return;
    this.#receivers.delete(k);
    this.#prepared.delete(k);
    this.#status?.forget(k);
    this.#reconcileStarted.delete(k);
    this.#options.onDeleted?.(r.key);
    this.#finalizers?.forget(k);
    if (r.secretName) this.#secrets.unrefer(`${r.key.namespace}/${r.secretName}`, k);
    const path = this.index.get(r.key)?.path;
    this.index.remove(r.key);
    this.#paths.release(k);
    if (path !== undefined) this.#freed(path);
    this.#options.log.info("receiver deleted", receiverLogFields(r.key));
  }

  /** Decides one Receiver: index entry and desired status. */
  #reconcile(k: string) {
    const r = this.#receivers.get(k);
    if (!r) return;
    const started = performance.now();
    this.#finalizers?.sync(r);
    const decision = this.#decide(r);
    // Its Secret is being read: keep serving what was decided before, and decide once it is.
    if (decision.pending) return;
    const before = this.index.get(r.key)?.path;
    if (decision.refused !== undefined) {
      const holder = this.index.lookup(decision.refused);
      this.#paths.refuse(r.key, decision.refused, holder ? keyString(holder.key) : undefined);
    } else this.#paths.release(k);
    if (decision.entry) {
      // The same decision again (a watch event of our own write) keeps the entry it made: a
      // long-lived entry replaced by an equal one is old-space garbage (sharedWith).
      const current = this.index.get(r.key);
      if (!current || !sameEntry(current, decision.entry)) {
        // An older Receiver takes the path: the younger one is decided again, and refused.
        const evicted = this.index.set(decision.entry);
        if (evicted) this.#reconcile(keyString(evicted.key));
      }
    } else this.index.remove(r.key);
    if (before !== undefined && before !== this.index.get(r.key)?.path) this.#freed(before);
    if (decision.readiness && this.#status?.canWrite) {
      const current = this.#currentStatus(k, r);
      const desired = this.#desiredStatus(r, decision.readiness, current);
      if (!sameStatus(current, desired)) {
        // The reconcile ends when the write lands (a newer decision supersedes an older one's).
        this.#reconcileStarted.set(k, started);
        this.#status.queue(k);
        return;
      }
    }
    this.#reconcileStarted.delete(k);
    this.#options.onReconciled?.(r.key, (performance.now() - started) / 1000);
  }

  /** A status write landed: the reconcile that queued it is done. */
  #reconciled(key: ObjectKey) {
    const k = keyString(key);
    const started = this.#reconcileStarted.get(k);
    if (started === undefined) return;
    this.#reconcileStarted.delete(k);
    this.#options.onReconciled?.(key, (performance.now() - started) / 1000);
  }

  #desiredStatus(r: ReceiverObject, readiness: Readiness, current: ReceiverStatus | undefined): ReceiverStatus {
    return desiredStatus(readiness, r.generation, current, (this.#options.now ?? metaNow)(), r.requestedAt);
  }

  /** What the status writer writes when a write starts: decided again, on what is known then. */
  #statusSubject(k: string): StatusSubject | undefined {
    const r = this.#receivers.get(k);
    if (!r) return undefined;
    const { readiness } = this.#decide(r);
    const current = this.#currentStatus(k, r);
    return { key: r.key, current, readiness, desired: readiness && this.#desiredStatus(r, readiness, current) };
  }

  /**
   * A status was written: on a Ready transition, its Event and a log line as Flux's (failures at
   * error with the error under `error`; controller-runtime words the retried ones "Reconciler error").
   */
  #written(key: ObjectKey, before: ReceiverStatus | undefined, after: ReceiverStatus, readiness: Readiness) {
    const event = transitionEvent(before, after, readiness);
    if (!event) return;
    this.#options.recordEvent?.(key, event);
    const fields = receiverLogFields(key);
    if (readiness.kind === "terminal")
      this.#options.log.error(TERMINAL_PREFIX, { ...fields, reason: readiness.reason, error: readiness.message });
    else if (readiness.kind === "token-not-found")
      this.#options.log.error("Reconciler error", {
        ...fields,
        reason: Reason.tokenNotFound,
        error: readiness.message,
      });
    else if (readiness.kind === "ready") this.#options.log.info(SUCCEEDED_MESSAGE, fields);
  }

  /** A path no longer served by the Receiver that held it: those refused it are decided again. */
  #freed(path: string) {
    // Before the lists are in, or within one, everything is decided at its end anyway.
    if (!this.synced || this.#bulk) return;
    for (const k of this.#paths.waiting(path)) this.#reconcile(k);
  }

  #currentStatus(k: string, r: ReceiverObject): ReceiverStatus | undefined {
    return this.#status ? this.#status.current(k, r.resourceVersion, r.status) : r.status;
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

  #decide(r: ReceiverObject): Decision {
    // Being deleted: no longer served, in every mode, and its status is not written again (Flux
    // only removes its finalizer).
    if (r.deleting) return {};
    const spec = r.spec;
    // Suspended: Flux neither validates nor reads the token; the status keeps its conditions.
    if (spec?.suspend && !this.#options.withoutStatus)
      return { entry: this.#unavailableAt(r, spec, NO_SECRET, SUSPENDED), readiness: { kind: "suspended" } };
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
    let secret: SecretData = NO_SECRET;
    if (r.secretName) {
      const state = this.#secrets.lookup(`${r.key.namespace}/${r.secretName}`);
      if (state.kind === "pending") return { pending: true };
      const ref = `'${r.key.namespace}/${r.secretName}'`;
      const data = state.kind === "ready" ? state.data : {};
      if (!data.token?.length) {
        if (spec?.suspend) return {};
        // As Flux, an invalid spec is reported before the token is read.
        if (!prepared.ok)
          return {
            entry: this.#unavailableAt(r, spec, {}, `receiver is not ready: ${prepared.message}`),
            readiness: terminal(prepared),
          };
        const message =
          state.kind === "unreadable"
            ? `unable to read token from secret ${ref} error: ${state.reason}`
            : state.kind === "absent"
              ? `unable to read token from secret ${ref} error: secrets "${r.secretName}" not found`
              : // Flux serves an empty token; but then the path is sha256(name + namespace) and an HMAC
                // keyed with "" is anyone's: the Receiver would be open to whoever guesses its name.
                data.token
                ? `invalid ${ref} secret data: field 'token' is empty`
                : `invalid ${ref} secret data: required fields 'token'`;
        return { readiness: { kind: "token-not-found", message } };
      }
      token = data.token;
      secret = data;
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
        readiness: { kind: "terminal", reason: Reason.validationFailed, message: PATH_COLLISION },
      };
    }
    if (spec?.suspend) return { entry: this.#unavailableAt(r, spec, secret, SUSPENDED, base.path) };
    if (!prepared.ok) {
      return {
        entry: this.#unavailableAt(r, spec, secret, `receiver is not ready: ${prepared.message}`, base.path),
        readiness: terminal(prepared),
      };
    }
    return {
      entry: { ...base, spec: spec!, compiled: prepared.compiled, unavailable: undefined },
      readiness: { kind: "ready", path: base.path },
    };
  }

  /**
   * Where a Receiver that cannot serve (suspended, or Stalled) answers 503: the path its status
   * has, as Flux looks Receivers up by status.webhookPath. One that was never Ready has none and
   * answers 404, as in Flux; so does a path another Receiver serves now. Without status (files),
   * the path the token gives, when it is known.
   */
  #unavailableAt(
    r: ReceiverObject,
    spec: ReceiverSpec | undefined,
    secret: SecretData,
    unavailable: string,
    computed?: string,
  ): ReceiverEntry | undefined {
    const path = this.#options.withoutStatus ? computed : this.#currentStatus(keyString(r.key), r)?.webhookPath;
    if (!path || this.#otherAt(path, r)) return undefined;
    return { key: r.key, generation: r.generation, path, secret, spec, unavailable };
  }

  /** The other Receiver serving this path, if one does. */
  #otherAt(path: string, r: ReceiverObject): ReceiverObject | undefined {
    const holder = this.index.lookup(path);
    const k = holder && keyString(holder.key);
    return k !== undefined && k !== keyString(r.key) ? this.#receivers.get(k) : undefined;
  }

  /** Checks every Receiver's status again (on becoming leader: the previous one may have left work). */
  resyncStatus(): void {
    if (this.synced) for (const k of this.#receivers.keys()) this.#reconcile(k);
  }

  /** The uid of a known Receiver, for Events. */
  uidOf(key: ObjectKey): string | undefined {
    return this.#receivers.get(keyString(key))?.uid;
  }

  stop(): void {
    this.#status?.stop();
    this.#finalizers?.stop();
  }
}

/** Whether two index entries are the same decision, part for part (parts are shared, not copied). */
function sameEntry(a: ReceiverEntry, b: ReceiverEntry): boolean {
  return (
    a.key === b.key &&
    a.generation === b.generation &&
    a.path === b.path &&
    a.secret === b.secret &&
    a.spec === b.spec &&
    a.unavailable === b.unavailable &&
    (a.unavailable === undefined ? a.compiled : undefined) === (b.unavailable === undefined ? b.compiled : undefined)
  );
}

/** Why a suspended Receiver's deliveries get 503. */
const SUSPENDED = "receiver is suspended";

/** The Secret data of a Receiver that needs none, one object for all: index entries compare it by identity (sameEntry). */
const NO_SECRET: SecretData = Object.freeze({});
