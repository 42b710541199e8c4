/**
 * The load tools, each in its own process: wrk (closed model, when installed; it drives a bare
 * Bun server about 2.5 times harder than autocannon can on this machine, so the ceiling is the
 * server's and not the tool's), autocannon (closed model, and a fixed number of requests), and
 * bench/load/paced.mjs (open model at a constant rate).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchRequest } from "./fixtures";

export interface LoadResult {
  readonly tool: "wrk" | "autocannon" | "paced";
  readonly answered: number;
  readonly statuses: Record<string, number>;
  readonly socketErrors: number;
  readonly timeouts: number;
  readonly rps: number;
  /** Latency percentiles, ms. */
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly elapsedMs: number;
  /** CPU the load tool itself used, as a share of one core (1 = a whole core). */
  readonly toolCpu: number;
  /** autocannon: wall-clock ms (sub-ms) when the first and the last request was written. */
  readonly firstSentAt?: number;
  readonly lastSentAt?: number;
  /** paced: percentiles timed from the send rather than from the due time. */
  readonly p50FromSend?: number | null;
  readonly p99FromSend?: number | null;
}

const ROOT = join(import.meta.dir, "..", "..");

/** Answers other than `expected` (a status or several), plus socket errors and timeouts. */
export function errorsOf(r: LoadResult, expected: number | readonly number[]): number {
  const ok = typeof expected === "number" ? [expected] : expected;
  let n = r.socketErrors + r.timeouts;
  for (const [status, count] of Object.entries(r.statuses)) if (!ok.includes(Number(status))) n += count;
  return n;
}

async function runTool(
  cmd: string[],
  env?: Record<string, string>,
): Promise<{ json: Record<string, unknown>; cpu: number; wallMs: number }> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", cwd: ROOT, env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const wallMs = performance.now() - started;
  const line = out
    .trim()
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (code !== 0 || !line)
    throw new Error(`${cmd[0]} failed (exit ${code}): ${err.trim() || out.trim()}`.slice(0, 2000));
  const usage = proc.resourceUsage();
  const cpuUs = usage ? Number(usage.cpuTime.user + usage.cpuTime.system) : 0;
  return { json: JSON.parse(line) as Record<string, unknown>, cpu: cpuUs / 1000 / wallMs, wallMs };
}

export interface ClosedSpec {
  readonly url: string;
  readonly requests: readonly BenchRequest[];
  readonly connections: number;
  readonly deliveryIdHeader?: string;
}

/**
 * wrk, one thread, for `seconds`. With `rate`, each connection thinks between requests so that
 * about `rate` requests per second arrive (the achieved rate is in the result).
 */
export async function runWrk(spec: ClosedSpec & { seconds: number; rate?: number }): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-bench-wrk-"));
  try {
    spec.requests.forEach((r, i) => {
      writeFileSync(join(dir, `${i}.path`), r.path);
      writeFileSync(
        join(dir, `${i}.headers`),
        Object.entries(r.headers)
          .map(([k, v]) => `${k}: ${v}`)
          .join("\n"),
      );
      writeFileSync(join(dir, `${i}.body`), r.body);
    });
    if (spec.deliveryIdHeader) writeFileSync(join(dir, "delivery-id-header"), spec.deliveryIdHeader);
    const env = spec.rate ? { WRK_THINK_MS: String((spec.connections * 1000) / spec.rate) } : undefined;
    const { json, cpu, wallMs } = await runTool(
      [
        "wrk",
        "-t1",
        `-c${spec.connections}`,
        `-d${spec.seconds}s`,
        "--timeout",
        "10s",
        "-s",
        join(ROOT, "bench/load/wrk.lua"),
        spec.url,
        "--",
        dir,
      ],
      env,
    );
    const us = (k: string) => (typeof json[k] === "number" ? (json[k] as number) / 1000 : null);
    const answered = json.answered as number;
    return {
      tool: "wrk",
      answered,
      statuses: json.statuses as Record<string, number>,
      socketErrors: json.socketErrors as number,
      timeouts: json.timeouts as number,
      rps: answered / ((json.durationUs as number) / 1e6),
      p50: us("p50Us"),
      p99: us("p99Us"),
      max: us("maxUs"),
      elapsedMs: wallMs,
      toolCpu: cpu,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeSpec(spec: object): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-bench-"));
  const path = join(dir, "spec.json");
  writeFileSync(path, JSON.stringify(spec));
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** autocannon, for `seconds` or for exactly `amount` requests spread over the connections. */
export async function runAutocannon(
  spec: ClosedSpec & ({ seconds: number } | { amount: number }),
): Promise<LoadResult> {
  const file = writeSpec({
    url: spec.url,
    requests: spec.requests,
    connections: spec.connections,
    deliveryIdHeader: spec.deliveryIdHeader,
    ...("amount" in spec ? { amount: spec.amount } : { durationSeconds: spec.seconds }),
  });
  try {
    const { json, cpu } = await runTool(["node", join(ROOT, "bench/load/closed.mjs"), file.path]);
    return { tool: "autocannon", ...(json as object), toolCpu: cpu } as LoadResult;
  } finally {
    file.done();
  }
}

/** Constant arrival rate for `seconds`. */
export async function runPaced(spec: ClosedSpec & { rate: number; seconds: number }): Promise<LoadResult> {
  const file = writeSpec({
    url: spec.url,
    requests: spec.requests,
    connections: spec.connections,
    deliveryIdHeader: spec.deliveryIdHeader,
    rate: spec.rate,
    durationSeconds: spec.seconds,
  });
  try {
    const { json, cpu } = await runTool(["node", join(ROOT, "bench/load/paced.mjs"), file.path]);
    return { tool: "paced", ...(json as object), toolCpu: cpu } as LoadResult;
  } finally {
    file.done();
  }
}
