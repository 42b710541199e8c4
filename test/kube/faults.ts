/**
 * @module faults
 * Fault injection: make matching requests fail with a Status, hang, or lose their connection,
 * a given number of times. Faults are checked before routing, in the order they were added, so
 * a test can fail any request, including discovery and watches.
 */

/** Answer with this HTTP status and a Status body (reason derived from the code unless given). */
export interface FaultStatus {
  status: number;
  /** Sets the `Retry-After` header and `details.retryAfterSeconds`. */
  retryAfterSeconds?: number;
  message?: string;
}

/**
 * `"hang"`: never answer until the fault is removed/cleared or the server stops; the request is then
 * dropped, never processed, so a hung write has no effect. `"hold"`: the same wait, but once released
 * the request is processed and answered as usual (a slow API server that a test lets go of).
 * `"drop"`: reset the connection with no answer.
 */
export type FaultResponse = FaultStatus | "hang" | "hold" | "drop";

export interface FaultSpec {
  /** HTTP method, case-insensitive; any when absent. */
  method?: string;
  /** A string matches the URL path exactly; a RegExp is tested against the path. Any when absent. */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false); both when absent. */
  watch?: boolean;
  /** Only requests whose query has this parameter, e.g. `continue` for the later pages of a list. */
  param?: string;
  /** How many matching requests to affect: default 1, `Infinity` for all. */
  times?: number;
  respond: FaultResponse;
}

/** A fault that has been added; `hits` counts the requests it affected. */
export interface Fault {
  readonly spec: Readonly<FaultSpec>;
  readonly hits: number;
  readonly remaining: number;
  /** Remove this fault and release the requests it is holding. */
  remove(): void;
}

interface ActiveFault extends Fault {
  hits: number;
  remaining: number;
}

/** What the server should do with a request. */
export interface FaultDecision {
  respond: FaultResponse;
  /** For "hang" and "hold": resolves when the request is released. */
  released?: Promise<void>;
}

export interface RequestShape {
  method: string;
  path: string;
  watch: boolean;
  query?: URLSearchParams;
}

export class FaultInjector {
  readonly #faults: ActiveFault[] = [];
  /** Hung requests and the fault holding each; an exhausted fault keeps holding until released. */
  readonly #held = new Map<() => void, ActiveFault>();

  /** Add a fault; see {@link FaultSpec}. */
  add(spec: FaultSpec): Fault {
    const times = spec.times ?? 1;
    if (!(times > 0)) throw new Error(`Fault times must be positive, got ${times}.`);
    if (typeof spec.respond === "object" && !(spec.respond.status >= 400 && spec.respond.status <= 599)) {
      throw new Error(`Fault status must be 4xx or 5xx, got ${spec.respond.status}.`);
    }
    const fault: ActiveFault = {
      spec: { ...spec },
      hits: 0,
      remaining: times,
      remove: () => {
        const i = this.#faults.indexOf(fault);
        if (i >= 0) this.#faults.splice(i, 1);
        this.#release((f) => f === fault);
      },
    };
    this.#faults.push(fault);
    return fault;
  }

  /** Remove every fault and release every hung request. */
  clear(): void {
    this.#faults.length = 0;
    this.releaseAll();
  }

  /** Faults still active, in match order. */
  list(): readonly Fault[] {
    return [...this.#faults];
  }

  /** How many requests are hung right now. */
  get hung(): number {
    return this.#held.size;
  }

  /** Release every hung request but keep the faults (the server is stopping). */
  releaseAll(): void {
    this.#release(() => true);
  }

  #release(which: (fault: ActiveFault) => boolean): void {
    for (const [release, fault] of [...this.#held]) if (which(fault)) release();
  }

  /** The first matching fault's decision (consuming one of its uses), or undefined. */
  match(request: RequestShape): FaultDecision | undefined {
    const fault = this.#faults.find((f) => matchesFault(f.spec, request));
    if (!fault) return undefined;
    fault.hits++;
    fault.remaining--;
    if (fault.remaining <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
    if (fault.spec.respond !== "hang" && fault.spec.respond !== "hold") return { respond: fault.spec.respond };
    const released = new Promise<void>((resolve) => {
      const release = () => {
        this.#held.delete(release);
        resolve();
      };
      this.#held.set(release, fault);
    });
    return { respond: fault.spec.respond, released };
  }
}

function matchesFault(spec: FaultSpec, request: RequestShape): boolean {
  if (spec.method && spec.method.toUpperCase() !== request.method) return false;
  if (spec.watch !== undefined && spec.watch !== request.watch) return false;
  if (spec.param !== undefined && !request.query?.has(spec.param)) return false;
  if (spec.path === undefined) return true;
  return typeof spec.path === "string" ? spec.path === request.path : spec.path.test(request.path);
}
