/**
 * The fuzz suite (test/fuzz), long: the same properties with many more runs and a new seed each
 * time (printed, so a failure can be replayed). Not part of `npm test`.
 *
 *   npm run fuzz:long                         # 2,000 runs per property, random seed
 *   bun bench/fuzz-long.ts --runs 10000 --seed 42
 *
 * A failure prints fast-check's counterexample with its seed and path; replay it with
 * `FUZZ_SEED=<seed> FUZZ_RUNS=<runs> bun test test/fuzz`.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "2000" },
    seed: { type: "string" },
    filter: { type: "string" },
  },
});

const runs = Number.parseInt(values.runs!, 10);
if (!Number.isSafeInteger(runs) || runs < 1 || runs > 1_000_000) {
  console.error(`--runs must be an integer between 1 and 1000000, got ${values.runs}`);
  process.exit(2);
}
const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);

// Per-test timeout: a generous 20 ms per run of the slowest (HTTP) properties.
const timeoutMs = Math.max(60_000, runs * 20);
const args = ["test", "--timeout", String(timeoutMs), "test/fuzz"];
if (values.filter) args.push("-t", values.filter);
const child = Bun.spawn([process.execPath, ...args], {
  stdout: "inherit",
  stderr: "inherit",
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_RUNS: String(runs) },
});
const code = await child.exited;
if (code !== 0) console.error(`fuzz: failed with FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
process.exit(code);
