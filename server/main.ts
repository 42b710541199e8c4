/**
 * @module server/main
 * Entry point: flags in, a running server out. Exit codes: 2 for bad flags, 1 when there is
 * nothing to serve (no cluster and no --receivers-file) or a listen address is taken, 0 after a
 * clean shutdown on SIGTERM or SIGINT.
 *
 * The server's modules (client-node, Elysia, prom-client and the rest) are imported only once the
 * flags ask for a server: `fluxhook send ...`, `--help`, `--version` and a refused flag answer
 * without loading them.
 */
import { existsSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
// Bundled into the executable: the release checks this version against its tag.
import { version as VERSION } from "../package.json";
import { parseConfig } from "./config";
import type { KubePort } from "./kube/port";
import type { Fluxhook } from "./server";

/** How long start-up waits for the API server before a file-mode server falls back to dry run. */
const CLUSTER_PROBE_TIMEOUT_MS = 2_000;

// `fluxhook send ...`: the sender's CLI (action/cli.ts), loaded only for it.
if (process.argv[2] === "send") {
  const { cli } = await import("../action/cli");
  process.exit(await cli(process.argv.slice(3), process.env));
}

const parsed = parseConfig(process.argv.slice(2), process.env);
if (parsed.ok === "help") {
  console.log(parsed.text);
  process.exit(0);
}
if (parsed.ok === "version") {
  console.log(`fluxhook ${VERSION}`);
  process.exit(0);
}
if (!parsed.ok) {
  console.error(`fluxhook: ${parsed.error}`);
  process.exit(2);
}
const { config } = parsed;
const missing = config.receiversFiles.filter((file) => !existsSync(file));
if (missing.length > 0) {
  console.error(`fluxhook: --receivers-file ${missing.join(", ")}: no such file`);
  process.exit(2);
}

const [
  { createKubeClient, loadKubeConfig },
  { createLogger, LOG_BACKLOG_MAX_BYTES, stderrLines },
  { ApiRequestCounts },
  { startFluxhook },
] = await Promise.all([
  import("./kube/client"),
  import("./runtime/log"),
  import("./observe/metrics"),
  import("./server"),
]);
// The logger's stderr batch is owned here, and written out at exit.
const stderr = stderrLines();
process.on("exit", stderr.flushAtExit);
const log = createLogger({ level: config.logLevel, encoding: config.logEncoding, write: stderr.write });
stderr.onDropped((lines) =>
  log.error("log lines dropped: stderr was not read for a while", {
    dropped: lines,
    backlogMaxBytes: LOG_BACKLOG_MAX_BYTES,
  }),
);
const fromFiles = config.receiversFiles.length > 0;

// Registered before anything starts: a signal during start-up still ends the process cleanly
// (and Bun installs a handler only after the tick that registers it).
let server: Fluxhook | undefined;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    log.info("shutting down", { signal });
    await server?.stop();
    process.exit(0);
  });
}

let kubeConfig: KubeConfig | undefined;
try {
  kubeConfig = loadKubeConfig(config.kubeconfig, process.env);
} catch (err) {
  if (!fromFiles) {
    log.error("cannot load the Kubernetes configuration: set KUBECONFIG or run in a cluster", { error: err });
    process.exit(1);
  }
}

// The Kubernetes port, built once. File mode still annotates through a cluster when one answers
// (within CLUSTER_PROBE_TIMEOUT_MS); otherwise it runs dry. Its API requests are counted for the
// metrics.
const apiRequests = new ApiRequestCounts();
let kube: KubePort | undefined = kubeConfig
  ? createKubeClient({ kubeConfig, log, onResponse: apiRequests.record })
  : undefined;
if (kube && fromFiles) {
  const probe = await kube.version(CLUSTER_PROBE_TIMEOUT_MS);
  if (!probe.ok) {
    // A configured cluster that does not answer is an error its user must see, not a quiet dry run.
    log.error("the cluster in the Kubernetes configuration does not answer: targets are logged, not annotated", {
      error: probe.reason,
    });
    kube = undefined;
  }
}

// In file mode each Receiver's URL is printed at start and again whenever an edit of the file
// adds or changes one, so the URL to point a sender at is always on screen.
const printed = new Map<string, string>();
const announce = () => {
  if (!server) return;
  const seen = new Set<string>();
  for (const receiver of server.receivers()) {
    const name = `${receiver.key.namespace}/${receiver.key.name}`;
    seen.add(name);
    // In a dry run (`npm start`'s demo) the URLs are what to point a sender or the README's curl
    // at. Otherwise their digests are secrets, and stdout ends up in pod logs: they are masked.
    const path = server.dryRun ? receiver.path : "/hook/*** (sha256 of token, name and namespace)";
    const line = `receiver ${name} (${receiver.type ?? "invalid"}, ${receiver.state}): ${server.receiverUrl}${path}`;
    if (printed.get(name) !== line) console.log(line);
    printed.set(name, line);
  }
  for (const name of printed.keys()) {
    if (seen.has(name)) continue;
    console.log(`receiver ${name}: no longer served`);
    printed.delete(name);
  }
};

try {
  server = await startFluxhook({ config, log, kube, apiRequests, onReceiversFileLoaded: announce });
} catch (err) {
  const taken = addressInUse(err);
  if (!taken) throw err;
  console.error(`fluxhook: ${taken} is already in use; stop what listens there or choose another address`);
  process.exit(1);
}
if (fromFiles) announce();

/**
 * The flag and address of a listener that could not bind because the address is taken, from Bun's
 * EADDRINUSE error (its message names the port: "Failed to start server. Is port 9292 in use?").
 */
function addressInUse(err: unknown): string | undefined {
  if ((err as { code?: unknown })?.code !== "EADDRINUSE") return undefined;
  const port = Number(/port (\d+)/.exec(String((err as Error).message))?.[1]);
  const listeners = [
    ["--receiverAddr", config.receiverAddr],
    ["--health-addr", config.healthAddr],
    ["--metrics-addr", config.metricsAddr],
  ] as const;
  // An address of undefined is a listener turned off (=0), which cannot be the one in use.
  const found = listeners.find(([, addr]) => addr?.port === port);
  return found?.[1] ? `${found[0]} ${found[1].host}:${found[1].port}` : `port ${port}`;
}
