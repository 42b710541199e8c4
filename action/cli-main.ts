#!/usr/bin/env node
/**
 * @module action/cli-main
 * Entry point of `action/dist/cli.js` (`node cli.js send ...` or `node cli.js ...`): runs the CLI
 * and sets the exit code. `fluxhook send` in the image goes to `cli` through server/main.ts.
 */
import { cli } from "./cli";

const args = process.argv.slice(2);
process.exitCode = await cli(args[0] === "send" ? args.slice(1) : args, process.env);
