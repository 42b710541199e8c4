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
import { createHmac, timingSafeEqual } from "node:crypto";

const config = JSON.parse(process.argv[2] ?? "{}") as { port?: number; hooks?: Record<string, string> };
const hooks = new Map(Object.entries(config.hooks ?? {}));

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: config.port ?? 0,
  async fetch(request) {
    const url = request.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const token = hooks.get(path);
    if (request.method !== "POST" || token === undefined) return new Response("not found", { status: 404 });
    const body = new Uint8Array(await request.arrayBuffer());
    const header = request.headers.get("x-hub-signature-256") ?? "";
    const expected = Buffer.from(`sha256=${createHmac("sha256", token).update(body).digest("hex")}`);
    const given = Buffer.from(header);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return new Response("signature mismatch", { status: 400 });
    return new Response("ok");
  },
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}` }));
