/**
 * The peer scenario (`npm run bench -- --only=peer`): fluxhook beside Flux's own
 * notification-controller, the one server users would otherwise run, on the cluster tier's real
 * kube-apiserver and etcd (test/cluster/, built from the Go module proxy by
 * test/cluster/build.sh). Both run as users run them: notification-controller at its default
 * flags, fluxhook at its own, each as its ServiceAccount (flux2's RBAC, deploy/standalone's), each
 * watching only its own namespace and writing its own Receivers' status. They take the same load
 * one after the other, round after round, and the table gives fluxhook over notification-controller:
 *
 *   - valid deliveries (one target annotated), forged signatures and unknown paths: req/s and p99
 *     of a closed-model run of 64 connections;
 *   - a burst of 10,000 deliveries from 100 clients to one Receiver: the statuses, and the PATCHes
 *     of its target that reached kube-apiserver (apiserver_request_total);
 *   - 10,000 Receivers, each with its own Secret, at start-up: from spawn until every one is
 *     Ready=True (a watch of the API server counts them, the same for both), and peak RSS.
 */
import { webhookPath } from "../shared";
import { startController } from "../test/cluster/controllers";
import {
  createMany,
  fluxhookIdentity,
  gitRepository,
  installFlux,
  receiver,
  tokenSecret,
  type KubeObject,
} from "../test/cluster/flux";
import { existsSync } from "node:fs";
import { controlPlane, type ControlPlane, stopSharedPlane, tierEnv } from "../test/cluster/plane";
import { DELIVERY_ID_HEADER, pushBodies, pushRequests, TOKEN, unknownPath } from "./lib/fixtures";
import { errorsOf, type LoadResult, runAutocannon, runWrk } from "./lib/load";
import { cpuMs, currentRss, deadline, peakRss, quiesce, resetPeakRss, stopProcess, waitForStatus } from "./lib/proc";
import type { Row } from "./lib/table";

export const PEERS = ["notification-controller", "fluxhook"] as const;
export type Peer = (typeof PEERS)[number];

export interface PeerOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly burst: { readonly deliveries: number; readonly clients: number };
  readonly scale: number;
  /** fluxhook as main.ts starts it: the binary (or source) with the bench's flags, and `flags` after them. */
  readonly startFluxhook: (
    name: string,
    kubeconfig: string,
    env: Record<string, string>,
    flags: readonly string[],
  ) => Promise<{
    url: string;
    healthUrl: string;
    metricsUrl: string;
    proc: ReturnType<typeof Bun.spawn>;
    spawnedAt: number;
  }>;
  readonly log: (message: string) => void;
  readonly rows: Row[];
  readonly check: (target: string, met: boolean | null, measured: string) => void;
  readonly raw: Record<string, unknown>;
}

interface Running {
  readonly url: string;
  readonly metricsUrl: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const RECEIVERS_API = "/apis/notification.toolkit.fluxcd.io/v1";
/** How long a server may take to mark every Receiver of the start-up Ready. */
const SCALE_DEADLINE_MS = 30 * 60_000;
/** Flags fluxhook needs to be one side: its namespace only, writing status (no notification-controller watches it). */
const FLUXHOOK_SIDE_FLAGS = ["--watch-all-namespaces=false", "--status-updates=true"];

/** A github Receiver of push events for the GitRepository `target`, its token in the Secret `secretName`. */
const pushReceiver = (ns: string, name: string, secretName: string, target: string): KubeObject =>
  receiver(ns, name, {
    type: "github",
    events: ["push"],
    secretRef: { name: secretName },
    resources: [{ kind: "GitRepository", name: target }],
  });

/**
 * Waits until a server has no request in flight (gotk_receiver_http_requests_inflight, which both
 * export): a delivery the load tool gave up on (GitHub gives up after 10 s) may still be
 * annotating its target.
 */
async function drained(metricsUrl: string, timeoutMs = 30 * 60_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const inflight = text
      .split("\n")
      .filter((l) => l.startsWith("gotk_receiver_http_requests_inflight"))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    if (inflight === 0) return;
    await Bun.sleep(500);
  }
  throw new Error(`${metricsUrl}: requests still in flight after ${timeoutMs / 60_000} min`);
}

/** kube-apiserver's count of PATCH requests on GitRepositories (every code), from its /metrics. */
async function gitRepositoryPatches(plane: ControlPlane): Promise<number> {
  const text = await (await fetch(`${plane.url}/metrics`, { tls: plane.adminTls })).text();
  let n = 0;
  for (const line of text.split("\n"))
    if (
      line.startsWith("apiserver_request_total{") &&
      line.includes('verb="PATCH"') &&
      line.includes('resource="gitrepositories"')
    )
      n += Number(line.slice(line.lastIndexOf(" ") + 1));
  return n;
}

const isReady = (r: KubeObject) =>
  (r.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True");

/**
 * Counts a namespace's Receivers whose Ready condition is True: one list, then a watch from its
 * resourceVersion (the same for both servers). `all` resolves with performance.now() when `n`
 * are, and rejects if the watch ends first.
 */
async function watchReady(plane: ControlPlane, ns: string, n: number) {
  const base = `${plane.url}${RECEIVERS_API}/namespaces/${ns}/receivers`;
  const list = (await (await fetch(base, { tls: plane.adminTls })).json()) as {
    items: KubeObject[];
    metadata: { resourceVersion: string };
  };
  if (list.items.length !== n) throw new Error(`${ns} holds ${list.items.length} Receivers, not ${n}`);
  const ready = new Set(list.items.filter(isReady).map((r) => r.metadata.name));
  const abort = new AbortController();
  const all = (async () => {
    if (ready.size === n) return performance.now();
    const res = await fetch(`${base}?watch=1&resourceVersion=${list.metadata.resourceVersion}&timeoutSeconds=3600`, {
      tls: plane.adminTls,
      signal: abort.signal,
    });
    if (!res.ok) throw new Error(`watch of ${ns}'s Receivers: ${res.status} ${await res.text()}`);
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const event = JSON.parse(buf.slice(0, nl)) as { type: string; object: KubeObject };
        buf = buf.slice(nl + 1);
        if (event.type === "ERROR") throw new Error(`watch of ${ns}'s Receivers: ${JSON.stringify(event.object)}`);
        const name = event.object.metadata.name;
        if (event.type !== "DELETED" && isReady(event.object)) ready.add(name);
        else ready.delete(name);
        if (ready.size === n) return performance.now();
      }
    }
    throw new Error(`the watch of ${ns}'s Receivers ended with ${ready.size} of ${n} Ready`);
  })();
  // Settled here so that an abort after the end is no unhandled rejection.
  all.catch(() => undefined);
  return { all, count: () => ready.size, stop: () => abort.abort() };
}

/** Why the peer scenario cannot run here (a binary of the cluster tier not built), or undefined. */
export function peerMissing(): string | undefined {
  let tier: Record<string, string>;
  try {
    tier = tierEnv();
  } catch (err) {
    return (err as Error).message;
  }
  for (const key of ["KUBE_APISERVER_BIN", "NOTIFICATION_CONTROLLER_BIN", "ETCD_BIN"])
    if (!tier[key] || !existsSync(tier[key]!))
      return `${key} is not built (test/cluster/build.sh, which bench/run.sh runs when Go >= 1.26 and etcd are installed)`;
  return undefined;
}

export async function peer(o: PeerOptions): Promise<void> {
  const plane = await controlPlane();
  try {
    installFlux(plane);
    await run(plane, o);
  } finally {
    await stopSharedPlane();
  }
}

async function run(plane: ControlPlane, o: PeerOptions): Promise<void> {
  const id = crypto.randomUUID().slice(0, 6);
  const nsOf = (peer: Peer, what: string) => `peer-${what}-${peer === "fluxhook" ? "fh" : "nc"}-${id}`;

  // ---- the two servers, each with a "push" and a "burst" Receiver in its own namespace
  for (const p of PEERS) {
    const ns = nsOf(p, "main");
    plane.kubectl(["create", "namespace", ns]);
    await createMany(plane, [
      tokenSecret(ns, "token", TOKEN),
      gitRepository(ns, "push-target"),
      gitRepository(ns, "burst-target"),
      pushReceiver(ns, "push", "token", "push-target"),
      pushReceiver(ns, "burst", "token", "burst-target"),
    ]);
  }
  const start = async (p: Peer, ns: string): Promise<Running & { spawnedAt: number }> => {
    if (p === "notification-controller") {
      const spawnedAt = performance.now();
      const nc = await startController(plane, "notification-controller", { namespace: ns });
      return { url: nc.urls.receiver!, metricsUrl: nc.urls.metrics, pid: nc.pid, stop: nc.stop, spawnedAt };
    }
    const f = await o.startFluxhook(`peer-${ns}`, fluxhookIdentity(plane).kubeconfig, { RUNTIME_NAMESPACE: ns }, [
      ...FLUXHOOK_SIDE_FLAGS,
    ]);
    await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 60_000, 5);
    return {
      url: f.url,
      metricsUrl: f.metricsUrl,
      pid: f.proc.pid,
      stop: () => stopProcess(f.proc),
      spawnedAt: f.spawnedAt,
    };
  };
  const servers = {} as Record<Peer, Running>;
  for (const p of PEERS) {
    const ns = nsOf(p, "main");
    const ready = await watchReady(plane, ns, 2);
    servers[p] = await start(p, ns);
    await deadline(`${p}'s Receivers Ready`, 60_000, ready.all);
    ready.stop();
  }

  // ---- closed-model runs: the same requests to each, in turn, round after round
  const bodies = pushBodies();
  const load = Bun.which("wrk") ? runWrk : runAutocannon;
  const kinds = [
    { id: "valid", title: "peer: valid, annotated", expect: { "notification-controller": [200], fluxhook: [200] } },
    // fluxhook answers a flood of forged signatures 429 once past its failure budget (default flags).
    { id: "bad", title: "peer: bad signature", expect: { "notification-controller": [400], fluxhook: [400, 429] } },
    { id: "unknown", title: "peer: unknown digest", expect: { "notification-controller": [404], fluxhook: [404] } },
  ] as const;
  const requestsOf = (p: Peer, kind: (typeof kinds)[number]["id"]) => {
    const path = webhookPath(TOKEN, "push", nsOf(p, "main"));
    if (kind === "valid") return pushRequests(path, TOKEN, bodies);
    if (kind === "bad") return pushRequests(path, "not-the-token", bodies);
    return pushRequests(unknownPath(), TOKEN, bodies);
  };
  for (const p of PEERS)
    await runAutocannon({
      url: servers[p].url,
      requests: requestsOf(p, "valid"),
      connections: 8,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      seconds: 1,
    });
  const closed: Record<string, Record<Peer, { result: LoadResult; cpuUs?: number; rss?: number }[]>> = {};
  for (const kind of kinds) {
    closed[kind.id] = { "notification-controller": [], fluxhook: [] };
    for (let round = 0; round < o.rounds; round++)
      for (const p of PEERS) {
        const s = servers[p];
        resetPeakRss(s.pid);
        const before = cpuMs(s.pid);
        const result = await load({
          url: s.url,
          requests: requestsOf(p, kind.id),
          connections: o.connections,
          deliveryIdHeader: DELIVERY_ID_HEADER,
          seconds: o.seconds,
        });
        const after = cpuMs(s.pid);
        // Requests wrk gave up on at the end of the run are still being answered: not into the next run.
        await drained(s.metricsUrl);
        await quiesce(s.pid);
        const cpuUs =
          before !== undefined && after !== undefined && result.answered > 0
            ? ((after - before) * 1000) / result.answered
            : undefined;
        closed[kind.id]![p].push({ result, cpuUs, rss: peakRss(s.pid) });
        o.log(
          `${kind.title} round ${round + 1} ${p}: ${Math.round(result.rps)} req/s, p99 ${result.p99?.toFixed(1)} ms, ${JSON.stringify(result.statuses)}`,
        );
      }
    const pick = (p: Peer) => {
      const runs = closed[kind.id]![p];
      const mid = [...runs].sort((a, b) => a.result.rps - b.result.rps)[Math.floor(runs.length / 2)]!;
      return { ...mid, errors: runs.reduce((n, r) => n + errorsOf(r.result, kind.expect[p]), 0) };
    };
    const nc = pick("notification-controller");
    const fh = pick("fluxhook");
    for (const p of PEERS) {
      const r = p === "fluxhook" ? fh : nc;
      o.rows.push({
        scenario: p === "notification-controller" ? kind.title : "",
        server: p,
        rps: r.result.rps,
        p50: r.result.p50,
        p99: r.result.p99,
        errors: r.errors,
        rssMb: r.rss === undefined ? undefined : r.rss / 2 ** 20,
        cpuUs: r.cpuUs,
        note:
          p === "fluxhook"
            ? `× notification-controller: req/s ${(fh.result.rps / nc.result.rps).toFixed(2)}, p99 ${((fh.result.p99 ?? 0) / (nc.result.p99 ?? 1)).toFixed(2)}`
            : `rounds ${closed[kind.id]![p].map((x) => Math.round(x.result.rps)).join("/")}`,
      });
    }
    o.check(
      `${kind.title}: fluxhook over notification-controller`,
      null,
      `req/s ${(fh.result.rps / nc.result.rps).toFixed(2)} × (${Math.round(fh.result.rps)} vs ${Math.round(nc.result.rps)}), p99 ${fh.result.p99?.toFixed(1)} vs ${nc.result.p99?.toFixed(1)} ms; unexpected answers ${fh.errors} vs ${nc.errors}`,
    );
  }
  o.raw.peerClosed = closed;

  // ---- the burst: 10,000 deliveries from 100 clients to one Receiver, and the PATCHes they cost
  const burst: Record<Peer, { result: LoadResult; patches: number; drainMs: number }> = {} as never;
  for (const p of PEERS) {
    const s = servers[p];
    await quiesce(s.pid);
    const before = await gitRepositoryPatches(plane);
    const result = await runAutocannon({
      url: s.url,
      requests: pushRequests(webhookPath(TOKEN, "burst", nsOf(p, "main")), TOKEN, bodies),
      connections: o.burst.clients,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      amount: o.burst.deliveries,
    });
    const answeredAt = performance.now();
    await drained(s.metricsUrl);
    const drainMs = performance.now() - answeredAt;
    const patches = (await gitRepositoryPatches(plane)) - before;
    burst[p] = { result, patches, drainMs };
    o.log(
      `peer: burst ${p}: ${JSON.stringify(result.statuses)}, ${result.timeouts} timeouts, ${patches} PATCHes, ${Math.round(result.rps)} req/s, ${(drainMs / 1000).toFixed(1)} s to finish after the load tool`,
    );
  }
  for (const p of PEERS)
    o.rows.push({
      scenario:
        p === "notification-controller"
          ? `peer: burst ${o.burst.deliveries.toLocaleString("en")} / ${o.burst.clients} clients`
          : "",
      server: p,
      rps: burst[p].result.rps,
      p50: burst[p].result.p50,
      p99: burst[p].result.p99,
      errors: errorsOf(burst[p].result, 200),
      patches: burst[p].patches,
      note: `statuses ${JSON.stringify(burst[p].result.statuses)}, ${burst[p].result.timeouts} timeouts (10 s), ${burst[p].result.socketErrors} socket errors; still answering ${(burst[p].drainMs / 1000).toFixed(0)} s after`,
    });
  o.check(
    `peer: burst of ${o.burst.deliveries}: PATCHes of the target, fluxhook vs notification-controller`,
    null,
    `${burst.fluxhook.patches} vs ${burst["notification-controller"].patches} (${(burst.fluxhook.patches / Math.max(1, burst["notification-controller"].patches)).toFixed(3)} ×); statuses ${JSON.stringify(burst.fluxhook.result.statuses)} vs ${JSON.stringify(burst["notification-controller"].result.statuses)}`,
  );
  o.raw.peerBurst = burst;
  for (const p of PEERS) await servers[p].stop();

  // ---- 10,000 Receivers at start-up, each server alone on the machine
  const scale = {} as Record<Peer, { allReadyMs: number | undefined; ready: number; peakRss: number | undefined }>;
  for (const p of PEERS) {
    const ns = nsOf(p, "scale");
    plane.kubectl(["create", "namespace", ns]);
    const objects: KubeObject[] = [gitRepository(ns, "app")];
    for (let i = 0; i < o.scale; i++)
      objects.push(
        tokenSecret(ns, `token-${i}`, `scale-token-${i}`),
        pushReceiver(ns, `receiver-${i}`, `token-${i}`, "app"),
      );
    o.log(`peer: making ${objects.length} objects for ${p}'s start-up`);
    await createMany(plane, objects, 32);
  }
  for (const p of PEERS) {
    const ns = nsOf(p, "scale");
    const ready = await watchReady(plane, ns, o.scale);
    let peak = 0;
    let sampling = true;
    let pid = 0;
    const sampler = (async () => {
      while (sampling) {
        if (pid) peak = Math.max(peak, currentRss(pid) ?? 0, peakRss(pid) ?? 0);
        await Bun.sleep(50);
      }
    })();
    const startedAt = performance.now();
    const s = await start(p, ns);
    pid = s.pid;
    const at = await deadline(`${p}: ${o.scale} Receivers Ready`, SCALE_DEADLINE_MS, ready.all).catch((err) => {
      o.log(`peer: ${(err as Error).message}`);
      return undefined;
    });
    const allReadyMs = at === undefined ? undefined : at - startedAt;
    const rss = Math.max(peak, peakRss(pid) ?? 0);
    sampling = false;
    await sampler;
    scale[p] = { allReadyMs, ready: ready.count(), peakRss: rss || undefined };
    ready.stop();
    await s.stop();
    o.log(
      `peer: ${p} start-up with ${o.scale} Receivers: ${allReadyMs?.toFixed(0) ?? "not all"} ms, ${ready.count()} Ready, peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  for (const p of PEERS)
    o.rows.push({
      scenario: p === "notification-controller" ? `peer: ${o.scale.toLocaleString("en")} Receivers at start` : "",
      server: p,
      rssMb: scale[p].peakRss === undefined ? undefined : scale[p].peakRss! / 2 ** 20,
      note: `all Ready after ${scale[p].allReadyMs === undefined ? `more than ${SCALE_DEADLINE_MS / 60_000} min (${scale[p].ready} Ready)` : `${(scale[p].allReadyMs! / 1000).toFixed(1)} s`}`,
    });
  const [nc, fh] = [scale["notification-controller"], scale.fluxhook];
  o.check(
    `peer: ${o.scale} Receivers at start-up, fluxhook over notification-controller`,
    null,
    `time to all Ready ${fh.allReadyMs !== undefined && nc.allReadyMs !== undefined ? `${(fh.allReadyMs / nc.allReadyMs).toFixed(2)} × (${(fh.allReadyMs / 1000).toFixed(1)} vs ${(nc.allReadyMs / 1000).toFixed(1)} s)` : "n/a"}; peak RSS ${fh.peakRss && nc.peakRss ? `${(fh.peakRss / nc.peakRss).toFixed(2)} × (${(fh.peakRss / 2 ** 20).toFixed(0)} vs ${(nc.peakRss / 2 ** 20).toFixed(0)} MiB)` : "n/a"}`,
  );
  o.raw.peerScale = scale;
}
