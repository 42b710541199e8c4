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

/** Lines are batched: a synchronous write per line was costly under load (bench/README.md). */
const LOG_FLUSH_MS = 20;
const LOG_FLUSH_BYTES = 64 * 1024;

/**
 * Lines bound for stderr, batched and written together at most LOG_FLUSH_MS after the first of
 * them (or once LOG_FLUSH_BYTES are waiting). Its owner (main.ts) calls `flush` at exit.
 */
export function stderrLines(): { write: (line: string) => void; flush: () => void } {
  let pending: string[] = [];
  let pendingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    pendingBytes = 0;
    try {
      writeSync(2, text);
    } catch {
      // stderr is gone (closed pipe): nothing left to tell
    }
  };
  const write = (line: string) => {
    pending.push(`${line}\n`);
    pendingBytes += line.length + 1;
    if (pendingBytes >= LOG_FLUSH_BYTES) flush();
    else timer ??= setTimeout(flush, LOG_FLUSH_MS);
  };
  return { write, flush };
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
