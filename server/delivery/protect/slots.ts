/**
 * @module server/delivery/protect/slots
 * A counting semaphore with a FIFO queue: at most `capacity` holders at once, the others wait
 * their turn. Used for the deliveries that hold a parsed body (protect/guards.ts).
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
      const grant = () => {
        this.#held++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.#held--;
          this.#waiting.shift()?.();
        });
      };
      if (this.#held < this.#capacity) grant();
      else this.#waiting.push(grant);
    });
  }

  get held(): number {
    return this.#held;
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}
