#!/usr/bin/env node
/**
 * @module action/cli-main
 * Entry point of `action/dist/cli.js` (`node cli.js ...`; a first argument `send` is skipped, so
 * `fluxhook send` can dispatch here unchanged): runs the CLI and sets the exit code.
 */
import { cli } from "./cli";

const args = process.argv.slice(2);
process.exitCode = await cli(args[0] === "send" ? args.slice(1) : args, process.env);
