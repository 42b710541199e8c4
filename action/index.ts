/**
 * @module action
 * Entry point of the bundled action (`action/dist/index.js`): only starts `run()`, which reports
 * every failure itself through `core.setFailed`.
 */
import { run } from "./main";

void run();
