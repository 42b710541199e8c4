/**
 * What both bare baselines do before their answer, and nothing else: an unknown path is a 404
 * without reading the body; a known one reads the body and checks `X-Hub-Signature-256` with
 * HMAC-SHA256 in constant time (400 on a mismatch). No framework, no logging, no metrics.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** The refusal of a request that is not a valid signed delivery to one of `hooks`, or undefined. */
export async function refusal(request: Request, hooks: ReadonlyMap<string, string>): Promise<Response | undefined> {
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
  return undefined;
}
