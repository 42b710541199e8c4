/**
 * @module shared
 * The wire contract shared by the action (Node) and the server (Bun). Runtime-neutral: only
 * `node:` built-ins that both runtimes provide, no Bun or Elysia APIs.
 */
export * from "./webhook-path";
export * from "./signature";
export * from "./headers";
export * from "./backoff";
export * from "./status-query";
export * from "./concurrency";
