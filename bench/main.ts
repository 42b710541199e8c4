/**
 * The benchmark (`npm run bench`, which installs what it needs first; see bench/README.md).
 *
 * Every server runs in its own process on 127.0.0.1 and every load comes from another process:
 *   - fluxhook as it ships (the compiled binary, else `bun server/main.ts`) against the
 *     Kubernetes API test server (bench/servers/api.ts);
 *   - bare-hmac (bench/servers/bare-hmac.ts): Bun verifying the HMAC and nothing else, the
 *     ceiling of this stack for refusals;
 *   - bare-patch (bench/servers/bare-patch.ts): bare-hmac plus the one coalesced PATCH of the
 *     target that a 200 promises, against the same API server: the ceiling for valid deliveries;
 *   - adnanh/webhook (Debian's `webhook`) with a GitHub HMAC rule, skipped when not installed.
 * Scenarios (1) to (3) run each server in turn, round after round, so every ratio compares runs
 * made minutes apart on the same machine. One table goes to stdout, and the whole run as JSON to
 * bench/results/<time>.json.
 *
 *   bun bench/main.ts [--seconds=5] [--rounds=3] [--only=1,2,3,4,5,6,7,8,9,10,cold,peer] [--source] [--profile=1]
 *                     [--fluxhook-flag=--log-level=error …] [--limits-off] [--baseline=path/to/fluxhook]
 *                     [--peer-burst=10000] [--peer-scale=10000]
 *
 * fluxhook runs at its default flags, as users run it; --limits-off turns the per-receiver rate
 * limits off (the runs before issue 14).
 * --source runs `bun server/main.ts` instead of the binary; --profile=N runs scenario N once more
 * against `bun --cpu-prof server/main.ts` and prints where the CPU went. --baseline=PATH runs a
 * second fluxhook from another build (another commit's `npm run build:server`) beside this one in
 * scenarios (1) to (3), round after round, and reports this one's req/s and CPU per request against it.
 */
import { cpus, release, tmpdir } from "node:os";
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  TOKEN,
  DELIVERY_ID_HEADER,
  GIT,
  NS,
  FANOUT,
  MAIN_RECEIVERS,
  mainCluster,
  pushBodies,
  pushRequests,
  routingCluster,
  scaleCluster,
  siegeCluster,
  unsignedRequests,
  unknownPath,
  type BenchRequest,
} from "./lib/fixtures";
import { errorsOf, runAutocannon, runPaced, runWrk, type LoadResult } from "./lib/load";
import {
  cpuMs,
  currentRss,
  freePort,
  peakRss,
  quiesce,
  resetPeakRss,
  startJsonProcess,
  stopProcess,
  waitForStatus,
  type JsonProcess,
} from "./lib/proc";
import { formatTable, type Row } from "./lib/table";
import { abuseCluster } from "./lib/abuse";
import { QUERY_SIEGE_CONSUMERS, querySiegeCluster } from "./lib/query-siege";
import { summarizeProfile } from "./lib/profile";
import { peer, peerMissing } from "./peer";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;

// Options

const flag = (name: string) => process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const value = (name: string, fallback: string) => flag(name)?.split("=")[1] ?? fallback;
const SECONDS = Number(value("seconds", "5"));
const ROUNDS = Number(value("rounds", "3"));
const ONLY = new Set(value("only", "1,2,3,4,5,6,7,8,9,10,cold,peer").split(","));
const FROM_SOURCE = flag("source") !== undefined;
const PROFILE = value("profile", "");
const CONNECTIONS = 64;
/**
 * Connections for the runs at a set rate: many, each thinking long between requests, so the rate
 * depends little on the latency (below fluxhook's 256 deliveries in flight per receiver).
 */
const PACED_CONNECTIONS = 200;
const BURST = { deliveries: 10_000, clients: 100 };
const SCALE = 10_000;
const REQUESTED_AT = "reconcile.fluxcd.io/requestedAt";

const binary = process.env.FLUXHOOK_BINARY ?? join(ROOT, "dist/fluxhook");
/** Another build to compare with side by side in scenarios (1) to (3). */
const BASELINE = flag("baseline") ? value("baseline", "") : undefined;
const useBinary = !FROM_SOURCE && existsSync(binary);
const fluxhookCommand = useBinary ? [binary] : [BUN, join(ROOT, "server/main.ts")];
/**
 * Default flags, as users run fluxhook: valid deliveries are not rate limited, and a flood of
 * failed ones (scenario 2) is answered 429 past the failure budget after the signature check,
 * so 400 and 429 are both its expected answers. --limits-off turns both limits off.
 */
const LIMITS_OFF = flag("limits-off") !== undefined;
const FLUXHOOK_FLAGS = [
  ...(LIMITS_OFF ? ["--receiver-rate-limit=0", "--receiver-failure-rate-limit=0"] : []),
  // --fluxhook-flag=--log-level=error (repeatable) adds a flag, to measure what a setting costs.
  ...process.argv.filter((a) => a.startsWith("--fluxhook-flag=")).map((a) => a.slice("--fluxhook-flag=".length)),
];

const scratch = mkdtempSync(join(tmpdir(), "fluxhook-bench-"));
const cleanups: (() => Promise<void> | void)[] = [() => rmSync(scratch, { recursive: true, force: true })];
const log = (message: string) => console.error(`[bench] ${message}`);

// Servers

type Kind = "valid" | "bad" | "unknown";

interface Server {
  readonly name: "fluxhook" | "fluxhook-baseline" | "bare-hmac" | "bare-patch" | "webhook";
  readonly url: string;
  readonly pid: number;
  /** The statuses each scenario's requests should get. */
  readonly expect: Record<Kind, number | readonly number[]>;
  readonly requests: Partial<Record<Kind, BenchRequest[]>>;
  /** API paths of the target it PATCHes (a regex), for PATCH counts; none for servers that write nothing. */
  readonly patches?: string;
}

type Api = JsonProcess<{ url: string; kubeconfig: string }>;

async function startApi(name: string, objects: object[]): Promise<Api> {
  const file = join(scratch, `${name}-objects.json`);
  writeFileSync(file, JSON.stringify(objects));
  const api = await startJsonProcess<{ url: string; kubeconfig: string }>(`API server ${name}`, [
    BUN,
    join(ROOT, "bench/servers/api.ts"),
    file,
  ]);
  cleanups.push(() => api.stop());
  return api;
}

interface Fluxhook {
  readonly url: string;
  readonly healthUrl: string;
  readonly metricsUrl: string;
  readonly proc: ReturnType<typeof Bun.spawn>;
  /** performance.now() and Date.now() at spawn. */
  readonly spawnedAt: number;
  readonly spawnedAtEpoch: number;
  readonly logFile: string;
}

async function startFluxhook(
  name: string,
  kubeconfig: string,
  command = fluxhookCommand,
  env: Record<string, string> = {},
  flags: readonly string[] = FLUXHOOK_FLAGS,
): Promise<Fluxhook> {
  const [receiver, health, metrics] = [await freePort(), await freePort(), await freePort()];
  const logFile = join(scratch, `${name}.log`);
  const out = openSync(logFile, "w");
  const spawnedAtEpoch = Date.now();
  const spawnedAt = performance.now();
  const proc = Bun.spawn(
    [
      ...command,
      `--receiverAddr=127.0.0.1:${receiver}`,
      `--health-addr=127.0.0.1:${health}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--kubeconfig=${kubeconfig}`,
      ...flags,
    ],
    { stdout: out, stderr: out, cwd: ROOT, env: { ...process.env, ...env } },
  );
  const f = {
    url: `http://127.0.0.1:${receiver}`,
    healthUrl: `http://127.0.0.1:${health}`,
    metricsUrl: `http://127.0.0.1:${metrics}`,
    proc,
    spawnedAt,
    spawnedAtEpoch,
    logFile,
  };
  cleanups.push(() => stopProcess(proc));
  return f;
}

async function startBare(hooks: Record<string, string>): Promise<JsonProcess<{ url: string }>> {
  const bare = await startJsonProcess<{ url: string }>("bare-hmac", [
    BUN,
    join(ROOT, "bench/servers/bare-hmac.ts"),
    JSON.stringify({ hooks }),
  ]);
  cleanups.push(() => bare.stop());
  return bare;
}

/** bare-patch: bare-hmac plus the coalesced PATCH of `target` on the API server at `api`. */
async function startBarePatch(hooks: Record<string, string>, api: string, target: string) {
  const bare = await startJsonProcess<{ url: string }>("bare-patch", [
    BUN,
    join(ROOT, "bench/servers/bare-patch.ts"),
    JSON.stringify({ hooks, api, target }),
  ]);
  cleanups.push(() => bare.stop());
  return bare;
}

/** adnanh/webhook with a payload-hmac-sha256 rule and /bin/true, or a reason it cannot run. */
async function startWebhook(): Promise<{ url: string; pid: number } | { skipped: string }> {
  const which = Bun.which("webhook");
  if (!which)
    return {
      skipped:
        "adnanh/webhook is not installed (Debian package `webhook`; bench/run.sh installs it with apt-get when it can)",
    };
  const hooks = join(scratch, "hooks.json");
  const command = existsSync("/bin/true") ? "/bin/true" : "/usr/bin/true";
  writeFileSync(
    hooks,
    JSON.stringify([
      {
        id: "push",
        "execute-command": command,
        "trigger-rule": {
          match: {
            type: "payload-hmac-sha256",
            secret: TOKEN,
            parameter: { source: "header", name: "X-Hub-Signature-256" },
          },
        },
      },
    ]),
  );
  const port = await freePort();
  const proc = Bun.spawn([which, "-hooks", hooks, "-ip", "127.0.0.1", "-port", String(port)], {
    stdout: "ignore",
    stderr: "ignore",
  });
  cleanups.push(() => stopProcess(proc));
  const url = `http://127.0.0.1:${port}`;
  await waitForStatus(`${url}/`, 200, performance.now(), 10_000, 10);
  return { url, pid: proc.pid };
}

/**
 * Load at a set rate: wrk with exponential think times when installed, else the open-model Node
 * tool (whose own event loop adds milliseconds at the tail).
 */
const atRate = (spec: Parameters<typeof runPaced>[0]) => (Bun.which("wrk") ? runWrk(spec) : runPaced(spec));

// Results

const rows: Row[] = [];
const raw: Record<string, unknown> = {};
const checks: { target: string; met: boolean | null; measured: string }[] = [];

function check(target: string, met: boolean | null, measured: string) {
  checks.push({ target, met, measured });
  log(`${met === null ? "n/a " : met ? "MET " : "MISS"} ${target}: ${measured}`);
}

const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 2 ** 20);
const median = <T>(xs: T[], by: (x: T) => number): T =>
  [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!;

/** One closed-model run with the server's peak RSS and, for fluxhook, the PATCHes it caused. */
async function measured(server: Server, kind: Kind, api: Api, seconds = SECONDS) {
  resetPeakRss(server.pid);
  if (server.patches) await api.ask({ cmd: "reset" });
  const cpuBefore = cpuMs(server.pid);
  const load = Bun.which("wrk") ? runWrk : runAutocannon;
  const result = await load({
    url: server.url,
    requests: server.requests[kind]!,
    connections: CONNECTIONS,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    seconds,
  });
  const cpuAfter = cpuMs(server.pid);
  // adnanh/webhook runs its commands after answering: let the backlog drain before the next run.
  const drainMs = await quiesce(server.pid);
  if (drainMs > 1_000) log(`${server.name} was busy for ${(drainMs / 1000).toFixed(1)} s after the run`);
  const patches = server.patches
    ? (await api.ask<{ count: number }>({ cmd: "patches", pathPattern: server.patches })).count
    : undefined;
  return {
    result,
    errors: errorsOf(result, server.expect[kind]),
    rss: peakRss(server.pid),
    patches,
    serverCpu:
      cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / result.elapsedMs : undefined,
    drainMs,
  };
}

// The run

async function main() {
  const started = new Date();
  log(
    `fluxhook: ${useBinary ? binary : "bun server/main.ts"}; load: ${Bun.which("wrk") ? "wrk" : "autocannon"}; ${SECONDS} s × ${ROUNDS} rounds; ${cpus().length} CPUs`,
  );

  // Cold start first, on a quiet machine: the compiled binary against an empty cluster.
  if (ONLY.has("cold")) await coldStart();
  // Abuse next, alone on the machine: its bounds are about memory and latency under load.
  if (ONLY.has("7")) await abuse();
  if (ONLY.has("8")) await siege();
  if (ONLY.has("9")) await routing();
  if (ONLY.has("10")) await querySiege();
  if ([..."123456"].some((n) => ONLY.has(n)) || PROFILE) await againstTestApi();
  // Last: notification-controller beside fluxhook on a real kube-apiserver (bench/peer.ts).
  if (ONLY.has("peer")) await peerScenario();
  await report(started);
}

/** Scenarios 1 to 6, against the Kubernetes API test server of test/kube. */
async function againstTestApi() {
  const bodies = pushBodies();
  const main = mainCluster();
  const api = await startApi("main", main.objects);
  const fluxhook = await startFluxhook("fluxhook-main", api.hello.kubeconfig);
  await waitForStatus(`${fluxhook.healthUrl}/readyz`, 200, fluxhook.spawnedAt, 30_000, 5);
  const baseline = BASELINE ? await startFluxhook("fluxhook-baseline", api.hello.kubeconfig, [BASELINE]) : undefined;
  if (baseline) await waitForStatus(`${baseline.healthUrl}/readyz`, 200, baseline.spawnedAt, 30_000, 5);
  for (let i = 0; i < 600; i++) {
    const { ready } = await api.ask<{ ready: number }>({ cmd: "ready", namespace: NS });
    if (ready === MAIN_RECEIVERS) break;
    await Bun.sleep(50);
  }
  const bare = await startBare({ [main.paths.push]: TOKEN, [main.paths.burst]: TOKEN });
  // bare-patch's target must exist, or its PATCHes would be 404s answered as 500s.
  const barePatchTarget = main.targetPaths.barePatch;
  const { object: target } = await api.ask<{ object: unknown }>({
    cmd: "get",
    apiVersion: GIT,
    kind: "GitRepository",
    namespace: NS,
    name: barePatchTarget.slice(barePatchTarget.lastIndexOf("/") + 1),
  });
  if (!target) throw new Error(`bare-patch's target ${barePatchTarget} is not in the API server`);
  const barePatch = await startBarePatch(
    { [main.paths.push]: TOKEN, [main.paths.burst]: TOKEN },
    api.hello.url,
    barePatchTarget,
  );
  const webhook = await startWebhook();
  if ("skipped" in webhook) log(`webhook baseline skipped: ${webhook.skipped}`);

  const unknown = unknownPath();
  const pushPattern = `^${main.targetPaths.push}$`;
  const servers: Server[] = [
    {
      name: "bare-patch",
      url: barePatch.hello.url,
      pid: barePatch.proc.pid,
      expect: { valid: 200, bad: 400, unknown: 404 },
      requests: { valid: pushRequests(main.paths.push, TOKEN, bodies) },
      patches: `^${barePatchTarget}$`,
    },
    {
      name: "bare-hmac",
      url: bare.hello.url,
      pid: bare.proc.pid,
      expect: { valid: 200, bad: 400, unknown: 404 },
      requests: {
        valid: pushRequests(main.paths.push, TOKEN, bodies),
        bad: pushRequests(main.paths.push, "not-the-token", bodies),
        unknown: pushRequests(unknown, TOKEN, bodies),
      },
    },
    {
      name: "fluxhook",
      url: fluxhook.url,
      pid: fluxhook.proc.pid,
      expect: { valid: 200, bad: LIMITS_OFF ? 400 : [400, 429], unknown: 404 },
      requests: {
        valid: pushRequests(main.paths.push, TOKEN, bodies),
        bad: pushRequests(main.paths.push, "not-the-token", bodies),
        unknown: pushRequests(unknown, TOKEN, bodies),
      },
      patches: pushPattern,
    },
  ];
  if (baseline)
    servers.push({
      ...servers.find((s) => s.name === "fluxhook")!,
      name: "fluxhook-baseline",
      url: baseline.url,
      pid: baseline.proc.pid,
    });
  if (!("skipped" in webhook)) {
    servers.push({
      name: "webhook",
      url: webhook.url,
      pid: webhook.pid,
      // adnanh/webhook answers a signature mismatch with 500 ("Error occurred while evaluating hook rules.").
      expect: { valid: 200, bad: 500, unknown: 404 },
      requests: {
        valid: pushRequests("/hooks/push", TOKEN, bodies),
        bad: pushRequests("/hooks/push", "not-the-token", bodies),
        unknown: pushRequests(`/hooks/${unknown.slice(6, 30)}`, TOKEN, bodies),
      },
    });
  }

  // Warm every server (JIT, connection pools) before measuring.
  for (const s of servers)
    await runAutocannon({
      url: s.url,
      requests: s.requests.valid!,
      connections: 8,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      seconds: 1,
    });

  // Each scenario's ceiling: valid deliveries against the least a server keeping the promise of a
  // 200 must do (bare-patch), refusals against the HMAC check alone (bare-hmac).
  const scenarios = [
    { id: "1", kind: "valid" as const, title: "(1) valid, annotated", ceiling: "bare-patch", floor: 0.8 },
    { id: "2", kind: "bad" as const, title: "(2) bad signature", ceiling: "bare-hmac", floor: 0.9 },
    { id: "3", kind: "unknown" as const, title: "(3) unknown digest", ceiling: "bare-hmac", floor: 0.9 },
  ].filter((s) => ONLY.has(s.id));
  const fluxhookServer = servers.find((s) => s.name === "fluxhook")!;
  for (const sc of scenarios) {
    const runs = new Map<string, Awaited<ReturnType<typeof measured>>[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of servers.filter((x) => x.requests[sc.kind])) {
        const m = await measured(s, sc.kind, api);
        runs.set(s.name, [...(runs.get(s.name) ?? []), m]);
        log(
          `${sc.title} round ${round + 1} ${s.name}: ${Math.round(m.result.rps)} req/s, p99 ${m.result.p99?.toFixed(2)} ms, errors ${m.errors}`,
        );
      }
    }
    const pick = (name: string) => {
      const rs = runs.get(name);
      if (!rs) return undefined;
      const mid = median(rs, (r) => r.result.rps);
      // CPU per request moves far less than req/s when other work shares the machine.
      const cpu = rs.flatMap((r) => (r.serverCpu === undefined ? [] : [(r.serverCpu * 1e6) / r.result.rps]));
      return {
        ...mid,
        cpuUs: cpu.length ? median(cpu, (x) => x) : undefined,
        errors: rs.reduce((n, r) => n + r.errors, 0),
        rss: Math.max(...rs.map((r) => r.rss ?? 0)),
        all: rs.map((r) => Math.round(r.result.rps)),
      };
    };
    const b = pick(sc.ceiling)!;
    const f = pick("fluxhook")!;
    const w = pick("webhook");
    const hmacOnly = sc.ceiling === "bare-hmac" ? undefined : pick("bare-hmac");
    for (const [name, r] of [
      [sc.ceiling, b],
      ["bare-hmac", hmacOnly],
      ["fluxhook", f],
      ["webhook", w],
    ] as const) {
      if (!r) continue;
      rows.push({
        scenario: name === sc.ceiling ? sc.title : "",
        server: name,
        rps: r.result.rps,
        p50: r.result.p50,
        p99: r.result.p99,
        errors: r.errors,
        rssMb: mb(r.rss),
        cpuUs: r.cpuUs,
        patches: r.patches,
        vsBare: name === "fluxhook" ? f.result.rps / b.result.rps : undefined,
        vsWebhook: name === "fluxhook" && w ? f.result.rps / w.result.rps : undefined,
        note: `${name === "fluxhook" ? `× ${sc.ceiling}; ` : ""}rounds ${r.all.join("/")}`,
      });
    }
    raw[`scenario${sc.id}`] = Object.fromEntries([...runs].map(([k, v]) => [k, v]));
    check(
      `(${sc.id}) ≥ ${sc.floor} × ${sc.ceiling} req/s`,
      f.result.rps >= sc.floor * b.result.rps,
      `${(f.result.rps / b.result.rps).toFixed(2)} × (${Math.round(f.result.rps)} vs ${Math.round(b.result.rps)}; rounds ${f.all.join("/")} vs ${b.all.join("/")})`,
    );
    if (f.cpuUs !== undefined && b.cpuUs !== undefined)
      check(
        `(${sc.id}) CPU per request × ${sc.ceiling}, for reference (steadier than req/s on a shared machine)`,
        null,
        `${(f.cpuUs / b.cpuUs).toFixed(2)} × (${f.cpuUs.toFixed(0)} vs ${b.cpuUs.toFixed(0)} µs of CPU per request, medians of the rounds)`,
      );
    if (hmacOnly)
      check(
        `(${sc.id}) × bare-hmac req/s, for reference (it writes nothing)`,
        null,
        `${(f.result.rps / hmacOnly.result.rps).toFixed(2)} × (${Math.round(hmacOnly.result.rps)} req/s)`,
      );
    const base = pick("fluxhook-baseline");
    if (base) {
      rows.push({
        scenario: "",
        server: "fluxhook-baseline",
        rps: base.result.rps,
        p50: base.result.p50,
        p99: base.result.p99,
        errors: base.errors,
        rssMb: mb(base.rss),
        cpuUs: base.cpuUs,
        patches: base.patches,
        note: `${BASELINE}; rounds ${base.all.join("/")}`,
      });
      check(
        `(${sc.id}) req/s × the baseline build, side by side`,
        null,
        `${(f.result.rps / base.result.rps).toFixed(3)} × (${Math.round(f.result.rps)} vs ${Math.round(base.result.rps)}; rounds ${f.all.join("/")} vs ${base.all.join("/")})`,
      );
      if (f.cpuUs !== undefined && base.cpuUs !== undefined)
        check(
          `(${sc.id}) CPU per request × the baseline build`,
          null,
          `${(f.cpuUs / base.cpuUs).toFixed(3)} × (${f.cpuUs.toFixed(1)} vs ${base.cpuUs.toFixed(1)} µs)`,
        );
    }
    if (w)
      check(
        `(${sc.id}) ≥ 5 × adnanh/webhook req/s`,
        f.result.rps >= 5 * w.result.rps,
        `${(f.result.rps / w.result.rps).toFixed(1)} × (${Math.round(f.result.rps)} vs ${Math.round(w.result.rps)})`,
      );
    check(
      sc.kind === "valid" ? `(${sc.id}) no non-2xx` : `(${sc.id}) no unexpected answers`,
      f.errors === 0,
      `${f.errors} unexpected answers in ${ROUNDS} rounds (expected ${JSON.stringify(fluxhookServer.expect[sc.kind])}); last round ${JSON.stringify(runs.get("fluxhook")!.at(-1)!.result.statuses)}`,
    );

    // Latency at half the maximum rate, open model.
    const rate = Math.max(1, Math.round(f.result.rps / 2));
    await api.ask({ cmd: "reset" });
    resetPeakRss(fluxhook.proc.pid);
    const paced = await atRate({
      url: fluxhook.url,
      requests: fluxhookServer.requests[sc.kind]!,
      connections: PACED_CONNECTIONS,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      rate,
      seconds: SECONDS,
    });
    const patches =
      sc.kind === "valid" ? (await api.ask<{ count: number }>({ cmd: "patches", pathPattern: pushPattern })).count : 0;
    rows.push({
      scenario: `${sc.title} @ half rate`,
      server: "fluxhook",
      rps: paced.rps,
      p50: paced.p50,
      p99: paced.p99,
      errors: errorsOf(paced, fluxhookServer.expect[sc.kind]),
      rssMb: mb(peakRss(fluxhook.proc.pid)),
      patches,
      note: `${PACED_CONNECTIONS} connections paced to ${rate}/s`,
    });
    raw[`scenario${sc.id}HalfRate`] = paced;
    check(
      `(${sc.id}) p99 < 5 ms at half the maximum rate`,
      paced.p99 !== null && paced.p99 < 5,
      `p99 ${paced.p99?.toFixed(2)} ms at ${Math.round(paced.rps)}/s (half of ${Math.round(f.result.rps)})`,
    );
  }

  if (ONLY.has("4")) await burst(api, fluxhook, servers, main.paths.burst, main.targetPaths.burst, bodies);
  if (ONLY.has("5")) await fanout(api, fluxhook, main.paths.fanout, main.targetPaths.fanout, bodies);
  if (ONLY.has("6")) await scale(api, fluxhook, main.paths.push, bodies);
  if (PROFILE && PROFILE !== "7") await profile(PROFILE, api.hello.kubeconfig, servers, main);
}

/**
 * The peer scenario when the cluster tier's binaries are built (bench/run.sh runs
 * test/cluster/build.sh when Go is there); otherwise skipped with the reason.
 */
async function peerScenario() {
  const missing = peerMissing();
  if (missing) {
    log(`peer scenario skipped: ${missing}`);
    rows.push({ scenario: "peer: notification-controller", server: "", note: `skipped: ${missing}` });
    return;
  }
  await peer({
    seconds: SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    burst: { ...BURST, deliveries: Number(value("peer-burst", String(BURST.deliveries))) },
    scale: Number(value("peer-scale", String(SCALE))),
    startFluxhook: async (name, kubeconfig, env, flags) =>
      startFluxhook(name, kubeconfig, fluxhookCommand, env, [...FLUXHOOK_FLAGS, ...flags]),
    log,
    rows,
    check,
    raw,
  });
}

async function report(started: Date) {
  const table = formatTable(rows);
  console.log(table);
  console.log("");
  for (const c of checks)
    console.log(`${c.met === null ? "n/a " : c.met ? "met " : "MISS"}  ${c.target}: ${c.measured}`);
  if (checks.some((c) => c.met === false))
    console.log(
      '\nWhy each target that stays missed is missed, and what was tried: bench/README.md, "Issue 14\'s targets, one run" and "What was tried".',
    );
  const results = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      kernel: release(),
      bun: Bun.version,
      node: await version(["node", "--version"]),
    },
    tools: {
      wrk: await version(["wrk", "-v"]),
      webhook: await version(["webhook", "-version"]),
      autocannon: await autocannonVersion(),
    },
    fluxhook: {
      command: useBinary ? "dist/fluxhook (npm run build:server)" : "bun server/main.ts",
      flags: FLUXHOOK_FLAGS,
      limitsOff: LIMITS_OFF,
    },
    settings: {
      seconds: SECONDS,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      burst: BURST,
      scale: SCALE,
      fanout: FANOUT,
    },
    rows,
    checks,
    table,
    raw,
  };
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwritten to ${file.slice(ROOT.length + 1)}`);
}

// Scenario 4: a burst of 10,000 deliveries from 100 clients at one receiver.
async function burst(
  api: Api,
  fluxhook: Fluxhook,
  servers: Server[],
  path: string,
  targetPath: string,
  bodies: string[],
) {
  const requests = pushRequests(path, TOKEN, bodies);
  const bare = servers.find((s) => s.name === "bare-hmac")!;
  resetPeakRss(bare.pid);
  const b = await runAutocannon({
    url: bare.url,
    requests,
    connections: BURST.clients,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    amount: BURST.deliveries,
  });
  const bareRss = peakRss(bare.pid);
  // The same burst against bare-patch: the PATCHes that perfect one-in-flight coalescing makes.
  const ideal = servers.find((s) => s.name === "bare-patch")!;
  await api.ask({ cmd: "reset" });
  const p = await runAutocannon({
    url: ideal.url,
    requests,
    connections: BURST.clients,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    amount: BURST.deliveries,
  });
  const idealPatches = (await api.ask<{ count: number }>({ cmd: "patches", pathPattern: ideal.patches! })).count;
  await api.ask({ cmd: "reset" });
  resetPeakRss(fluxhook.proc.pid);
  const f = await runAutocannon({
    url: fluxhook.url,
    requests,
    connections: BURST.clients,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    amount: BURST.deliveries,
  });
  const rss = peakRss(fluxhook.proc.pid);
  const last = await api.ask<{ count: number; lastAt: number | null; lastBody: string | null }>({
    cmd: "patches",
    pathPattern: `^${targetPath}$`,
  });
  const patches = last.count;
  const name = targetPath.slice(targetPath.lastIndexOf("/") + 1);
  const { object } = await api.ask<{ object: any }>({
    cmd: "get",
    apiVersion: GIT,
    kind: "GitRepository",
    namespace: NS,
    name,
  });
  const requestedAt: string | undefined = object?.metadata?.annotations?.[REQUESTED_AT];
  const lastPatchValue: string | undefined = last.lastBody
    ? JSON.parse(last.lastBody)?.metadata?.annotations?.[REQUESTED_AT]
    : undefined;
  // The stored annotation is the last PATCH's, and that PATCH reached the API server after the
  // last delivery left the load tool (both clocks: wall time with sub-ms precision).
  const margin = (last.lastAt ?? NaN) - (f.lastSentAt ?? NaN);
  rows.push({
    scenario: `(4) burst ${BURST.deliveries.toLocaleString("en")} / ${BURST.clients} clients`,
    server: "bare-hmac",
    rps: b.rps,
    p50: b.p50,
    p99: b.p99,
    errors: errorsOf(b, 200),
    rssMb: mb(bareRss),
  });
  rows.push({
    scenario: "",
    server: "bare-patch",
    rps: p.rps,
    p50: p.p50,
    p99: p.p99,
    errors: errorsOf(p, 200),
    patches: idealPatches,
  });
  rows.push({
    scenario: "",
    server: "fluxhook",
    rps: f.rps,
    p50: f.p50,
    p99: f.p99,
    errors: errorsOf(f, 200),
    rssMb: mb(rss),
    patches,
    vsBare: f.rps / b.rps,
    note: `last PATCH arrived ${margin.toFixed(2)} ms after the last delivery was sent`,
  });
  raw.scenario4 = {
    bare: b,
    barePatch: { ...p, patches: idealPatches },
    fluxhook: f,
    patches,
    requestedAt,
    lastPatchValue,
    lastPatchAt: last.lastAt,
    marginMs: margin,
  };
  const all200 = f.statuses["200"] === BURST.deliveries && f.answered === BURST.deliveries;
  check(
    `(4) every one of ${BURST.deliveries} deliveries answered 200`,
    all200,
    `${JSON.stringify(f.statuses)}, ${f.socketErrors} socket errors, ${f.timeouts} timeouts`,
  );
  check(
    `(4) at most 150 PATCHes of the target`,
    patches <= 150,
    `${patches} PATCHes for ${BURST.deliveries} deliveries (bare-patch, coalescing perfectly, made ${idealPatches})`,
  );
  check(
    `(4) the last annotation written after the last delivery arrived`,
    margin > 0 && requestedAt !== undefined && requestedAt === lastPatchValue,
    `the stored requestedAt ${requestedAt} ${requestedAt === lastPatchValue ? "is" : "is NOT"} the last PATCH's, which arrived ${margin.toFixed(2)} ms after the last delivery was sent`,
  );
}

// Scenario 5: one delivery to a receiver with 500 targets, answered while GitHub still waits.
async function fanout(api: Api, fluxhook: Fluxhook, path: string, targets: RegExp, bodies: string[]) {
  const requests = pushRequests(path, TOKEN, bodies);
  await api.ask({ cmd: "reset" });
  // The first delivery after start opens the client's connections: measured, reported apart.
  const first = await runAutocannon({
    url: fluxhook.url,
    requests,
    connections: 1,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    amount: 1,
  });
  await api.ask({ cmd: "reset" });
  resetPeakRss(fluxhook.proc.pid);
  const deliveries = 10;
  const r = await runAutocannon({
    url: fluxhook.url,
    requests,
    connections: 1,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    amount: deliveries,
  });
  const { count } = await api.ask<{ count: number }>({ cmd: "patches", pathPattern: targets.source });
  rows.push({
    scenario: `(5) ${FANOUT} targets, one at a time`,
    server: "fluxhook",
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: errorsOf(r, 200) + errorsOf(first, 200),
    rssMb: mb(peakRss(fluxhook.proc.pid)),
    patches: count / deliveries,
    note: `PATCHes per delivery; max ${r.max?.toFixed(0)} ms; first delivery ${first.p50?.toFixed(0)} ms`,
  });
  raw.scenario5 = { first, measured: r, patches: count };
  const worst = Math.max(r.max ?? Infinity, first.max ?? Infinity);
  check(
    `(5) ${FANOUT} targets answered in under 1 s`,
    worst < 1000,
    `slowest of ${deliveries + 1} deliveries ${worst.toFixed(0)} ms (p50 ${r.p50?.toFixed(0)} ms)`,
  );
  check(`(5) ${FANOUT} PATCHes per delivery`, count === FANOUT * deliveries, `${count / deliveries} per delivery`);
}

// Cold start: the compiled binary against an empty cluster, spawn to /readyz 200.
async function coldStart() {
  const api = await startApi("empty", []);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const f = await startFluxhook(`cold-${i}`, api.hello.kubeconfig);
    times.push(await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 30_000, 1));
    await stopProcess(f.proc);
  }
  await api.stop();
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  rows.push({
    scenario: "cold start to /readyz",
    server: "fluxhook",
    note: `median ${mid.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms of ${times.length} (${useBinary ? "compiled binary" : "bun server/main.ts"}, empty cluster)`,
  });
  raw.coldStart = times;
  check(
    `cold start to /readyz under 200 ms${useBinary ? "" : " (measured from source: no binary)"}`,
    mid < 200,
    `median ${mid.toFixed(0)} ms, runs ${times.map((t) => t.toFixed(0)).join("/")} ms`,
  );
}

// Scenario 7: issue 11's abuse bound. At default flags (no rate limit turned off), 8 concurrent
// senders of each costly body of the red-team report for 10 s, while a real sender delivers to
// another receiver every 100 ms and the kubelet probes /healthz every 100 ms.
const ABUSE = {
  perShape: Number(value("abuse-senders", "8")),
  shapes: flag("abuse-shapes") ? value("abuse-shapes", "").split(",") : undefined,
  seconds: 10,
  probeEveryMs: 100,
  rssMiB: 400,
  healthzP99Ms: 250,
  validP99Ms: 500,
};

async function abuse() {
  const cluster = abuseCluster();
  const api = await startApi("abuse", cluster.objects);
  // --profile=7 runs it under `bun --cpu-prof` and prints where the CPU went.
  const profileDir = join(ROOT, "bench/results");
  const profileName = `profile-7-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`;
  if (PROFILE === "7") mkdirSync(profileDir, { recursive: true });
  const command =
    PROFILE === "7"
      ? [
          BUN,
          "--cpu-prof",
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${profileName}`,
          join(ROOT, "server/main.ts"),
        ]
      : fluxhookCommand;
  const f = await startFluxhook("fluxhook-abuse", api.hello.kubeconfig, command, {}, []);
  await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 30_000, 5);
  for (let i = 0; i < 600; i++) {
    const { ready } = await api.ask<{ ready: number }>({ cmd: "ready", namespace: NS });
    if (ready === cluster.receivers) break;
    await Bun.sleep(50);
  }
  const senders = await startJsonProcess<{ ready: boolean }>("abuse senders", [
    BUN,
    join(ROOT, "bench/load/abuse.ts"),
    JSON.stringify({
      url: f.url,
      // --abuse-shapes=nested,keys sends only those (to tell which shape costs what).
      targets: cluster.targets.filter((t) => ABUSE.shapes === undefined || ABUSE.shapes.includes(t.shape)),
      perShape: ABUSE.perShape,
      seconds: ABUSE.seconds,
    }),
  ]);
  cleanups.push(() => senders.stop());
  await quiesce(f.proc.pid);
  resetPeakRss(f.proc.pid);

  const bodies = pushBodies();
  const valid = pushRequests(cluster.quiet, TOKEN, bodies);
  const healthz: number[] = [];
  const deliveries: { ms: number; status: number }[] = [];
  const timed = async (send: () => Promise<Response>) => {
    const t = performance.now();
    try {
      const res = await send();
      await res.arrayBuffer();
      return { ms: performance.now() - t, status: res.status };
    } catch {
      return { ms: performance.now() - t, status: 0 };
    }
  };
  const cpuBefore = cpuMs(f.proc.pid);
  const sendersCpuBefore = cpuMs(senders.proc.pid);
  const run = senders.ask<{ statuses: Record<string, Record<string, number>> }>({ cmd: "run" });
  const until = performance.now() + ABUSE.seconds * 1000;
  const probes: Promise<void>[] = [];
  for (let i = 0; performance.now() < until; i++) {
    const r = valid[i % valid.length]!;
    probes.push(
      timed(() => fetch(`${f.healthUrl}/healthz`, { signal: AbortSignal.timeout(5_000) })).then(
        ({ ms }) => void healthz.push(ms),
      ),
      timed(() =>
        fetch(f.url + r.path, {
          method: "POST",
          headers: { ...r.headers, [DELIVERY_ID_HEADER]: crypto.randomUUID() },
          body: r.body,
          signal: AbortSignal.timeout(10_000),
        }),
      ).then((d) => void deliveries.push(d)),
    );
    await Bun.sleep(ABUSE.probeEveryMs);
  }
  await Promise.all(probes);
  const { statuses } = await run;
  const rss = peakRss(f.proc.pid);
  // Share of one core used over the run, by fluxhook and by the senders' process.
  const cpuShare = (before: number | undefined, pid: number) => {
    const after = cpuMs(pid);
    return before === undefined || after === undefined ? undefined : (after - before) / (ABUSE.seconds * 1000);
  };
  const fluxhookCpu = cpuShare(cpuBefore, f.proc.pid);
  const sendersCpu = cpuShare(sendersCpuBefore, senders.proc.pid);
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const deliveryMs = deliveries.map((d) => d.ms);
  const not200 = deliveries.filter((d) => d.status !== 200).length;
  const sent = Object.values(statuses).reduce((n, s) => n + Object.values(s).reduce((a, b) => a + b, 0), 0);
  rows.push({
    scenario: `(7) ${ABUSE.perShape} senders × ${Object.keys(statuses).length} costly bodies, ${ABUSE.seconds} s`,
    server: "fluxhook",
    rps: sent / ABUSE.seconds,
    rssMb: mb(rss),
    note: Object.entries(statuses)
      .map(([shape, s]) => `${shape} ${JSON.stringify(s)}`)
      .join("; "),
  });
  rows.push({
    scenario: "(7) valid delivery every 100 ms, meanwhile",
    server: "fluxhook",
    p50: p50(deliveryMs),
    p99: p99(deliveryMs),
    errors: not200,
    note: `${deliveries.length} deliveries; /healthz p50 ${p50(healthz)?.toFixed(1)} ms p99 ${p99(healthz)?.toFixed(1)} ms; CPU (cores) fluxhook ${fluxhookCpu?.toFixed(2)}, senders ${sendersCpu?.toFixed(2)}`,
  });
  raw.scenario7 = { statuses, rss, healthz, deliveries, fluxhookCpu, sendersCpu };
  check(
    `(7) peak RSS under ${ABUSE.rssMiB} MiB`,
    rss !== undefined && rss < ABUSE.rssMiB * 2 ** 20,
    `${mb(rss)?.toFixed(1)} MiB`,
  );
  check(
    `(7) /healthz p99 under ${ABUSE.healthzP99Ms} ms`,
    (p99(healthz) ?? Infinity) < ABUSE.healthzP99Ms,
    `p99 ${p99(healthz)?.toFixed(1)} ms over ${healthz.length} probes`,
  );
  check(
    `(7) every valid delivery answered 200, p99 under ${ABUSE.validP99Ms} ms`,
    not200 === 0 && (p99(deliveryMs) ?? Infinity) < ABUSE.validP99Ms,
    `${deliveries.length - not200}/${deliveries.length} 200, p50 ${p50(deliveryMs)?.toFixed(1)} ms, p99 ${p99(deliveryMs)?.toFixed(1)} ms`,
  );
  await senders.stop();
  await stopProcess(f.proc);
  await api.stop();
  if (PROFILE === "7") {
    const file = join(profileDir, profileName);
    for (let i = 0; i < 50 && !existsSync(file); i++) await Bun.sleep(100);
    if (existsSync(file)) console.log(await summarizeProfile(file));
  }
}

// Scenario 8: issue 22's finding 7. A generic Receiver (its URL its only credential) selecting
// 1,000 HelmReleases of 20 KB with name "*", and 16 unsigned senders for 10 s at default flags.
// Before, every delivery listed the 1,000 objects whole (19.8 MiB), one list each: 1,306 MiB read
// in 10 s and RSS from 148 to 590 MiB, above deploy/'s 512 Mi limit.
const SIEGE = { senders: 16, seconds: 10, rssMiB: 300 };

async function siege() {
  const cluster = siegeCluster();
  const api = await startApi("siege", cluster.objects);
  const f = await startFluxhook("fluxhook-siege", api.hello.kubeconfig, fluxhookCommand, {}, []);
  await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 60_000, 5);
  for (let i = 0; i < 600; i++) {
    const { ready } = await api.ask<{ ready: number }>({ cmd: "ready", namespace: "siege" });
    if (ready === 1) break;
    await Bun.sleep(50);
  }
  await quiesce(f.proc.pid);
  const idle = currentRss(f.proc.pid);
  await api.ask({ cmd: "reset" });
  resetPeakRss(f.proc.pid);
  const cpuBefore = cpuMs(f.proc.pid);
  const r = await runAutocannon({
    url: f.url,
    requests: unsignedRequests(cluster.path),
    connections: SIEGE.senders,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    seconds: SIEGE.seconds,
  });
  const cpu = cpuMs(f.proc.pid);
  const rss = peakRss(f.proc.pid);
  const requests = await api.ask<Record<string, { count: number }>>({ cmd: "requestSummary" });
  const count = (pattern: RegExp) =>
    Object.entries(requests)
      .filter(([k]) => pattern.test(k))
      .reduce((n, [, v]) => n + v.count, 0);
  const lists = count(/^GET helmreleases 200$/);
  const patches = count(/^PATCH helmreleases \(one\) 200$/);
  rows.push({
    scenario: `(8) ${SIEGE.senders} unsigned senders, wildcard over ${cluster.releases} HelmReleases of 20 KB, ${SIEGE.seconds} s`,
    server: "fluxhook",
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: errorsOf(r, 200),
    rssMb: mb(rss),
    patches,
    note: `${lists} metadata LISTs for ${r.answered} deliveries; idle ${mb(idle)?.toFixed(0)} MiB; CPU ${cpu !== undefined && cpuBefore !== undefined ? ((cpu - cpuBefore) / (SIEGE.seconds * 1000)).toFixed(2) : "?"} cores`,
  });
  raw.scenario8 = { result: r, idleRss: idle, peakRss: rss, lists, patches, requests };
  check(
    `(8) peak RSS under ${SIEGE.rssMiB} MiB under finding 7's siege`,
    rss !== undefined && rss < SIEGE.rssMiB * 2 ** 20,
    `${mb(rss)?.toFixed(1)} MiB (idle ${mb(idle)?.toFixed(1)}); ${r.answered} deliveries ${JSON.stringify(r.statuses)}, ${lists} LIST requests (pages of 100), ${patches} PATCHes`,
  );
  await stopProcess(f.proc);
  await api.stop();
}

// Scenario 9: issue 24's cost. 10,000 GitRepositories in 100 namespaces following 1,000
// repositories; side by side on one API server, fluxhook with a routing Receiver (the source index)
// and fluxhook with a Receiver naming the same ten targets a push routes to (no index), each
// watching only its Receiver's namespace; the same paced pushes to each.
const ROUTING = { rate: 50, connections: 16, p99Ms: 50, rssAboveMiB: 40 };

async function routing() {
  const cluster = routingCluster();
  const api = await startApi("routing", cluster.objects);
  const start = (name: string, namespace: string) =>
    startFluxhook(name, api.hello.kubeconfig, fluxhookCommand, { RUNTIME_NAMESPACE: namespace }, [
      "--watch-all-namespaces=false",
    ]);
  const routed = await start("fluxhook-routed", cluster.routed.namespace);
  const plain = await start("fluxhook-plain", cluster.plain.namespace);
  const readyz = {
    routed: await waitForStatus(`${routed.healthUrl}/readyz`, 200, routed.spawnedAt, 120_000, 5),
    plain: await waitForStatus(`${plain.healthUrl}/readyz`, 200, plain.spawnedAt, 120_000, 5),
  };
  for (const f of [routed, plain]) await quiesce(f.proc.pid);
  const seconds = Math.max(SECONDS, 10);
  const measure = async (f: Fluxhook, path: string) => {
    // Warm (connections, JIT), then measure.
    await runAutocannon({
      url: f.url,
      requests: cluster.requests(path),
      connections: 4,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      amount: 200,
    });
    resetPeakRss(f.proc.pid);
    const r = await atRate({
      url: f.url,
      requests: cluster.requests(path),
      connections: ROUTING.connections,
      deliveryIdHeader: DELIVERY_ID_HEADER,
      rate: ROUTING.rate,
      seconds,
    });
    await quiesce(f.proc.pid);
    return { r, peak: peakRss(f.proc.pid), settled: currentRss(f.proc.pid) };
  };
  // In turns, round after round, so that both see the same machine; each server's median round.
  const runs: { a: Awaited<ReturnType<typeof measure>>; b: Awaited<ReturnType<typeof measure>> }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = await measure(routed, cluster.routed.path);
    const b = await measure(plain, cluster.plain.path);
    runs.push({ a, b });
    log(`(9) round ${round + 1}: routed p99 ${a.r.p99?.toFixed(1)} ms, plain p99 ${b.r.p99?.toFixed(1)} ms`);
  }
  const a = median(
    runs.map((x) => x.a),
    (m) => m.r.p99 ?? Infinity,
  );
  const b = median(
    runs.map((x) => x.b),
    (m) => m.r.p99 ?? Infinity,
  );
  const heapA = await heapUsed(routed.metricsUrl);
  const heapB = await heapUsed(plain.metricsUrl);
  for (const [name, m, heap] of [
    ["routed (index)", a, heapA],
    ["plain (no index)", b, heapB],
  ] as const)
    rows.push({
      scenario: name.startsWith("routed")
        ? `(9) ${cluster.sources.toLocaleString("en")} GitRepositories, ${cluster.followers} follow each push`
        : "",
      server: `fluxhook ${name}`,
      rps: m.r.rps,
      p50: m.r.p50,
      p99: m.r.p99,
      errors: errorsOf(m.r, 200),
      rssMb: mb(m.settled),
      note: `peak ${mb(m.peak)?.toFixed(1)} MiB; JS heap ${heap?.toFixed(1)} MB; ${ROUTING.connections} connections paced to ${ROUTING.rate}/s`,
    });
  raw.scenario9 = { readyz, rounds: runs, routed: a, plain: b, heapRouted: heapA, heapPlain: heapB };
  const above = (a.settled ?? Infinity) - (b.settled ?? 0);
  check(
    `(9) a routed delivery's p99 under ${ROUTING.p99Ms} ms among ${cluster.sources} GitRepositories`,
    errorsOf(a.r, 200) === 0 && (a.r.p99 ?? Infinity) < ROUTING.p99Ms,
    `median round's p99 ${a.r.p99?.toFixed(2)} ms, p50 ${a.r.p50?.toFixed(2)} ms (without the index, naming the same targets: p99 ${b.r.p99?.toFixed(2)} ms, p50 ${b.r.p50?.toFixed(2)}); rounds ${runs.map((x) => `${x.a.r.p99?.toFixed(0)}/${x.b.r.p99?.toFixed(0)}`).join(", ")} ms; ${JSON.stringify(a.r.statuses)}`,
  );
  check(
    `(9) RSS under ${ROUTING.rssAboveMiB} MiB above the same server without the index`,
    above < ROUTING.rssAboveMiB * 2 ** 20,
    `${mb(above)?.toFixed(1)} MiB above (${mb(a.settled)?.toFixed(1)} vs ${mb(b.settled)?.toFixed(1)} MiB after the run; peaks ${mb(a.peak)?.toFixed(1)} vs ${mb(b.peak)?.toFixed(1)}; JS heap ${heapA?.toFixed(1)} vs ${heapB?.toFixed(1)} MB); /readyz ${readyz.routed.toFixed(0)} vs ${readyz.plain.toFixed(0)} ms`,
  );
  await stopProcess(routed.proc);
  await stopProcess(plain.proc);
  await api.stop();
}

// Scenario 10: issue 22's finding 1. At default flags, 16 connections send unsigned status queries
// (one target named 100 times) to a URL-only Receiver for 10 s, beside 300 Kustomizations and 300
// HelmReleases, while a real sender delivers to another Receiver every 250 ms. What the API server
// is asked meanwhile (watches aside) must stay under 200 requests, every delivery 200.
const QUERY_SIEGE = { connections: 16, seconds: 10, deliverEveryMs: 250, apiRequests: 200 };

async function querySiege() {
  const cluster = querySiegeCluster();
  const api = await startApi("query-siege", cluster.objects);
  const f = await startFluxhook("fluxhook-query-siege", api.hello.kubeconfig);
  await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 30_000, 5);
  for (let i = 0; i < 600; i++) {
    const { ready } = await api.ask<{ ready: number }>({ cmd: "ready", namespace: NS });
    if (ready === cluster.receivers) break;
    await Bun.sleep(50);
  }
  await quiesce(f.proc.pid);
  await api.ask({ cmd: "reset" });
  const cpuBefore = cpuMs(f.proc.pid);
  const load = runAutocannon({
    url: f.url,
    requests: [cluster.query],
    connections: QUERY_SIEGE.connections,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    seconds: QUERY_SIEGE.seconds,
  });
  const deliveries: { ms: number; status: number }[] = [];
  const sends: Promise<void>[] = [];
  const until = performance.now() + QUERY_SIEGE.seconds * 1000;
  while (performance.now() < until) {
    const t = performance.now();
    sends.push(
      fetch(f.url + cluster.delivery.path, {
        method: "POST",
        headers: { ...cluster.delivery.headers, [DELIVERY_ID_HEADER]: crypto.randomUUID() },
        body: cluster.delivery.body,
        signal: AbortSignal.timeout(10_000),
      }).then(
        async (res) =>
          void deliveries.push({ ms: performance.now() - t, status: (await res.arrayBuffer(), res.status) }),
        () => void deliveries.push({ ms: performance.now() - t, status: 0 }),
      ),
    );
    await Bun.sleep(QUERY_SIEGE.deliverEveryMs);
  }
  const [queries] = await Promise.all([load, Promise.all(sends)]);
  const cpu = cpuMs(f.proc.pid);
  await quiesce(f.proc.pid);
  const summary = await api.ask<Record<string, { count: number }>>({ cmd: "requestSummary" });
  // The control channel's answer carries the summary's entries beside its own fields.
  const requests = Object.entries(summary).filter(
    ([key, v]) => typeof v === "object" && v !== null && typeof v.count === "number" && !key.includes(" watch "),
  );
  const total = requests.reduce((n, [, s]) => n + s.count, 0);
  const count = (pattern: RegExp) => requests.filter(([key]) => pattern.test(key)).reduce((n, [, s]) => n + s.count, 0);
  const byKind = {
    "GET the target": count(/^GET gitrepositories \(one\)/),
    "LIST kustomizations": count(/^GET kustomizations /),
    "LIST helmreleases": count(/^GET .*helmreleases /),
    "PATCH (deliveries)": count(/^PATCH gitrepositories/),
    other: 0,
  };
  byKind.other = total - Object.values(byKind).reduce((a, b) => a + b, 0);
  const not200 = deliveries.filter((d) => d.status !== 200).length;
  const p99 = [...deliveries.map((d) => d.ms)].sort((a, b) => a - b)[Math.floor(deliveries.length * 0.99)];
  rows.push({
    scenario: `(10) ${QUERY_SIEGE.connections} connections of status queries, ${QUERY_SIEGE.seconds} s`,
    server: "fluxhook",
    rps: queries.rps,
    p50: queries.p50,
    p99: queries.p99,
    note: `answers ${JSON.stringify(queries.statuses)}; API requests ${total}: ${JSON.stringify(byKind)}; CPU ${cpuBefore === undefined || cpu === undefined ? "?" : ((cpu - cpuBefore) / (QUERY_SIEGE.seconds * 1000)).toFixed(2)} cores`,
  });
  raw.scenario10 = { queries, summary, deliveries };
  check(
    `(10) fewer than ${QUERY_SIEGE.apiRequests} API requests under the siege (${QUERY_SIEGE_CONSUMERS} Kustomizations and ${QUERY_SIEGE_CONSUMERS} HelmReleases)`,
    total < QUERY_SIEGE.apiRequests,
    `${total} (${Object.entries(byKind)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}); ${queries.answered} queries answered ${JSON.stringify(queries.statuses)}`,
  );
  check(
    "(10) every delivery to another Receiver 200",
    not200 === 0,
    `${deliveries.length - not200}/${deliveries.length} 200, p99 ${p99?.toFixed(1)} ms`,
  );
  await stopProcess(f.proc);
  await api.stop();
}

// Scenario 6: 10,000 Receivers and Secrets at start-up, and lookups among them.
async function scale(mainApi: Api, mainFluxhook: Fluxhook, mainPushPath: string, bodies: string[]) {
  const cluster = scaleCluster(SCALE);
  const api = await startApi("scale", cluster.objects);
  const f = await startFluxhook("fluxhook-scale", api.hello.kubeconfig);
  // RSS over time, to tell where the peak is (lists, index, status writes).
  const timeline: [number, number][] = [];
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < 10_000; i++) {
      const rss = currentRss(f.proc.pid);
      if (rss !== undefined) timeline.push([Math.round(performance.now() - f.spawnedAt), Math.round(rss / 2 ** 20)]);
      await Bun.sleep(20);
    }
  })();
  const readyz = await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 60_000, 2);
  let writes = { receivers: 0, writes: 0, lastFirst: 0 };
  const until = performance.now() + 120_000;
  while (writes.receivers < SCALE && performance.now() < until) {
    await Bun.sleep(50);
    writes = await api.ask<typeof writes>({ cmd: "statusWrites" });
  }
  const allReadyMs = writes.lastFirst - f.spawnedAtEpoch;
  await Bun.sleep(500);
  sampling = false;
  await sampler;
  const { ready, total } = await api.ask<{ ready: number; total: number }>({ cmd: "ready" });
  // What the start-up asked of the API server, by kind of request (kept in the results file).
  const startupRequests = await api.ask({ cmd: "requestSummary" });
  const rss = peakRss(f.proc.pid);
  // The JS heap once settled, to tell live data from garbage not yet returned.
  const heap = await heapUsed(f.metricsUrl);
  const atReadyz = timeline.findLast(([t]) => t <= readyz)?.[1];
  const peakAt = timeline.reduce((best, x) => (x[1] > best[1] ? x : best), [0, 0] as [number, number]);
  rows.push({
    scenario: `(6) ${SCALE.toLocaleString("en")} Receivers at start`,
    server: "fluxhook",
    rssMb: mb(rss),
    note: `/readyz ${readyz.toFixed(0)} ms; all Ready ${allReadyMs.toFixed(0)} ms (${ready}/${total}); RSS ${atReadyz} MB at /readyz, peak at ${peakAt[0]} ms`,
  });
  check(
    `(6) all ${SCALE} Receivers Ready and indexed in under 3 s`,
    ready === SCALE && allReadyMs < 3000,
    `/readyz (indexed) after ${readyz.toFixed(0)} ms, all Ready after ${allReadyMs.toFixed(0)} ms (${ready} of ${total})`,
  );
  check(
    `(6) peak RSS under 150 MiB with ${SCALE} Receivers`,
    rss !== undefined && rss < 150 * 2 ** 20,
    `${mb(rss)?.toFixed(1)} MiB (${atReadyz} MiB at /readyz, peak at ${peakAt[0]} ms; JS heap in use once Ready ${heap?.toFixed(1)} MB)`,
  );

  // Lookup cost: the same requests among 10 and among 10,000 Receivers, back to back, in rounds.
  // Unknown digests are nothing but the lookup (closed model, req/s); valid deliveries to one
  // receiver add the signature check and the PATCH (at a set rate, latency).
  const lookups: { among: number; unknown: LoadResult; valid: LoadResult }[] = [];
  const probeUnknown = pushRequests(unknownPath(), TOKEN, bodies);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [among, url, path, token] of [
      [MAIN_RECEIVERS, mainFluxhook.url, mainPushPath, TOKEN],
      [SCALE, f.url, cluster.probe.path, cluster.probe.token],
    ] as const) {
      const load = Bun.which("wrk") ? runWrk : runAutocannon;
      const unknown = await load({
        url,
        requests: probeUnknown,
        connections: CONNECTIONS,
        deliveryIdHeader: DELIVERY_ID_HEADER,
        seconds: Math.min(SECONDS, 3),
      });
      const valid = await atRate({
        url,
        requests: pushRequests(path, token, bodies),
        connections: 16,
        deliveryIdHeader: DELIVERY_ID_HEADER,
        rate: 500,
        seconds: Math.min(SECONDS, 3),
      });
      lookups.push({ among, unknown, valid });
    }
  }
  const of = (n: number) => {
    const mine = lookups.filter((l) => l.among === n);
    return {
      unknown: median(
        mine.map((l) => l.unknown),
        (r) => r.rps,
      ),
      valid: median(
        mine.map((l) => l.valid),
        (r) => r.p50 ?? Infinity,
      ),
    };
  };
  const few = of(MAIN_RECEIVERS);
  const many = of(SCALE);
  for (const [n, r] of [
    [MAIN_RECEIVERS, few],
    [SCALE, many],
  ] as const) {
    const first = n === MAIN_RECEIVERS;
    rows.push({
      scenario: first ? "(6) lookup: unknown digest among N" : "",
      server: `fluxhook N=${n.toLocaleString("en")}`,
      rps: r.unknown.rps,
      p50: r.unknown.p50,
      p99: r.unknown.p99,
      errors: errorsOf(r.unknown, 404),
      vsBare: first ? undefined : many.unknown.rps / few.unknown.rps,
      note: first ? "× bare column: N=10,000 over N=10" : undefined,
    });
  }
  for (const [n, r] of [
    [MAIN_RECEIVERS, few],
    [SCALE, many],
  ] as const) {
    rows.push({
      scenario: n === MAIN_RECEIVERS ? "(6) lookup: valid delivery among N" : "",
      server: `fluxhook N=${n.toLocaleString("en")}`,
      rps: r.valid.rps,
      p50: r.valid.p50,
      p99: r.valid.p99,
      errors: errorsOf(r.valid, 200),
      note: "16 connections paced to 500/s",
    });
  }
  raw.scenario6 = {
    readyzMs: readyz,
    allReadyMs,
    ready,
    total,
    statusWrites: writes,
    startupRequests,
    peakRss: rss,
    heapUsedAfterReady: heap,
    rssTimelineMsMb: timeline,
    lookups,
  };
  const ratio = many.unknown.rps / few.unknown.rps;
  check(
    `(6) lookup cost independent of the number of Receivers`,
    ratio >= 0.9,
    `unknown digests ${Math.round(many.unknown.rps)} req/s among ${SCALE} vs ${Math.round(few.unknown.rps)} among ${MAIN_RECEIVERS} (× ${ratio.toFixed(2)}); valid p50 ${many.valid.p50?.toFixed(2)} vs ${few.valid.p50?.toFixed(2)} ms`,
  );
  await stopProcess(f.proc);
  await api.stop();
  void mainApi;
}

// --profile=N: scenario N again against `bun --cpu-prof server/main.ts`.
async function profile(which: string, kubeconfig: string, servers: Server[], main: ReturnType<typeof mainCluster>) {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const name = `profile-${which}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`;
  const f = await startFluxhook("fluxhook-profile", kubeconfig, [
    BUN,
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    `--cpu-prof-name=${name}`,
    join(ROOT, "server/main.ts"),
  ]);
  await waitForStatus(`${f.healthUrl}/readyz`, 200, f.spawnedAt, 30_000, 5);
  const base = servers.find((s) => s.name === "fluxhook")!;
  const kind = which === "2" ? "bad" : which === "3" ? "unknown" : "valid";
  const requests = which === "4" ? pushRequests(main.paths.burst, TOKEN, pushBodies()) : base.requests[kind]!;
  await runWrk({
    url: f.url,
    requests,
    connections: CONNECTIONS,
    deliveryIdHeader: DELIVERY_ID_HEADER,
    seconds: SECONDS,
  });
  await stopProcess(f.proc);
  const file = join(dir, name);
  for (let i = 0; i < 50 && !existsSync(file); i++) await Bun.sleep(100);
  if (!existsSync(file)) {
    log(`no profile was written to ${file}`);
    return;
  }
  console.log(`\nCPU profile of scenario ${which} (bun --cpu-prof server/main.ts): ${file.slice(ROOT.length + 1)}`);
  console.log(await summarizeProfile(file));
}

/** fluxhook_runtime_heap_size_bytes (JSC heap in use) from fluxhook's metrics, in MB. */
async function heapUsed(metricsUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("fluxhook_runtime_heap_size_bytes"));
    return line ? Number(line.split(" ").pop()) / 2 ** 20 : undefined;
  } catch {
    return undefined;
  }
}

async function version(cmd: string[]): Promise<string | undefined> {
  if (!Bun.which(cmd[0]!)) return undefined;
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  return (out + err).trim().split("\n")[0];
}

async function autocannonVersion(): Promise<string | undefined> {
  try {
    return ((await Bun.file(join(ROOT, "node_modules/autocannon/package.json")).json()) as { version: string }).version;
  } catch {
    return undefined;
  }
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c();
}
