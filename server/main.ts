/**
 * @module server/main
 * Entry point: flags in, a running server out. Exit codes: 2 for bad flags, 1 when the cluster
 * configuration cannot be loaded, 0 after a clean shutdown on SIGTERM or SIGINT.
 */
import { parseConfig } from "./config";
import { loadKubeConfig } from "./kube/client";
import { createLogger } from "./log";
import { startFluxhook } from "./server";

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
const log = createLogger({ level: config.logLevel, encoding: config.logEncoding });

let kubeConfig;
try {
  kubeConfig = loadKubeConfig(config.kubeconfig, process.env);
} catch (err) {
  log.error("cannot load the Kubernetes configuration: set KUBECONFIG or run in a cluster", { error: err });
  process.exit(1);
}

const server = await startFluxhook({ config, log, kubeConfig });
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    log.info("shutting down", { signal });
    await server.stop();
    process.exit(0);
  });
}
