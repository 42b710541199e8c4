/**
 * The least any server keeping fluxhook's promise must do for a valid delivery: check the HMAC,
 * then answer 200 only after a JSON merge PATCH of `reconcile.fluxcd.io/requestedAt` on the target
 * that started after the delivery arrived. Coalescing is perfect: one PATCH in flight per target;
 * deliveries that arrive while it is in flight wait for the next one, which starts as soon as the
 * one in flight ends and answers all of them. No framework, logging, metrics, retries or watches.
 *
 *   bun bench/servers/bare-patch.ts '{"port":0,"hooks":{"/hook/<digest>":"<token>"},"api":"http://…","target":"/apis/…/gitrepositories/app"}'
 *
 * Prints `{"url":…}` once listening; runs until SIGTERM.
 */
import { refusal } from "./bare-check";
import { createRequestedAtClock } from "../../server/targets/requested-at";

const config = JSON.parse(process.argv[2] ?? "{}") as {
  port?: number;
  hooks?: Record<string, string>;
  api: string;
  target: string;
};
const hooks = new Map(Object.entries(config.hooks ?? {}));
const targetUrl = `${config.api}${config.target}`;

/** Every PATCH writes a value never written before (two in one millisecond included), as fluxhook does. */
const requestedAt = createRequestedAtClock();

let inFlight: Promise<boolean> | undefined;
let next: Promise<boolean> | undefined;

/** One PATCH; false (a 500 to its waiters) when it fails, never a rejection. */
async function patch(): Promise<boolean> {
  const body = JSON.stringify({
    metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": requestedAt() } },
  });
  try {
    const res = await fetch(targetUrl, {
      method: "PATCH",
      headers: { "content-type": "application/merge-patch+json" },
      body,
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** A PATCH that starts no earlier than now: the one in flight started before, so join the next. */
function requestPatch(): Promise<boolean> {
  if (inFlight === undefined) {
    inFlight = patch().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }
  next ??= inFlight.then(() => {
    next = undefined;
    return requestPatch();
  });
  return next;
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: config.port ?? 0,
  async fetch(request) {
    const refused = await refusal(request, hooks);
    if (refused) return refused;
    return (await requestPatch()) ? new Response("ok") : new Response("patch failed", { status: 500 });
  },
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}` }));
