/**
 * @module server/runtime/work-queue
 * A keyed work queue after client-go's workqueue: each key is run by `work` at most once at a
 * time, at most `concurrency` keys at once, in the order they were first added. A key added while
 * it runs is run once more after (a trailing re-run), however often it was added meanwhile, so
 * the last change is always acted on and never twice in parallel. A failed run is put back with
 * `retry`, after the capped, jittered backoff of shared/backoff.ts; `forget` resets its count.
 *
 * Receiver reconciles, Secret reads, Events and target coalescing all need exactly this; one
 * implementation keeps their ordering and retry rules the same.
 */
import { backoffDelayMs, type Backoff } from "../../shared";

export interface WorkQueueOptions {
  /** Keys run at once. */
  readonly concurrency: number;
  /** Runs one key; the queue marks it done when the promise settles (a rejection is logged by the caller). */
  readonly work: (key: string) => Promise<unknown> | undefined;
  /** Retry delays of `retry` (unused when nothing is retried). */
  readonly backoff?: Backoff;
  /** [0, 1) for the jitter; injected so tests can fix it. */
  readonly random?: () => number;
}

export type KeyState = "queued" | "running" | "waiting to retry";

export class WorkQueue {
  readonly #options: WorkQueueOptions;
  /** Keys to run, oldest first (a Set keeps insertion order); a running key here runs again after. */
  readonly #queued = new Set<string>();
  /** Keys added while they run: queued again when their run settles (kept apart so #pump never scans them). */
  readonly #rerun = new Set<string>();
  readonly #running = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retries = new Map<string, ReturnType<typeof setTimeout>>();
  #stopped = false;

  constructor(options: WorkQueueOptions) {
    this.#options = options;
  }

  /** Runs `key` soon, or once more after its run in flight. */
  add(key: string): void {
    if (this.#stopped) return;
    if (this.#running.has(key)) this.#rerun.add(key);
    else this.#queued.add(key);
    this.#pump();
  }

  /**
   * Runs `key` again after its backoff (the count of its retries since the last `forget` decides
   * the delay), unless it is added sooner. Returns the delay, for logs.
   */
  retry(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelayMs(
      this.#options.backoff ?? NO_BACKOFF,
      failures,
      (this.#options.random ?? Math.random)(),
    );
    this.#cancelRetry(key);
    if (this.#stopped) return delay;
    const timer = setTimeout(() => {
      this.#retries.delete(key);
      this.add(key);
    }, delay);
    timer.unref?.();
    this.#retries.set(key, timer);
    return delay;
  }

  /** Retries of `key` since it last succeeded. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** `key` succeeded: its next failure starts the backoff afresh. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Drops everything about `key` except a run in flight (which finishes, but is not re-run). */
  remove(key: string): void {
    this.#queued.delete(key);
    this.#rerun.delete(key);
    this.#failures.delete(key);
    this.#cancelRetry(key);
  }

  /** Whether a retry of `key` is waiting for its backoff (also while its failed run is settling). */
  retrying(key: string): boolean {
    return this.#retries.has(key);
  }

  /**
   * Whether `key` was added again while it runs: its trailing re-run will act on the newer state,
   * so a run that has not written yet may leave the writing to it.
   */
  addedWhileRunning(key: string): boolean {
    return this.#rerun.has(key);
  }

  state(key: string): KeyState | undefined {
    if (this.#running.has(key)) return "running";
    if (this.#queued.has(key) || this.#rerun.has(key)) return "queued";
    return this.#retries.has(key) ? "waiting to retry" : undefined;
  }

  /** Keys running now. */
  get running(): number {
    return this.#running.size;
  }

  stop(): void {
    this.#stopped = true;
    this.#queued.clear();
    this.#rerun.clear();
    for (const timer of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  #cancelRetry(key: string) {
    const timer = this.#retries.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#retries.delete(key);
  }

  #pump() {
    // A loop, not recursion: keys whose work ends synchronously free their place for the next.
    while (!this.#stopped && this.#running.size < this.#options.concurrency) {
      const key = this.#queued.values().next().value;
      if (key === undefined) return;
      this.#queued.delete(key);
      this.#cancelRetry(key);
      this.#running.add(key);
      const done = () => {
        this.#settled(key);
        this.#pump();
      };
      let run: Promise<unknown> | undefined;
      try {
        run = this.#options.work(key);
      } catch (err) {
        done();
        throw err;
      }
      if (run) run.then(done, done);
      else this.#settled(key);
    }
  }

  /** `key`'s run is over: it is queued again when it was added meanwhile. */
  #settled(key: string) {
    this.#running.delete(key);
    if (this.#rerun.delete(key)) this.#queued.add(key);
  }
}

const NO_BACKOFF: Backoff = { baseMs: 0, capMs: 0 };
