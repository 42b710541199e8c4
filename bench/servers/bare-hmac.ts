/**
 * The ceiling of this stack: a bare Bun server that does only what every receiver must do, and
 * nothing else. It answers `POST /hook/<digest>` for the digests it was given: an unknown path is
 * a 404 without reading the body, a known one reads the body, checks `X-Hub-Signature-256` with
 * HMAC-SHA256 in constant time, and answers 200 or 400. No framework, no logging, no metrics.
 *
 *   bun bench/servers/bare-hmac.ts '{"port":0,"hooks":{"/hook/<digest>":"<token>"}}'
 *
 * Prints `{"url":…}` once listening; runs until SIGTERM.
 */
import { refusal } from "./bare-check";

const config = JSON.parse(process.argv[2] ?? "{}") as { port?: number; hooks?: Record<string, string> };
const hooks = new Map(Object.entries(config.hooks ?? {}));

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: config.port ?? 0,
  async fetch(request) {
    return (await refusal(request, hooks)) ?? new Response("ok");
  },
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}` }));
