#!/usr/bin/env node
/**
 * @module action/cli-main
 * Entry point of `action/dist/cli.js` (`node cli.js send ...` or `node cli.js ...`; cli.ts reads
 * the optional `send`): runs the CLI and sets the exit code. `fluxhook send` in the image goes to
 * `cli` through server/main.ts.
 */
import { cli } from "./cli";

process.exitCode = await cli(process.argv.slice(2), process.env);
