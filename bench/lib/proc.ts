/**
 * Processes of the benchmark: spawning them, reading their first JSON line and their control
 * answers, free loopback ports, readiness polls, peak RSS from /proc, and stopping them.
 */
import { createServer } from "node:net";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";

/** Lines of a process's stdout, one at a time. */
export class LineReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next line, or undefined at the end of the stream. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }
}

/** Rejects after `ms` with a message naming what was awaited. */
export function deadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** A process that prints one JSON line when it is ready, then answers JSON-lines commands. */
export interface JsonProcess<T> {
  readonly proc: Subprocess<"pipe", "pipe", "inherit">;
  readonly hello: T;
  /** Sends one command and returns its answer (commands are answered in order). */
  ask<R = Record<string, unknown>>(command: Record<string, unknown>): Promise<R>;
  stop(): Promise<void>;
}

export async function startJsonProcess<T>(
  what: string,
  cmd: string[],
  env?: Record<string, string>,
): Promise<JsonProcess<T>> {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "inherit", env: { ...process.env, ...env } });
  const lines = new LineReader(proc.stdout);
  const first = await deadline(`${what} to start`, 60_000, lines.next());
  if (first === undefined) throw new Error(`${what} exited before it was ready (code ${await proc.exited})`);
  let queue = Promise.resolve();
  return {
    proc,
    hello: JSON.parse(first) as T,
    ask<R>(command: Record<string, unknown>): Promise<R> {
      const answer = queue.then(async () => {
        proc.stdin.write(`${JSON.stringify(command)}\n`);
        await proc.stdin.flush();
        const line = await deadline(`${what} to answer ${String(command.cmd)}`, 60_000, lines.next());
        if (line === undefined) throw new Error(`${what} exited`);
        const parsed = JSON.parse(line) as { ok: boolean; error?: string };
        if (!parsed.ok) throw new Error(`${what}: ${parsed.error}`);
        return parsed as R;
      });
      queue = answer.then(
        () => {},
        () => {},
      );
      return answer;
    },
    stop: () => stopProcess(proc),
  };
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s. */
export async function stopProcess(proc: Subprocess<any, any, any>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
  if (!exited) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

/** A loopback port free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `url` every `intervalMs` until it answers `status`; returns the milliseconds from `since`
 * (a performance.now() reading) to that answer. Bounded by `timeoutMs`.
 */
export async function waitForStatus(
  url: string,
  status: number,
  since: number,
  timeoutMs: number,
  intervalMs = 1,
): Promise<number> {
  const until = since + timeoutMs;
  while (performance.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === status) return performance.now() - since;
    } catch {
      // not listening yet
    }
    await Bun.sleep(intervalMs);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
}

/** Peak resident set size of a process since start or since the last reset, in bytes (VmHWM). */
export function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process now, in bytes (VmRSS). */
export function currentRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets a process's peak RSS to its current RSS (Linux: "5" into clear_refs), so each scenario reports its own peak. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // not Linux, or not allowed: peaks then cover the process's whole life, which the table says
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Child processes of a process, from /proc/<pid>/task/<tid>/children. */
function childCount(pid: number): number {
  try {
    let n = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (children) n += children.split(/\s+/).length;
    }
    return n;
  } catch {
    return 0;
  }
}

/**
 * Waits until a server has finished the work a run left behind: no child processes (adnanh/webhook
 * runs each hook's command after it has answered, so a run leaves a backlog of forks) and no CPU
 * spent over 100 ms. Bounded by `timeoutMs`; returns how long it waited.
 */
export async function quiesce(pid: number, timeoutMs = 60_000): Promise<number> {
  const start = performance.now();
  let before = cpuMs(pid) ?? 0;
  while (performance.now() - start < timeoutMs) {
    await Bun.sleep(100);
    const now = cpuMs(pid) ?? 0;
    if (childCount(pid) === 0 && now - before <= 5) break;
    before = now;
  }
  return performance.now() - start;
}
