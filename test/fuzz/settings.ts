/**
 * How much the fuzz suite runs. `npm test` runs it with a fixed seed and a few hundred runs per
 * property, a few seconds in all; the environment turns it into a long run (bench/fuzz-long.ts):
 *
 *   FUZZ_SEED=<int>   the seed of every property (default 20260901); a failure prints the seed
 *                     and the shrunk counterexample's path, which replay it
 *   FUZZ_RUNS=<int>   runs of every property, instead of each property's own (25 to 300)
 */
import type fc from "fast-check";

const DEFAULT_SEED = 20260901;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

export const FUZZ_SEED = envInt("FUZZ_SEED") ?? DEFAULT_SEED;
const FUZZ_RUNS = envInt("FUZZ_RUNS");

/** True when FUZZ_RUNS asks for a long run (tests may then widen what they generate). */
export const LONG_RUN = FUZZ_RUNS !== undefined;

/** fast-check parameters: the suite's seed, and `runs` unless FUZZ_RUNS overrides it. */
export function params<T>(runs: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: FUZZ_RUNS ?? runs, endOnFailure: true };
}
