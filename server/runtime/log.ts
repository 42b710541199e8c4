/**
 * @module server/runtime/log
 * A small structured logger: one line per record, JSON (the default, as Flux logs) or a console
 * form for people. Fields are plain values chosen by the caller; nothing here ever receives a
 * token, a signature, a Secret value or a body, and callers must keep it that way.
 */
import { writeSync } from "node:fs";
import type { LogEncoding, LogLevel } from "../config";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Whether records of this level are written, so hot paths build fields only when they are. */
  enabled(level: LogLevel): boolean;
  /** A logger whose records all carry these fields. */
  with(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, error: 2 };

export interface LoggerOptions {
  level: LogLevel;
  encoding: LogEncoding;
  /** Where lines go: a batched stderr (`stderrLines`) in the server; tests pass a collector. */
  write: (line: string) => void;
  now?: () => Date;
}

/** Lines are batched: a synchronous write per line is costly under load (bench/README.md). */
const LOG_FLUSH_MS = 20;
const LOG_FLUSH_BYTES = 64 * 1024;
/**
 * Bytes of log lines held while stderr takes none (a pipe its reader drains slowly, as a container
 * runtime does under a burst): about 16,000 lines. Past it the oldest batches are dropped and
 * counted, so a stalled reader costs bounded memory, never a blocked event loop.
 */
export const LOG_BACKLOG_MAX_BYTES = 4 * 1024 * 1024;
/** How soon a write stderr refused (EAGAIN), or took part of, is tried again. */
const LOG_RETRY_MS = 10;
/** At exit, how long the backlog may still be written before what is left is given up. */
const LOG_EXIT_DRAIN_MS = 2_000;

/** One write of some bytes to stderr: how many it took (it may throw EAGAIN, having taken none). */
export type StderrWrite = (bytes: Uint8Array) => number;

export interface StderrLinesOptions {
  /** Default: writeSync to fd 2. */
  readonly write?: StderrWrite;
  readonly retryMs?: number;
  readonly backlogMaxBytes?: number;
}

export interface StderrLines {
  readonly write: (line: string) => void;
  /** Writes what is batched now (what stderr does not take waits in the backlog). */
  readonly flush: () => void;
  /** At exit (`process.on("exit")`, when no timer fires again): flush, then keep writing the backlog for up to LOG_EXIT_DRAIN_MS. */
  readonly flushAtExit: () => void;
  /** Told, once stderr takes lines again, how many were dropped while it did not. */
  readonly onDropped: (listener: (lines: number) => void) => void;
  readonly backlogBytes: () => number;
}

const wouldBlock = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EINTR";
};

function countLines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Lines bound for stderr, batched and written together at most LOG_FLUSH_MS after the first of
 * them (or once LOG_FLUSH_BYTES are waiting). Bun makes fd 2 non-blocking once anything touches
 * `process.stderr`, so a write to a pipe whose reader is slow can take part of a batch, or none:
 * what it did not take waits in a backlog, in order, and is written again LOG_RETRY_MS later; the
 * backlog is bounded (LOG_BACKLOG_MAX_BYTES), and what it drops is counted and reported. Its owner
 * (main.ts) calls `flushAtExit` at exit.
 */
export function stderrLines(options: StderrLinesOptions = {}): StderrLines {
  const writeBytes = options.write ?? ((bytes: Uint8Array) => writeSync(2, bytes));
  const retryMs = options.retryMs ?? LOG_RETRY_MS;
  const backlogMax = options.backlogMaxBytes ?? LOG_BACKLOG_MAX_BYTES;
  let pending: string[] = [];
  let pendingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Batches not written yet, oldest first; the first may be the rest of a batch written in part. */
  const backlog: Uint8Array[] = [];
  let backlogBytes = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let dropped = 0;
  const listeners: ((lines: number) => void)[] = [];

  /** Writes the backlog until it is empty or stderr takes no more; true when it is empty. */
  const drain = (): boolean => {
    while (backlog.length > 0) {
      const head = backlog[0]!;
      let taken: number;
      try {
        taken = writeBytes(head);
      } catch (err) {
        if (wouldBlock(err)) return false;
        // stderr is gone (a closed pipe): nothing left to tell
        backlog.length = 0;
        backlogBytes = 0;
        return true;
      }
      backlogBytes -= taken;
      if (taken >= head.length) backlog.shift();
      else backlog[0] = head.subarray(taken);
    }
    if (dropped > 0) {
      const lines = dropped;
      dropped = 0;
      for (const listener of listeners) listener(lines);
    }
    return true;
  };
  const scheduleDrain = () => {
    retry ??= setTimeout(() => {
      retry = undefined;
      if (!drain()) scheduleDrain();
    }, retryMs);
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length > 0) {
      const batch = Buffer.from(pending.join(""));
      pending = [];
      pendingBytes = 0;
      backlog.push(batch);
      backlogBytes += batch.length;
      // Over the bound: the oldest whole batches go (not the first, which may be half written).
      while (backlogBytes > backlogMax && backlog.length > 2) {
        const [oldest] = backlog.splice(1, 1);
        backlogBytes -= oldest!.length;
        dropped += countLines(oldest!);
      }
    }
    if (retry === undefined && !drain()) scheduleDrain();
  };
  const write = (line: string) => {
    pending.push(`${line}\n`);
    pendingBytes += line.length + 1;
    if (pendingBytes >= LOG_FLUSH_BYTES) flush();
    else timer ??= setTimeout(flush, LOG_FLUSH_MS);
  };
  return {
    write,
    flush,
    flushAtExit: () => {
      // No timer fires again: write until the backlog is empty (the report of what was dropped,
      // batched while draining, included), pausing a millisecond at a time, for a while.
      const until = performance.now() + LOG_EXIT_DRAIN_MS;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (;;) {
        flush();
        const drained = drain();
        if ((drained && pending.length === 0) || performance.now() >= until) return;
        if (!drained) Atomics.wait(pause, 0, 0, 1);
      }
    },
    onDropped: (listener) => void listeners.push(listener),
    backlogBytes: () => backlogBytes,
  };
}

/** Sets `record[k]`, Errors as their message and bigints as strings; undefined values are left out. */
function put(record: LogFields, k: string, v: unknown): void {
  if (v !== undefined) record[k] = v instanceof Error ? v.message : typeof v === "bigint" ? v.toString() : v;
}

export function createLogger(options: LoggerOptions, bound: LogFields = {}): Logger {
  const write = options.write;
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] < RANK[options.level]) return;
    // JSON lines start with level, ts and msg; a field of the same name takes their place.
    const json = options.encoding === "json";
    const record: LogFields = json ? { level, ts: now().toISOString(), msg } : {};
    for (const k in bound) put(record, k, bound[k]);
    if (fields) for (const k in fields) put(record, k, fields[k]);
    if (json) {
      write(stringify(record));
    } else {
      const rest = Object.entries(record)
        .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v, jsonSafe)}`)
        .join(" ");
      write(`${now().toISOString()}\t${level.toUpperCase()}\t${msg}${rest ? `\t${rest}` : ""}`);
    }
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    enabled: (level) => RANK[level] >= RANK[options.level],
    with: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/**
 * JSON of a record whose top-level Errors and bigints were already made plain. A replacer
 * function would be called for every key of every line (bench/README.md); it is used only when
 * something deeper needs it.
 */
function stringify(record: LogFields): string {
  try {
    return JSON.stringify(record);
  } catch {
    return JSON.stringify(record, jsonSafe);
  }
}

/** Errors become their message; bigints become strings (JSON.stringify throws on them). */
function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ level: "error", encoding: "json", write: () => {} });
