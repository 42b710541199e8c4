/**
 * The Kubernetes API test server (test/kube) as a process for the benchmark, with the questions
 * the benchmark asks of it on a JSON-lines control channel:
 *
 *   bun bench/servers/api.ts OBJECTS.json
 *
 * Prints `{"url":…,"kubeconfig":…}` once listening, then answers one JSON line per command line:
 *   {"cmd":"reset"}                                  forget the requests seen so far
 *   {"cmd":"patches","pathPattern":REGEX}             PATCHes of matching paths: count, and the last
 *                                                    one's arrival (wall clock, sub-ms) and body
 *   {"cmd":"statusWrites"}                           Receivers whose status was written (200), and when the last first write arrived
 *   {"cmd":"ready","namespace":NS?}                  Receivers with Ready=True in the store, and the total
 *   {"cmd":"get","apiVersion","kind","namespace","name"}
 *   {"cmd":"requestSummary"}                         requests by method, resource and status: count, first and last arrival
 * Runs until SIGTERM.
 */
import { readFileSync } from "node:fs";
import { serveControlChannel, type Command } from "../../test/kube/control-channel";
import { startKubeApiServer, type KubeApiServer, type KubeObject } from "../../test/kube";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";

/**
 * Sub-millisecond arrival times and bodies of target PATCHes (the request log has whole
 * milliseconds), for "the last annotation was written after the last delivery": Bun.serve is
 * wrapped before the API server starts, so its handler sees every request first.
 */
const targetPatches: { path: string; at: number; body: Promise<string> }[] = [];
const TARGET_PATCH = /^\/apis\/source\.toolkit\.fluxcd\.io\//;
const serve = Bun.serve;
Bun.serve = ((options: Parameters<typeof serve>[0] & { fetch: (request: Request, server: unknown) => unknown }) => {
  const inner = options.fetch;
  return serve({
    ...options,
    fetch(request: Request, server: unknown) {
      if (request.method === "PATCH") {
        const at = performance.timeOrigin + performance.now();
        const path = new URL(request.url).pathname;
        if (TARGET_PATCH.test(path)) targetPatches.push({ path, at, body: request.clone().text() });
      }
      return inner(request, server);
    },
  } as Parameters<typeof serve>[0]);
}) as typeof serve;

const STATUS_PATH = /^\/apis\/notification\.toolkit\.fluxcd\.io\/v1\/namespaces\/[^/]+\/receivers\/[^/]+\/status$/;

async function run(api: KubeApiServer, c: Command): Promise<unknown> {
  switch (c.cmd) {
    case "reset":
      api.resetRequests();
      targetPatches.length = 0;
      return {};
    case "patches": {
      const pattern = new RegExp(String(c.pathPattern));
      const count = api.requests.filter((r) => r.method === "PATCH" && pattern.test(r.path)).length;
      const last = targetPatches.findLast((p) => pattern.test(p.path));
      return { count, lastAt: last?.at ?? null, lastBody: last ? await last.body : null };
    }
    case "statusWrites": {
      // The first successful status write of each Receiver, and when the last of those arrived.
      const seen = new Set<string>();
      let lastFirst = 0;
      let writes = 0;
      for (const r of api.requests) {
        if (r.method !== "PATCH" || r.status !== 200 || !STATUS_PATH.test(r.path)) continue;
        writes++;
        if (seen.has(r.path)) continue;
        seen.add(r.path);
        if (r.time > lastFirst) lastFirst = r.time;
      }
      return { receivers: seen.size, writes, lastFirst };
    }
    case "ready": {
      const all = api.store.list(RECEIVER_API_VERSION, "Receiver", c.namespace as string | undefined) as (KubeObject & {
        status?: { conditions?: { type: string; status: string }[] };
      })[];
      const ready = all.filter((r) =>
        r.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"),
      ).length;
      return { ready, total: all.length };
    }
    case "requestSummary": {
      // What a start-up cost the API server, by kind of request (scenario 6's diagnostics).
      const summary: Record<string, { count: number; first: number; last: number }> = {};
      for (const r of api.requests) {
        const resource = r.path
          .replace(/^\/apis?\/(?:[^/]+\/)?v[0-9a-z]+(?:\/namespaces\/[^/]+)?\//, "")
          .replace(/^([^/]+)\/[^/]+(\/status)?$/, "$1$2 (one)");
        const key = `${r.method}${r.watch ? " watch" : ""} ${resource} ${r.status}`;
        const s = (summary[key] ??= { count: 0, first: r.time, last: r.time });
        s.count++;
        s.first = Math.min(s.first, r.time);
        s.last = Math.max(s.last, r.time);
      }
      return summary;
    }
    case "get":
      return {
        object:
          api.store.get(String(c.apiVersion), String(c.kind), c.namespace as string | undefined, String(c.name)) ??
          null,
      };
    default:
      throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
  }
}

const objects = process.argv[2] ? (JSON.parse(readFileSync(process.argv[2], "utf8")) as KubeObject[]) : [];
const api = await startKubeApiServer({ objects, requestLogLimit: 200_000, historySize: 50_000 });
await serveControlChannel(api, run);
