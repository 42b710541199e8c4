/**
 * @module server/delivery/protect/guards
 * What stands between the internet and the Kubernetes API, per delivery:
 *
 * - concurrency caps: a global one, one per receiver so a flood against one receiver cannot
 *   take every slot from the others, and a cap on the body bytes the deliveries in flight may
 *   bring (declared lengths, so memory stays within the pod's limit). When a cap is reached, room
 *   is made by evicting the oldest delivery whose body is still arriving (it is answered 408):
 *   senders that stall or trickle their bodies cannot lock a receiver's real sender out, which
 *   sends its body at once. Only when every slot holds a delivery past its body is the answer 429;
 * - three token buckets per receiver: one spent by requests that failed validation (deliveries and
 *   status queries alike), one by valid deliveries, one by authenticated status queries. A flood of
 *   forged requests empties only the first, so it is answered 429 while the receiver's real sender
 *   keeps getting through; queries, always bounded, never spend what deliveries may;
 * - duplicate delivery ids: a delivery id already handled successfully for the same receiver,
 *   with the same body, is answered 200 "duplicate" without annotating again. Ids are recorded
 *   only after success, so a redelivery of a failed attempt works; they are kept per receiver,
 *   and keyed with a hash of the body, so an id sent ahead of the genuine delivery cannot make it
 *   a duplicate (delivery.ts uses them only for types whose sender holds a credential);
 * - an opt-in replay window: the same signed body for the same receiver within the window is
 *   refused. It is off by default because a CI job that posts the same body on purpose must keep
 *   working, as it does with Flux; with it off, a replayed body costs at most one coalesced
 *   reconcile request, within the valid-delivery rate limit.
 *
 * State is per replica and bounded (see limits.ts). Behind a Service with several replicas, a
 * redelivery may reach a replica that has not seen the id and annotate once more: a harmless
 * extra reconcile request, which is why the state is not shared through the API server (that
 * would cost a write per delivery on the hot path).
 */
import { createHash } from "node:crypto";
import { KeyedTokenBuckets, type BucketLimits, type Take } from "./token-bucket";
import { RecentKeys } from "./recent-keys";
import { Slots } from "../../runtime/slots";
import { EVICTED, TIMED_OUT, type CallOff } from "../body";
import {
  DELIVERY_ID_RECEIVERS,
  DELIVERY_ID_TTL_MS,
  DELIVERY_IDS_PER_RECEIVER,
  MAX_BODY_BYTES_IN_FLIGHT,
  MAX_CONCURRENT_PER_RECEIVER,
  MAX_PARSED_BODIES,
  REPLAY_CAPACITY,
  STATUS_QUERY_BURST,
  STATUS_QUERY_RATE,
} from "../../limits";

export interface GuardConfig {
  /** Valid deliveries per receiver; rate 0 turns the limit off. */
  readonly valid: BucketLimits;
  /** Deliveries that failed validation, per receiver; rate 0 turns the limit off. */
  readonly failed: BucketLimits;
  /** Deliveries in flight at once on this replica. */
  readonly maxConcurrent: number;
  /** Body bytes the deliveries in flight may bring (default MAX_BODY_BYTES_IN_FLIGHT; tests lower it). */
  readonly maxBodyBytesInFlight?: number;
  /** 0 is off. */
  readonly replayWindowMs: number;
  /** Deliveries holding a parsed body at once (default MAX_PARSED_BODIES; tests lower it). */
  readonly maxParsedBodies?: number;
  /** Authenticated status queries per receiver (default STATUS_QUERY_RATE and _BURST; always on). */
  readonly queries?: BucketLimits;
}

/**
 * An admitted delivery whose body is still arriving, the only kind that may be evicted. It calls
 * the read off (body.ts CallOff) with body.ts EVICTED when the delivery is evicted to make room,
 * or TIMED_OUT when its body is not in by the deadline given to `admit`.
 */
export interface BodyReading extends CallOff {
  /** The body is in: from now on the delivery keeps its place. */
  done(): void;
}

export type Admission =
  | { ok: true; release: () => void; reading: BodyReading }
  | { ok: false; retryAfterSeconds: number; reason: string };

/**
 * A reading as the guards keep it: a field and one promise, not an AbortController and its
 * listeners, which were a few microseconds of every delivery (bench/README.md).
 */
class Reading implements BodyReading {
  calledOff: DOMException | undefined;
  #settle: ((reason: DOMException) => void) | undefined;
  #promise: Promise<DOMException> | undefined;

  constructor(
    readonly receiver: string,
    /** performance.now() by which the body must be in. */
    readonly deadline: number,
    readonly done: () => void,
    /** Frees the delivery's place at once (an eviction). */
    readonly free: () => void,
  ) {}

  get whenCalledOff(): Promise<DOMException> {
    this.#promise ??= this.calledOff
      ? Promise.resolve(this.calledOff)
      : new Promise((resolve) => {
          this.#settle = resolve;
        });
    return this.#promise;
  }

  callOff(reason: DOMException): void {
    if (this.calledOff) return;
    this.calledOff = reason;
    this.#settle?.(reason);
  }

  evict(): void {
    // Its place is free at once; its own release later does nothing.
    this.free();
    this.callOff(EVICTED);
  }

  timeOut(): void {
    // It keeps its place until its answer (408) is ready, as any delivery does.
    this.done();
    this.callOff(TIMED_OUT);
  }
}

const unlimited: Take = { ok: true };

export class DeliveryGuards {
  /** Deliveries holding a parsed body for their filters: a small bound (MAX_PARSED_BODIES). */
  readonly parsedBodies: Slots;
  readonly #config: GuardConfig;
  readonly #valid: KeyedTokenBuckets;
  readonly #failed: KeyedTokenBuckets;
  readonly #queries: KeyedTokenBuckets;
  /** Per receiver; Map order is insertion order, re-inserted on each add, so the first is the least recent. */
  readonly #ids = new Map<string, RecentKeys>();
  readonly #bodies: RecentKeys | undefined;
  readonly #inflight = new Map<string, number>();
  #total = 0;
  #bytes = 0;
  /** Admitted deliveries still reading their bodies, oldest first (a Set keeps insertion order). */
  readonly #reading = new Set<Reading>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  /**
   * One timer for every body deadline, set for the earliest: a timer and two abort signals per
   * delivery were about 6 % of the CPU of a flood of refusals (bench/README.md).
   */
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #deadlineAt = Number.POSITIVE_INFINITY;

  constructor(config: GuardConfig) {
    this.parsedBodies = new Slots(config.maxParsedBodies ?? MAX_PARSED_BODIES);
    this.#config = config;
    this.#valid = new KeyedTokenBuckets(config.valid);
    this.#failed = new KeyedTokenBuckets(config.failed);
    this.#queries = new KeyedTokenBuckets(config.queries ?? { rate: STATUS_QUERY_RATE, burst: STATUS_QUERY_BURST });
    this.#bodies = config.replayWindowMs > 0 ? new RecentKeys(REPLAY_CAPACITY, config.replayWindowMs) : undefined;
    // Full buckets are dropped now and then so idle receivers hold no memory.
    this.#sweeper = setInterval(() => {
      this.#valid.sweep();
      this.#failed.sweep();
      this.#queries.sweep();
    }, 60_000);
    this.#sweeper.unref?.();
  }

  /**
   * A slot for one delivery to `receiver` whose body may bring up to `bodyBytes`; release it when
   * the answer is ready, and tell `reading.done()` once the body is in. Makes room by evicting the
   * oldest deliveries still reading their bodies.
   */
  admit(receiver: string, bodyBytes = 0, bodyTimeoutMs = Number.POSITIVE_INFINITY): Admission {
    if (this.#total >= this.#config.maxConcurrent && !this.#evictOldest()) {
      return { ok: false, retryAfterSeconds: 1, reason: "too many deliveries in flight; retry later" };
    }
    if ((this.#inflight.get(receiver) ?? 0) >= MAX_CONCURRENT_PER_RECEIVER && !this.#evictOldest(receiver)) {
      return {
        ok: false,
        retryAfterSeconds: 1,
        reason: "too many deliveries in flight for this receiver; retry later",
      };
    }
    const maxBytes = this.#config.maxBodyBytesInFlight ?? MAX_BODY_BYTES_IN_FLIGHT;
    while (this.#bytes + bodyBytes > maxBytes) {
      if (!this.#evictOldest())
        return { ok: false, retryAfterSeconds: 1, reason: "too many request bytes in flight; retry later" };
    }
    this.#total++;
    this.#inflight.set(receiver, (this.#inflight.get(receiver) ?? 0) + 1);
    this.#bytes += bodyBytes;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#reading.delete(reading);
      this.#total--;
      this.#bytes -= bodyBytes;
      const n = (this.#inflight.get(receiver) ?? 1) - 1;
      if (n === 0) this.#inflight.delete(receiver);
      else this.#inflight.set(receiver, n);
    };
    const reading: Reading = new Reading(
      receiver,
      performance.now() + bodyTimeoutMs,
      () => {
        this.#reading.delete(reading);
      },
      release,
    );
    this.#reading.add(reading);
    this.#armDeadline(reading.deadline);
    return { ok: true, release, reading };
  }

  #armDeadline(at: number): void {
    if (at >= this.#deadlineAt) return;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    this.#deadlineTimer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
    this.#deadlineTimer.unref?.();
  }

  /** Times out the readings past their deadline and sets the timer for the next one. */
  #expire(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const reading of [...this.#reading]) {
      if (reading.deadline <= now) reading.timeOut();
      else if (reading.deadline < next) next = reading.deadline;
    }
    if (next < Number.POSITIVE_INFINITY) this.#armDeadline(next);
  }

  /** Evicts the oldest delivery still reading its body (of `receiver`, when given); false when there is none. */
  #evictOldest(receiver?: string): boolean {
    for (const reading of this.#reading) {
      if (receiver !== undefined && reading.receiver !== receiver) continue;
      reading.evict();
      return true;
    }
    return false;
  }

  /** Spends a token of the failure budget; `ok: false` means answer 429 rather than 400. */
  failedValidation(receiver: string): Take {
    return this.#config.failed.rate > 0 ? this.#failed.take(receiver) : unlimited;
  }

  /** Whether the failure budget has a token left, without spending it. */
  failureBudgetLeft(receiver: string): Take {
    return this.#config.failed.rate > 0 ? this.#failed.peek(receiver) : unlimited;
  }

  /** Spends a token of the valid-delivery budget. */
  validDelivery(receiver: string): Take {
    return this.#config.valid.rate > 0 ? this.#valid.take(receiver) : unlimited;
  }

  /** Spends a token of the status-query budget (never off: a query reads the cluster). */
  statusQuery(receiver: string): Take {
    return this.#queries.take(receiver);
  }

  /** True when `deliveryKey` (a delivery id and a hash of its body) already succeeded for `receiver`. */
  isDuplicate(receiver: string, deliveryKey: string | undefined): boolean {
    return deliveryKey !== undefined && (this.#ids.get(receiver)?.has(deliveryKey) ?? false);
  }

  /** True when the replay window is on and this signed body was already delivered to this receiver. */
  isReplay(receiver: string, bodyDigest: string | undefined): boolean {
    return this.#bodies !== undefined && bodyDigest !== undefined && this.#bodies.has(`${receiver}\n${bodyDigest}`);
  }

  /** The body's digest for replay detection, or undefined when the window is off. */
  bodyDigest(body: Uint8Array): string | undefined {
    return this.#bodies ? createHash("sha256").update(body).digest("base64") : undefined;
  }

  /** Records a successful delivery's id and body, so repeats are recognised. */
  succeeded(receiver: string, deliveryKey: string | undefined, bodyDigest: string | undefined): void {
    if (deliveryKey !== undefined) {
      let ids = this.#ids.get(receiver);
      if (ids) this.#ids.delete(receiver);
      else {
        if (this.#ids.size >= DELIVERY_ID_RECEIVERS) this.#ids.delete(this.#ids.keys().next().value!);
        ids = new RecentKeys(DELIVERY_IDS_PER_RECEIVER, DELIVERY_ID_TTL_MS);
      }
      this.#ids.set(receiver, ids);
      ids.add(deliveryKey);
    }
    if (bodyDigest !== undefined) this.#bodies?.add(`${receiver}\n${bodyDigest}`);
  }

  stop(): void {
    clearInterval(this.#sweeper);
    clearTimeout(this.#deadlineTimer);
  }
}
