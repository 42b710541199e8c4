/**
 * @module server/main
 * Entry point: flags in, a running server out. Exit codes: 2 for bad flags, 1 when there is
 * nothing to serve (no cluster and no --receivers-file), 0 after a clean shutdown on SIGTERM or
 * SIGINT.
 */
import { existsSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import { parseConfig } from "./config";
import { createKubeClient, loadKubeConfig } from "./kube/client";
import type { KubePort } from "./kube/port";
import { createLogger, stderrLines } from "./observe/log";
import { startFluxhook, type Fluxhook } from "./server";

/** How long start-up waits for the API server before a file-mode server falls back to dry run. */
const CLUSTER_PROBE_TIMEOUT_MS = 2_000;

const parsed = parseConfig(process.argv.slice(2), process.env);
if (parsed.ok === "help") {
  console.log(parsed.text);
  process.exit(0);
}
if (!parsed.ok) {
  console.error(`fluxhook: ${parsed.error}`);
  process.exit(2);
}
const { config } = parsed;
const missing = config.receiversFiles.filter((f) => !existsSync(f));
if (missing.length > 0) {
  console.error(`fluxhook: --receivers-file ${missing.join(", ")}: no such file`);
  process.exit(2);
}
// The logger's stderr batch is owned here, and written out at exit.
const stderr = stderrLines();
process.on("exit", stderr.flush);
const log = createLogger({ level: config.logLevel, encoding: config.logEncoding, write: stderr.write });
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
// (within CLUSTER_PROBE_TIMEOUT_MS); otherwise it runs dry.
let kube: KubePort | undefined = kubeConfig ? createKubeClient({ kubeConfig, log }) : undefined;
if (kube && fromFiles) {
  const probe = await kube.version(CLUSTER_PROBE_TIMEOUT_MS);
  if (!probe.ok) {
    log.info("the cluster in the Kubernetes configuration does not answer; running dry", { error: probe.reason });
    kube = undefined;
  }
}

server = await startFluxhook({ config, log, kube });
if (fromFiles) {
  // In a dry run (`npm start`'s demo) the URLs are what to point a sender or the README's curl
  // at. Otherwise their digests are secrets, and stdout ends up in pod logs: they are masked.
  for (const r of server.receivers()) {
    const path = server.dryRun ? r.path : "/hook/*** (sha256 of token, name and namespace)";
    console.log(
      `receiver ${r.key.namespace}/${r.key.name} (${r.type ?? "invalid"}, ${r.state}): ${server.receiverUrl}${path}`,
    );
  }
}
