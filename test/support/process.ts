/**
 * fluxhook as a process (`bun server/main.ts`, or the compiled binary), with its JSON log lines
 * collected as they arrive, for tests of the entry point, shutdown and the shipped artifact.
 */
import { waitFor } from "./wait";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const MAIN = `${ROOT}server/main.ts`;

/** A process's log lines as they arrive: those that parse as JSON, the others, and the stream's end. */
export interface JsonLines {
  readonly lines: Record<string, any>[];
  readonly other: string[];
  readonly done: Promise<void>;
}

/** Reads `stream` line by line until it ends (a line split across chunks, or a character, is joined). */
export function jsonLines(stream: ReadableStream<Uint8Array> | number | undefined): JsonLines {
  const lines: Record<string, any>[] = [];
  const other: string[] = [];
  const take = (line: string) => {
    try {
      lines.push(JSON.parse(line));
    } catch {
      other.push(line);
    }
  };
  const done = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        take(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) take(buf);
  })();
  return { lines, other, done };
}

export interface ServerProcess {
  readonly proc: ReturnType<typeof Bun.spawn>;
  /** Every stderr line that parsed as JSON, in order. */
  readonly lines: Record<string, any>[];
  /** Every stderr line that did not. */
  readonly other: string[];
  /** Resolves when stderr has ended (after the process exits). */
  readonly stderrDone: Promise<void>;
  /** The "fluxhook started" line: receiverAddr, healthAddr and metricsAddr as URLs. */
  started(): Promise<{ receiverAddr: string; healthAddr: string; metricsAddr: string }>;
}

/**
 * Starts `command` (default: bun server/main.ts) with `args`, listening on loopback port 0 unless
 * the args say otherwise.
 */
export function spawnServer(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    command?: string[] /** Start from an empty environment, not this one. */;
    cleanEnv?: boolean;
  } = {},
): ServerProcess {
  const command = options.command ?? [process.execPath, MAIN];
  const proc = Bun.spawn([...command, ...args], {
    cwd: ROOT,
    env: { ...(options.cleanEnv ? {} : process.env), ...options.env } as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
  });
  const { lines, other, done: stderrDone } = jsonLines(proc.stderr);
  return {
    proc,
    lines,
    other,
    stderrDone,
    started: () => waitFor("the start line", () => lines.find((l) => l.msg === "fluxhook started") as any),
  };
}

/** The three listeners on loopback port 0. */
/** What a finished command printed, and its exit code. */
export interface Finished {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Runs a command to its end, its output read as it comes (so a full pipe never blocks it). */
export async function runToEnd(
  command: readonly string[],
  options: { readonly cwd: string; readonly env: Record<string, string | undefined> },
): Promise<Finished> {
  const child = Bun.spawn([...command], { cwd: options.cwd, env: options.env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, exitCode };
}

export const LOOPBACK_PORTS = ["--receiverAddr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"];
