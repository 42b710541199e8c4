/**
 * Flux's own controllers in the cluster tier: notification-controller (the oracle the differential
 * suite compares fluxhook with, and the bench's peer), source-controller and kustomize-controller
 * (the seed's chain), each built from the Go module proxy by build.sh and run as a process on the
 * tier's kube-apiserver, every listener on loopback.
 *
 * Each runs as its ServiceAccount in flux-system, under the RBAC flux2's install gives it
 * (manifests/rbac of the flux2 release versions.env pins, copied by build.sh): `crd-controller`
 * for all three, and cluster-admin (`cluster-reconciler`) for kustomize-controller, which applies
 * whatever a Kustomization holds. notification-controller's own config/rbac/role.yaml is not what
 * a Flux install runs it with: it still names the old API groups (source.fluxcd.io), so it could
 * not annotate a GitRepository.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jsonLines } from "../support/process";
import { waitFor } from "../support/wait";
import { FLUX_NAMESPACE, type KubeObject } from "./flux";
import { unusedPort } from "../support/ports";
import { tierEnv, type ControlPlane, type Identity } from "./plane";
import { parseAllDocuments } from "yaml";

/** Whether a TCP listener accepts a connection (closed at once, no request sent). */
async function accepts(address: string): Promise<boolean> {
  const [hostname, port] = address.split(":");
  try {
    const socket = await Bun.connect({ hostname: hostname!, port: Number(port), socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

export type FluxController = "notification-controller" | "source-controller" | "kustomize-controller";

const rbacInstalled = new WeakSet<ControlPlane>();

/** flux2's controller RBAC (ClusterRoles and their bindings to flux-system's ServiceAccounts), once per plane. */
function installFluxControllerRbac(plane: ControlPlane): void {
  if (rbacInstalled.has(plane)) return;
  const dir = tierEnv().FLUX_RBAC;
  if (!dir) throw new Error("tier.env has no FLUX_RBAC: run test/cluster/build.sh");
  const objects = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJSON() as KubeObject));
  plane.kubectl(
    ["apply", "--server-side", "--field-manager=tier", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
  rbacInstalled.add(plane);
}

/** A Flux controller's ServiceAccount as a client certificate (what its RBAC bindings name). */
function controllerIdentity(plane: ControlPlane, name: FluxController): Identity {
  return plane.identity(`system:serviceaccount:${FLUX_NAMESPACE}:${name}`, [
    "system:serviceaccounts",
    `system:serviceaccounts:${FLUX_NAMESPACE}`,
  ]);
}

export interface ControllerProcess {
  readonly name: FluxController;
  readonly pid: number;
  /** http://127.0.0.1:<port> of each listener the controller has (receiver: notification-controller's webhook receiver). */
  readonly urls: {
    readonly metrics: string;
    readonly health: string;
    readonly receiver?: string;
    readonly storage?: string;
  };
  /** Its JSON log lines so far. */
  readonly lines: Record<string, any>[];
  /** The log lines at error level so far. */
  errors(): Record<string, any>[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Where each controller's binary is (tier.env, written by build.sh). */
function binaryOf(name: FluxController): string {
  const variable = `${name.toUpperCase().replaceAll("-", "_")}_BIN`;
  const bin = tierEnv()[variable];
  if (!bin) throw new Error(`tier.env has no ${variable}: run test/cluster/build.sh ${name}`);
  return bin;
}

export interface ControllerOptions {
  /** Watch only this namespace (`--watch-all-namespaces=false`, RUNTIME_NAMESPACE); else every namespace. */
  readonly namespace?: string;
  readonly args?: readonly string[];
}

/**
 * Starts a Flux controller as its ServiceAccount and waits for its /readyz (and, for
 * notification-controller, for its receiver to answer).
 */
export async function startController(
  plane: ControlPlane,
  name: FluxController,
  options: ControllerOptions = {},
): Promise<ControllerProcess> {
  installFluxControllerRbac(plane);
  const identity = controllerIdentity(plane, name);
  const scratch = mkdtempSync(join(tmpdir(), `fluxhook-${name}-`));
  const port = () => `127.0.0.1:${unusedPort()}`;
  const metrics = port();
  const health = port();
  const listeners: string[] = [`--metrics-addr=${metrics}`, `--health-addr=${health}`];
  let receiver: string | undefined;
  let storage: string | undefined;
  if (name === "notification-controller") {
    receiver = port();
    // Its event server (Alerts' inbox) too: no listener is left on a wildcard address.
    listeners.push(`--receiverAddr=${receiver}`, `--events-addr=${port()}`);
  } else if (name === "source-controller") {
    storage = port();
    // Artifacts are served here and fetched by kustomize-controller from the advertised address.
    listeners.push(`--storage-addr=${storage}`, `--storage-adv-addr=${storage}`, `--storage-path=${scratch}`);
  }
  const args = [
    binaryOf(name),
    ...listeners,
    `--watch-all-namespaces=${options.namespace === undefined}`,
    "--log-level=info",
    ...(options.args ?? []),
  ];
  const proc = Bun.spawn(args, {
    cwd: scratch,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: scratch,
      KUBECONFIG: identity.kubeconfig,
      RUNTIME_NAMESPACE: options.namespace ?? FLUX_NAMESPACE,
    },
    stdout: "ignore",
    stderr: "pipe",
  });
  const { lines, other, done: stderrDone } = jsonLines(proc.stderr);
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    await stderrDone;
    rmSync(scratch, { recursive: true, force: true });
  };
  const url = (address: string) => `http://${address}`;
  const ready = async () => {
    if (proc.exitCode !== null)
      throw new Error(
        `${name} exited ${proc.exitCode}: ${other
          .concat(lines.map((l) => JSON.stringify(l)))
          .slice(-20)
          .join("\n")}`,
      );
    const res = await fetch(`${url(health)}/readyz`).catch(() => undefined);
    if (!res?.ok) return false;
    // The receiver listens from its own goroutine, started beside the manager. A connection
    // without a request: an HTTP probe would be counted in its request metrics.
    return receiver === undefined || (await accepts(receiver));
  };
  try {
    await waitFor(`${name} /readyz`, ready, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name,
    pid: proc.pid,
    urls: {
      metrics: url(metrics),
      health: url(health),
      ...(receiver ? { receiver: url(receiver) } : {}),
      ...(storage ? { storage: url(storage) } : {}),
    },
    lines,
    errors: () => lines.filter((l) => l.level === "error"),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
