/**
 * @module server/runtime/slots
 * A counting semaphore with a FIFO queue: at most `capacity` holders at once, the others wait
 * their turn. Used for the deliveries that hold a parsed body (delivery/protect/guards.ts) and for
 * the Receiver writes in flight (receivers/reconciler.ts).
 *
 * A slot is handed over in a task of its own (setImmediate), never on the releasing holder's
 * microtask: the work behind a slot may be a synchronous parse, and handing slots over on
 * microtasks ran one waiter's parse after another with no I/O polled between them, so `/healthz`
 * and every other receiver waited for the whole queue (bench scenario 7).
 */
export class Slots {
  readonly #capacity: number;
  #held = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Resolves with the release of a slot once one is free; call it exactly once. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const next = this.#waiting.shift();
        // The slot passes to the next waiter as it is; otherwise it is free.
        if (next) setImmediate(next);
        else this.#held--;
      };
      const grant = () => resolve(release);
      if (this.#held < this.#capacity) {
        this.#held++;
        setImmediate(grant);
      } else this.#waiting.push(grant);
    });
  }

  get held(): number {
    return this.#held;
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}
