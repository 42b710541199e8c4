/**
 * @module serve-fixture
 * The test API server as a process, for the benchmark and the compiled-binary test:
 *
 *   bun test/kube/serve-fixture.ts [objects.json]
 *
 * `objects.json` is an array of objects, a List (`{"items":[…]}`), or `{"kinds":[KindSpec…],"items":[…]}`.
 * Environment: KUBE_FIXTURE_PORT (default 0), KUBE_FIXTURE_HISTORY (watch history size),
 * KUBE_FIXTURE_BOOKMARK_MS (bookmark interval), KUBE_FIXTURE_REQUEST_LOG (records kept; default 0 = off,
 * set it to use the "count" command).
 *
 * Prints one JSON line `{"url":…,"kubeconfig":…}` to stdout, then runs until SIGTERM or SIGINT.
 * Optional control: one JSON command per stdin line, one JSON answer per stdout line, e.g.
 *   {"cmd":"stop"} {"cmd":"restart"} {"cmd":"dropWatches","mode":"clean"} {"cmd":"expireWatches"}
 *   {"cmd":"compact"} {"cmd":"count","method":"PATCH","path":"/apis/…"} {"cmd":"resetRequests"}
 *   {"cmd":"get","apiVersion":…,"kind":…,"namespace":…,"name":…} {"cmd":"create","object":{…}}
 *   {"cmd":"patch","apiVersion":…,"kind":…,"namespace":…,"name":…,"patch":{…}}
 *   {"cmd":"fault","method":…,"path":…|"pathPattern":regex,"watch":…,"param":…,"times":n|"Infinity","respond":…}
 *   {"cmd":"clearFaults"}
 */
import { readFileSync } from "node:fs";
import { serveControlChannel } from "./control-channel";
import { startKubeApiServer, type KubeApiServer } from "./server";
import type { FaultResponse } from "./faults";
import type { KindSpec } from "./registry";
import type { KubeObject } from "./types";

interface FixtureFile {
  kinds?: KindSpec[];
  items?: KubeObject[];
}

function readObjects(path: string | undefined): FixtureFile {
  if (!path) return {};
  const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
  if (Array.isArray(parsed)) return { items: parsed as KubeObject[] };
  return parsed as FixtureFile;
}

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  return raw === undefined || raw === "" ? undefined : Number.parseInt(raw, 10);
}

type Command = Record<string, unknown> & { cmd?: string };

async function run(api: KubeApiServer, c: Command): Promise<unknown> {
  const s = (key: string) => c[key] as string;
  switch (c.cmd) {
    case "stop":
      return api.stop();
    case "restart":
      return api.restart();
    case "dropWatches":
      return { ended: api.dropWatches(c.mode === "clean" ? "clean" : "abrupt") };
    case "expireWatches":
      return { ended: api.expireWatches() };
    case "compact":
      return api.compact();
    case "count":
      return {
        count: api.count({
          method: c.method as string | undefined,
          path: c.path as string | undefined,
          watch: c.watch as boolean | undefined,
        }),
      };
    case "resetRequests":
      return api.resetRequests();
    case "get":
      return {
        object: api.store.get(s("apiVersion"), s("kind"), c.namespace as string | undefined, s("name")) ?? null,
      };
    case "create":
      return { object: api.store.create(c.object as KubeObject) };
    case "patch":
      return {
        object: api.store.patch(s("apiVersion"), s("kind"), c.namespace as string | undefined, s("name"), c.patch),
      };
    case "fault":
      api.faults.add({
        method: c.method as string | undefined,
        path: typeof c.pathPattern === "string" ? new RegExp(c.pathPattern) : (c.path as string | undefined),
        watch: c.watch as boolean | undefined,
        param: c.param as string | undefined,
        // JSON has no Infinity: "Infinity" (or null) stands for it.
        times: c.times === null || c.times === "Infinity" ? Infinity : (c.times as number | undefined),
        respond: c.respond as FaultResponse,
      });
      return undefined;
    case "clearFaults":
      return api.faults.clear();
    default:
      throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
  }
}

async function main(): Promise<void> {
  const fixture = readObjects(process.argv[2]);
  const api = await startKubeApiServer({
    port: envInt("KUBE_FIXTURE_PORT"),
    historySize: envInt("KUBE_FIXTURE_HISTORY"),
    bookmarkIntervalMs: envInt("KUBE_FIXTURE_BOOKMARK_MS"),
    requestLogLimit: envInt("KUBE_FIXTURE_REQUEST_LOG") ?? 0,
    kinds: fixture.kinds,
    objects: fixture.items,
  });
  await serveControlChannel(api, run);
}

await main();
