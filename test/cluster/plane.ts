/**
 * A real Kubernetes control plane for the cluster tier: Debian's etcd and a kube-apiserver built
 * from the Go module proxy (build.sh), on loopback, with TLS, client-certificate authentication
 * and RBAC. One plane serves every test file of a run (they run one after another in one
 * process); preload.ts stops it after the last test.
 *
 * Identities are client certificates signed by the plane's CA: the admin is in system:masters;
 * `identity()` mints any other user, e.g. a ServiceAccount's username, which RBAC bindings to
 * that ServiceAccount then apply to.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unusedPort } from "../support/ports";
import { waitFor } from "../support/wait";

const HERE = import.meta.dir;
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "fluxhook", "cluster");

/** `KEY=value` lines of an env file (comments and blank lines skipped). */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The pinned versions (versions.env) and what build.sh made of them (tier.env). */
export const VERSIONS = readEnvFile(join(HERE, "versions.env"));
export function tierEnv(): Record<string, string> {
  try {
    return readEnvFile(join(CACHE, "tier.env"));
  } catch {
    throw new Error(`no ${join(CACHE, "tier.env")}: run test/cluster/build.sh first (npm run test:cluster does)`);
  }
}

/** How long kube-apiserver may take to answer /readyz (about 3 s on a quiet 2-core machine). */
const API_SERVER_READY_MS = 120_000;

function run(command: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(command, { stdin: input === undefined ? "ignore" : Buffer.from(input) });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function mustRun(command: string[], input?: string): string {
  const r = run(command, input);
  if (r.code !== 0) throw new Error(`${command.join(" ")} exited ${r.code}: ${r.stderr.slice(0, 2000)}`);
  return r.stdout;
}

const b64 = (path: string) => readFileSync(path).toString("base64");

export interface Identity {
  /** A kubeconfig file carrying the CA and this identity's client certificate and key. */
  readonly kubeconfig: string;
  readonly kubeConfig: KubeConfig;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly etcdUrl: string;
  /** What the binaries say of themselves, and GET /version's gitVersion. */
  readonly versions: { readonly kubeApiServer: string; readonly etcd: string; readonly served: string };
  readonly admin: Identity;
  /** The admin's TLS options for Bun's fetch (client-node's own transport cannot verify the CA under Bun). */
  readonly adminTls: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
  /** A client certificate for `user` in `groups`, as a kubeconfig (written once per user). */
  identity(user: string, groups?: readonly string[]): Identity;
  /** kubectl as the admin; throws on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): string;
  /** kubectl as the admin, whatever its exit. */
  tryKubectl(args: readonly string[], input?: string): { code: number; stdout: string; stderr: string };
  /**
   * Stops kube-apiserver and starts it again on the same port; etcd keeps the data. Graceful by
   * default (SIGTERM: watches end cleanly, so clients resume from their last version); `kill`
   * ends it as a crash does.
   */
  restartApiServer(options?: { kill?: boolean; whileStopped?: () => Promise<void> }): Promise<void>;
  /** Compacts etcd's history up to its current revision: older resourceVersions are gone (410). */
  compactEtcd(): Promise<number>;
  /** kube-apiserver's log so far (for a failing test's message). */
  apiServerLog(): string;
  stop(): Promise<void>;
}

let shared: Promise<ControlPlane> | undefined;

/** The run's control plane, started on first use. */
export function controlPlane(): Promise<ControlPlane> {
  shared ??= startControlPlane();
  return shared;
}

/** Stops the shared plane if one was started (preload.ts, after the last test). */
export async function stopSharedPlane(): Promise<void> {
  const plane = shared;
  shared = undefined;
  if (plane) await (await plane).stop();
}

async function startControlPlane(): Promise<ControlPlane> {
  const tier = tierEnv();
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-cluster-"));
  // etcd's data in memory: no fsync cost, and nothing left on disk.
  const etcdData = mkdtempSync(join(existsShm() ? "/dev/shm" : tmpdir(), "fluxhook-etcd-"));
  const pki = (name: string) => join(dir, name);

  // ---- PKI: a CA, the API server's serving certificate, and client certificates on demand.
  mustRun(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fluxhook-test-ca"].concat([
      "-keyout",
      pki("ca.key"),
      "-out",
      pki("ca.crt"),
    ]),
  );
  writeFileSync(pki("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  writeFileSync(pki("client.ext"), "extendedKeyUsage=clientAuth\n");
  const sign = (name: string, subject: string, ext: string) => {
    mustRun(
      ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", pki(`${name}.key`)].concat([
        "-out",
        pki(`${name}.csr`),
      ]),
    );
    mustRun(
      ["openssl", "x509", "-req", "-in", pki(`${name}.csr`), "-CA", pki("ca.crt"), "-CAkey", pki("ca.key")].concat([
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        pki(ext),
        "-out",
        pki(`${name}.crt`),
      ]),
    );
  };
  sign("apiserver", "/CN=kube-apiserver", "server.ext");
  mustRun(["openssl", "genrsa", "-out", pki("sa.key"), "2048"]);
  mustRun(["openssl", "rsa", "-in", pki("sa.key"), "-pubout", "-out", pki("sa.pub")]);

  // ---- etcd
  const etcdPort = unusedPort();
  const peerPort = unusedPort();
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const etcd = Bun.spawn(
    [tier.ETCD_BIN!, "--name=tier", `--data-dir=${etcdData}`]
      .concat([`--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`])
      .concat([
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      ])
      .concat([`--initial-cluster=tier=http://127.0.0.1:${peerPort}`, "--log-level=warn"]),
    { stdout: "ignore", stderr: Bun.file(join(dir, "etcd.log")) },
  );
  await waitFor("etcd to answer", async () => (await fetch(`${etcdUrl}/health`).catch(() => undefined))?.ok, 30_000);

  // ---- kube-apiserver (envtest's flags, on loopback; no controller-manager runs beside it)
  const port = unusedPort();
  const url = `https://127.0.0.1:${port}`;
  const apiServerArgs = [
    tier.KUBE_APISERVER_BIN!,
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    "--endpoint-reconciler-type=none",
    `--tls-cert-file=${pki("apiserver.crt")}`,
    `--tls-private-key-file=${pki("apiserver.key")}`,
    `--client-ca-file=${pki("ca.crt")}`,
    "--authorization-mode=RBAC",
    `--service-account-issuer=${url}`,
    `--service-account-key-file=${pki("sa.pub")}`,
    `--service-account-signing-key-file=${pki("sa.key")}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    "--disable-admission-plugins=ServiceAccount",
    "--allow-privileged=true",
    // A graceful stop ends open watches within a second instead of waiting on clients that do not read.
    "--shutdown-watch-termination-grace-period=1s",
    `--cert-dir=${join(dir, "certs")}`,
  ];
  const logPath = join(dir, "kube-apiserver.log");
  let apiServer: ReturnType<typeof Bun.spawn> | undefined;
  const startApiServer = async () => {
    const log = Bun.file(logPath);
    const before = (await log.exists()) ? await log.text() : "";
    apiServer = Bun.spawn(apiServerArgs, { stdout: "ignore", stderr: "pipe" });
    // Appended by hand: Bun.file as stderr would truncate the earlier run's log.
    const sink = Bun.file(logPath).writer();
    sink.write(before);
    void (async () => {
      for await (const chunk of apiServer!.stderr as unknown as AsyncIterable<Uint8Array>) sink.write(chunk);
      await sink.end();
    })();
  };

  sign("admin", "/CN=fluxhook-tier-admin/O=system:masters", "client.ext");
  const writeKubeconfig = (name: string) => {
    const path = join(dir, `${name}.kubeconfig`);
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: tier",
        "  cluster:",
        `    server: ${url}`,
        `    certificate-authority-data: ${b64(pki("ca.crt"))}`,
        "users:",
        `- name: ${name}`,
        "  user:",
        `    client-certificate-data: ${b64(pki(`${name}.crt`))}`,
        `    client-key-data: ${b64(pki(`${name}.key`))}`,
        "contexts:",
        "- name: tier",
        `  context: {cluster: tier, user: ${name}}`,
        "current-context: tier",
        "",
      ].join("\n"),
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(path);
    return { kubeconfig: path, kubeConfig };
  };
  const admin = writeKubeconfig("admin");
  const tls = {
    ca: readFileSync(pki("ca.crt")),
    cert: readFileSync(pki("admin.crt")),
    key: readFileSync(pki("admin.key")),
  };
  const readyz = async () => {
    const res = await fetch(`${url}/readyz`, { tls }).catch(() => undefined);
    return res?.ok;
  };
  await startApiServer();
  await waitFor("kube-apiserver /readyz", readyz, API_SERVER_READY_MS).catch((err) => {
    throw new Error(`${(err as Error).message}\n${readFileSync(logPath, "utf8").slice(-3000)}`);
  });
  const served = ((await (await fetch(`${url}/version`, { tls })).json()) as { gitVersion: string }).gitVersion;

  const kubectlArgs = (args: readonly string[]) => ["kubectl", `--kubeconfig=${admin.kubeconfig}`, ...args];
  const identities = new Map<string, Identity>();
  let users = 0;

  const plane: ControlPlane = {
    url,
    etcdUrl,
    versions: {
      kubeApiServer: mustRun([tier.KUBE_APISERVER_BIN!, "--version"]).trim(),
      etcd: mustRun([tier.ETCD_BIN!, "--version"]).split("\n")[0]!.trim(),
      served,
    },
    admin,
    adminTls: tls,
    identity(user, groups = []) {
      const key = `${user}|${groups.join(",")}`;
      const known = identities.get(key);
      if (known) return known;
      const name = `user${++users}`;
      // A subject's CN is the username and each O a group (Kubernetes' X509 client certs).
      const subject = `/CN=${user}${groups.map((g) => `/O=${g}`).join("")}`;
      sign(name, subject, "client.ext");
      const made = writeKubeconfig(name);
      identities.set(key, made);
      return made;
    },
    kubectl: (args, input) => mustRun(kubectlArgs(args), input),
    tryKubectl: (args, input) => run(kubectlArgs(args), input),
    async restartApiServer(options = {}) {
      apiServer?.kill(options.kill ? "SIGKILL" : "SIGTERM");
      await apiServer?.exited;
      await options.whileStopped?.();
      await startApiServer();
      await waitFor("kube-apiserver /readyz after a restart", readyz, API_SERVER_READY_MS);
    },
    async compactEtcd() {
      // etcd's JSON gateway: the current revision from any range read, then a physical compaction.
      const range = await fetch(`${etcdUrl}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: Buffer.from("compact-probe").toString("base64") }),
      });
      const revision = Number(((await range.json()) as { header: { revision: string } }).header.revision);
      const compacted = await fetch(`${etcdUrl}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision, physical: true }),
      });
      if (!compacted.ok) throw new Error(`etcd compaction answered ${compacted.status}: ${await compacted.text()}`);
      return revision;
    },
    apiServerLog: () => readFileSync(logPath, "utf8"),
    async stop() {
      apiServer?.kill("SIGTERM");
      await apiServer?.exited;
      etcd.kill("SIGTERM");
      await etcd.exited;
      rmSync(etcdData, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  console.error(
    `cluster tier: ${plane.versions.kubeApiServer} (serving ${served}) on ${url}, ${plane.versions.etcd} on ${etcdUrl}`,
  );
  return plane;
}

function existsShm(): boolean {
  try {
    return Bun.spawnSync(["test", "-d", "/dev/shm", "-a", "-w", "/dev/shm"]).exitCode === 0;
  } catch {
    return false;
  }
}
