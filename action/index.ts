/**
 * @module action
 * Entry point of the bundled action (`action/dist/index.js`): only starts `run()`, which reports
 * every failure itself (`core.setFailed` in a runner, which sets the exit code). Outside a runner
 * the exit code is run's own: 0 delivered, 1 failed, 2 bad usage.
 */
import { inGitHubActions, run } from "./main";

const code = await run();
if (!inGitHubActions(process.env)) process.exitCode = code;
