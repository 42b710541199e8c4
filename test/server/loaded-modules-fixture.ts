/**
 * Preloaded into `bun server/main.ts` by main.test.ts: at exit, writes to stderr one line, the
 * JSON list of every module the process loaded (Bun's require.cache holds ES modules too).
 */
process.on("exit", () => {
  process.stderr.write(`loaded-modules ${JSON.stringify(Object.keys(require.cache))}\n`);
});
