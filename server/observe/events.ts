/**
 * @module server/observe/events
 * Kubernetes Events on Receivers, so `kubectl describe receiver` answers "why does it not fire?"
 * ("event \"issues\" is not accepted by this receiver", "signature mismatch", or which targets
 * were asked to reconcile).
 *
 * Events are aggregated: at most one API write per receiver and reason per EVENT_WINDOW_MS. The
 * first occurrence is written at once; later ones within the window are counted and written
 * together at its end, by updating the same Event's count, lastTimestamp and message, as
 * Kubernetes' own event correlator does. A flood of forged deliveries therefore costs the API
 * server one write a minute per receiver and reason, per replica.
 *
 * Every replica records the deliveries it served, so `kubectl describe receiver` shows them
 * whichever replica a sender reached: each replica's Events carry its own reportingInstance and
 * names of their own (the replica's suffix), so two replicas never update one Event's count. A
 * Receiver's own Events (Ready transitions) are recorded by the replica that writes its status,
 * the leader (receivers/reconciler.ts).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { OUTCOMES, type DeliveryOutcome } from "../outcome/outcomes";
import type { EventRecord, KubePort } from "../kube/port";
import type { Logger } from "../runtime/log";
import { WorkQueue } from "../runtime/work-queue";
import { keyString, RECEIVER_API_VERSION, type ObjectKey } from "../api/receiver";

/** Aggregation window per receiver and reason. */
export const EVENT_WINDOW_MS = 60_000;

/**
 * Aggregations kept at once (receiver and reason), the least recently counted forgotten first:
 * client-go's event correlator keeps 4,096 too. Each holds an Event record of a few hundred bytes;
 * without a bound, every Receiver and reason ever seen would be kept for the life of the process.
 * A forgotten one starts a new Event when its reason comes back.
 */
export const EVENT_AGGREGATIONS_KEPT = 4096;

/** The Event a delivery's outcome records on its Receiver (outcome/outcomes.ts). */
function eventFor(outcome: DeliveryOutcome): { type: "Normal" | "Warning"; reason: string } | undefined {
  return outcome.receiver ? OUTCOMES[outcome.kind].event : undefined;
}

function eventMessage(outcome: DeliveryOutcome): string {
  const event = outcome.event ? `${outcome.event} delivery` : "delivery";
  const targets = outcome.targets
    ?.filter((t) => t.outcome !== "skipped")
    .map((t) => `${t.kind}/${t.namespace}/${t.name} ${t.outcome}${t.reason ? ` (${t.reason})` : ""}`);
  return `${event}: ${outcome.reason}${targets?.length ? `: ${targets.join(", ")}` : ""}`.slice(0, 1024);
}

interface Pending {
  record: EventRecord;
  written: boolean;
  lastWrite: number;
  count: number;
  /** The latest delivery of the window; its message is worded only when the Event is written. */
  last: DeliveryOutcome | undefined;
  /** The latest message of a reconcile Event (recordReconcile), used when `last` is undefined. */
  lastMessage: string | undefined;
  lastAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Deliveries were counted while a write was in flight: its trailing run schedules the next write in the window. */
  again: boolean;
}

export interface EventRecorderOptions {
  readonly kube: Pick<KubePort, "createEvent" | "updateEvent">;
  readonly log: Logger;
  /** uid of a Receiver a delivery was for, so the Event points at this incarnation of it. */
  readonly uidOf: (key: ObjectKey) => string | undefined;
  /** This replica, as Events name it (reportingInstance): the pod's hostname by default. */
  readonly instance?: string;
  readonly windowMs?: number;
  readonly now?: () => number;
}

export class EventRecorder {
  readonly #pending = new Map<string, Pending>();
  readonly #options: EventRecorderOptions;
  readonly #instance: string;
  /**
   * Ends the names of this replica's Events, so that no other replica (nor an earlier process of
   * this one) ever writes to them: replicas count their own deliveries.
   */
  readonly #nameSuffix = randomBytes(4).toString("hex");
  /** Tells apart the names of aggregations begun in the same millisecond. */
  #made = 0;
  /** One write per Event at a time: an update must not overtake its create. */
  readonly #writes: WorkQueue;

  constructor(options: EventRecorderOptions) {
    this.#options = options;
    this.#instance = options.instance ?? hostname();
    this.#writes = new WorkQueue({
      // Bounded by the aggregation: one write per Receiver and reason per window.
      concurrency: Number.POSITIVE_INFINITY,
      work: (key) => this.#run(key),
    });
  }

  /** Records a delivery's outcome on its Receiver (aggregated). */
  observe(outcome: DeliveryOutcome): void {
    const kind = eventFor(outcome);
    if (!kind || !outcome.receiver) return;
    const uid = this.#options.uidOf(outcome.receiver);
    if (uid === undefined) return;
    this.#count(outcome.receiver, uid, kind, (p) => {
      p.last = outcome;
    });
  }

  /**
   * Records a status transition on its Receiver, with Flux's reason (`Succeeded`, `Failed`,
   * `InvalidCELExpression`, `ValidationFailed`) and message, aggregated as deliveries are.
   */
  recordReconcile(
    receiver: ObjectKey,
    uid: string,
    event: { type: "Normal" | "Warning"; reason: string; message: string },
  ): void {
    this.#count(receiver, uid, event, (p) => {
      p.last = undefined;
      p.lastMessage = event.message.slice(0, 1024);
    });
  }

  #count(
    receiver: ObjectKey,
    uid: string,
    kind: { type: "Normal" | "Warning"; reason: string },
    remember: (p: Pending) => void,
  ): void {
    const now = (this.#options.now ?? Date.now)();
    const key = `${keyString(receiver)}/${kind.reason}`;
    let p = this.#pending.get(key);
    // Another incarnation of the Receiver (deleted and made again) gets Events of its own.
    if (p && p.record.involvedObject.uid !== uid) {
      this.#forget(key, p);
      p = undefined;
    }
    if (p) {
      // Map order is insertion order: re-inserted, the least recently counted comes first.
      this.#pending.delete(key);
      this.#pending.set(key, p);
    } else {
      if (this.#pending.size >= EVENT_AGGREGATIONS_KEPT) {
        const [oldest, entry] = this.#pending.entries().next().value!;
        this.#forget(oldest, entry);
      }
      const { namespace, name } = receiver;
      const first = new Date(now);
      p = {
        record: {
          namespace,
          // Unique per object, reason incarnation and replica, like client-go's "<name>.<hex>".
          name: eventName(name, `.${now.toString(16)}${this.#nameSuffix}${(this.#made++ % 0x10000).toString(16)}`),
          involvedObject: { apiVersion: RECEIVER_API_VERSION, kind: "Receiver", namespace, name, uid },
          type: kind.type,
          reason: kind.reason,
          message: "",
          count: 0,
          firstTimestamp: first,
          lastTimestamp: first,
          reportingInstance: this.#instance,
        },
        written: false,
        lastWrite: 0,
        count: 0,
        last: undefined,
        lastMessage: undefined,
        lastAt: now,
        timer: undefined,
        again: false,
      };
      this.#pending.set(key, p);
    }
    p.count++;
    remember(p);
    p.lastAt = now;
    if (now - p.lastWrite >= this.#window) this.#flush(key, p);
    else this.#schedule(key, p, now);
  }

  /** Drops an aggregation; what it counted since its last write is not written. */
  #forget(key: string, p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    this.#pending.delete(key);
    this.#writes.remove(key);
  }

  /** Forgets the aggregations of a deleted Receiver. */
  forgetReceiver(receiver: ObjectKey): void {
    const prefix = `${keyString(receiver)}/`;
    for (const [key, p] of this.#pending) if (key.startsWith(prefix)) this.#forget(key, p);
  }

  get #window(): number {
    return this.#options.windowMs ?? EVENT_WINDOW_MS;
  }

  #schedule(key: string, p: Pending, now: number) {
    p.timer ??= setTimeout(() => this.#flush(key, p), Math.max(0, p.lastWrite + this.#window - now));
  }

  #flush(key: string, p: Pending) {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (this.#writes.state(key) === "running") p.again = true;
    this.#writes.add(key);
  }

  #run(key: string): Promise<void> | undefined {
    const p = this.#pending.get(key);
    if (!p) return undefined;
    if (p.again) {
      // Counted while the last write was in flight: written at the window's end, not at once.
      p.again = false;
      this.#schedule(key, p, (this.#options.now ?? Date.now)());
      return undefined;
    }
    return this.#write(key, p);
  }

  async #write(key: string, p: Pending) {
    p.record = {
      ...p.record,
      count: p.count,
      message: p.last ? eventMessage(p.last) : (p.lastMessage ?? p.record.message),
      lastTimestamp: new Date(p.lastAt),
    };
    p.lastWrite = (this.#options.now ?? Date.now)();
    const wasWritten = p.written;
    p.written = true;
    const result = wasWritten
      ? await this.#options.kube.updateEvent(p.record)
      : await this.#options.kube.createEvent(p.record);
    if (!result.ok) {
      // Events are best effort; a lost one must not retry in a loop against a struggling API server.
      if (wasWritten && result.status === 404 && this.#pending.get(key) === p) this.#pending.delete(key);
      this.#options.log.debug("could not record an Event", {
        event: `${p.record.namespace}/${p.record.name}`,
        error: result.reason,
      });
    }
  }

  /** Forgets every pending aggregation (on shutdown). */
  stop(): void {
    for (const p of this.#pending.values()) if (p.timer) clearTimeout(p.timer);
    this.#pending.clear();
    this.#writes.stop();
  }
}

/** The longest object name Kubernetes accepts (a DNS subdomain). */
const MAX_OBJECT_NAME_CHARS = 253;

/**
 * An Event's name: the Receiver's, then `tail`; the Receiver's name is cut so the whole fits
 * MAX_OBJECT_NAME_CHARS (a Receiver named with 230 characters or more had every Event refused),
 * and a cut never leaves a label ending in "-" or ".".
 */
export function eventName(receiver: string, tail: string): string {
  const room = MAX_OBJECT_NAME_CHARS - tail.length;
  const head = receiver.length <= room ? receiver : receiver.slice(0, room).replace(/[-.]+$/, "");
  return `${head}${tail}`;
}
