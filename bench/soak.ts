/**
 * Soak: fluxhook as a subprocess against the Kubernetes API test server (another subprocess),
 * under a steady mix of valid, invalid and abusive loopback traffic for a few minutes, sampling
 * the server's RSS, open file descriptors and sockets (/proc/<pid>) and the answers every few
 * seconds. It prints a table over time and exits 1 when RSS or sockets do not end flat (the last
 * quarter's mean above the second quarter's by more than 20% plus a small absolute slack), when
 * the server dies, or when it answers a 5xx other than 503 (load shedding). Not part of npm test.
 *
 *   npm run soak                               # 3 minutes
 *   bun bench/soak.ts --minutes 1 --sample 5 --workers 16
 *   bun bench/soak.ts --no-rate-limits         # every request reaches validation (no 429s)
 *
 * Traffic (each worker picks one per iteration, weights in MIX): signed GitHub pushes and
 * generic-hmac deliveries, bad signatures, unknown digests, malformed and deeply nested bodies,
 * declared and streamed oversized bodies; beside them, slow senders that drip a body a byte at a
 * time and then finish or abandon it, and bursts of many connections at once. Only 127.0.0.1.
 */
import { connect, createServer } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { signPayload, webhookPath } from "../shared";

const ROOT = join(import.meta.dir, "..");

// ---------------------------------------------------------------------------------------------
// Options

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "3" },
    sample: { type: "string", default: "5" },
    workers: { type: "string", default: "16" },
    "slow-senders": { type: "string", default: "8" },
    burst: { type: "string", default: "200" },
    tolerance: { type: "string", default: "0.2" },
    "no-rate-limits": { type: "boolean", default: false },
  },
});

function numberOption(name: keyof typeof values, min: number, max: number): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} must be a number between ${min} and ${max}, got ${values[name]}`);
    process.exit(2);
  }
  return n;
}

const MINUTES = numberOption("minutes", 0.25, 60);
const SAMPLE_S = numberOption("sample", 1, 60);
const WORKERS = Math.round(numberOption("workers", 1, 256));
const SLOW_SENDERS = Math.round(numberOption("slow-senders", 0, 256));
const BURST = Math.round(numberOption("burst", 0, 2000));
const TOLERANCE = numberOption("tolerance", 0, 10);
/** Absolute slack of the flatness check, so small numbers do not fail on noise. */
const RSS_SLACK_MIB = 8;
const SOCKET_SLACK = 8;

// ---------------------------------------------------------------------------------------------
// The cluster and the receivers

const NS = "soak";
const TOKEN = "soak-token-6f1e0c2d";
const MiB = 1024 * 1024;
const RECEIVERS = {
  github: { type: "github", resourceFilter: "!has(req.ref) || req.ref.startsWith('refs/')" },
  hmac: { type: "generic-hmac" },
  gitlab: { type: "gitlab" },
  registry: { type: "dockerhub" },
  generic: { type: "generic", resourceFilter: "req.?ref.orValue('') != 'refs/heads/skip'" },
} as const;

function fixture() {
  const items: unknown[] = [
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "token", namespace: NS },
      data: { token: Buffer.from(TOKEN).toString("base64") },
    },
    {
      apiVersion: "source.toolkit.fluxcd.io/v1",
      kind: "GitRepository",
      metadata: { name: "app", namespace: NS },
      spec: {},
    },
  ];
  for (const [name, spec] of Object.entries(RECEIVERS)) {
    items.push({
      apiVersion: "notification.toolkit.fluxcd.io/v1",
      kind: "Receiver",
      metadata: { name, namespace: NS },
      spec: { ...spec, secretRef: { name: "token" }, resources: [{ kind: "GitRepository", name: "app" }] },
    });
  }
  return items;
}

const PATHS = Object.fromEntries(Object.keys(RECEIVERS).map((n) => [n, webhookPath(TOKEN, n, NS)])) as Record<
  keyof typeof RECEIVERS,
  string
>;

// ---------------------------------------------------------------------------------------------
// Processes

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  const until = Date.now() + 60_000;
  while (!text.includes("\n") && Date.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  // Keep draining, so the process never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return text.split("\n", 1)[0]!;
}

/** Counts the lines a process writes by their `msg` (fluxhook logs JSON), without keeping them. */
function countLogLines(stream: ReadableStream<Uint8Array>, counts: Map<string, number>) {
  void (async () => {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      rest += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        let msg = "unparsed";
        try {
          msg = String(JSON.parse(line).msg ?? "unparsed");
        } catch {
          // not JSON
        }
        counts.set(msg, (counts.get(msg) ?? 0) + 1);
      }
    }
  })();
}

async function waitUntil(what: string, probe: () => Promise<boolean>, ms = 60_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

function procStats(pid: number): { rssMiB: number; fds: number; sockets: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    let fds = 0;
    let sockets = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
      } catch {
        // closed while reading
      }
    }
    return { rssMiB: Math.round((rssKiB / 1024) * 10) / 10, fds, sockets };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic

interface Counters {
  requests: number;
  byStatus: Map<number, number>;
  transportErrors: number;
  abandoned: number;
}

const newCounters = (): Counters => ({ requests: 0, byStatus: new Map(), transportErrors: 0, abandoned: 0 });
let interval = newCounters();
const total = newCounters();

function record(status: number | "error" | "abandoned") {
  for (const c of [interval, total]) {
    c.requests++;
    if (status === "error") c.transportErrors++;
    else if (status === "abandoned") c.abandoned++;
    else c.byStatus.set(status, (c.byStatus.get(status) ?? 0) + 1);
  }
}

let receiverUrl = "";
let receiverPort = 0;
const _enc = (s: string) => new TextEncoder().encode(s);

async function post(path: string, headers: Record<string, string>, body: BodyInit, init: Record<string, unknown> = {}) {
  try {
    const res = await fetch(receiverUrl + path, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(30_000),
      ...init,
    });
    await res.arrayBuffer();
    record(res.status);
  } catch {
    record("error");
  }
}

const pushBody = (i: number) =>
  JSON.stringify({
    ref: i % 10 === 0 ? "refs/heads/skip" : "refs/heads/main",
    after: i.toString(16).padStart(40, "0"),
    repository: { full_name: "example/app" },
  });
const github = (body: string, key = TOKEN) => ({
  "Content-Type": "application/json",
  "X-GitHub-Event": "push",
  "X-GitHub-Delivery": crypto.randomUUID(),
  "X-Hub-Signature-256": signPayload("sha256", key, body),
});

/** One request of the mix; `i` varies the bodies. */
const MIX: [weight: number, name: string, run: (i: number) => Promise<void>][] = [
  [
    30,
    "valid push",
    (i) => {
      const b = pushBody(i);
      return post(PATHS.github, github(b), b);
    },
  ],
  [
    10,
    "valid hmac",
    (i) => {
      const b = JSON.stringify({ image: "app", tag: `v${i}` });
      return post(
        PATHS.hmac,
        { "Content-Type": "application/json", "X-Signature": signPayload("sha256", TOKEN, b) },
        b,
      );
    },
  ],
  [5, "valid gitlab", () => post(PATHS.gitlab, { "X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook" }, "{}")],
  [
    15,
    "bad signature",
    (i) => {
      const b = pushBody(i);
      return post(PATHS.github, github(b, "wrong-key"), b);
    },
  ],
  [
    15,
    "unknown digest",
    (i) => post(`/hook/${i.toString(16).padStart(64, "0")}`, { "Content-Type": "application/json" }, "{}"),
  ],
  [
    8,
    "malformed payload",
    (i) =>
      post(PATHS.registry, { "Content-Type": "application/json" }, i % 2 ? '{"push_data":{"tag":1}}' : '{"push_data":'),
  ],
  [
    4,
    "deep nesting",
    () =>
      post(
        PATHS.generic,
        { "Content-Type": "application/json" },
        `{"ref":${'{"a":'.repeat(50_000)}1${"}".repeat(50_001)}`,
      ),
  ],
  [
    4,
    "declared oversize",
    () => post(PATHS.generic, { "Content-Type": "application/json" }, new Uint8Array(3 * MiB + 1)),
  ],
  [
    1,
    "streamed oversize",
    () => {
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 5 * MiB) return c.close();
          sent += 256 * 1024;
          c.enqueue(new Uint8Array(256 * 1024));
        },
      });
      return post(PATHS.generic, { "Content-Type": "application/json" }, stream, { duplex: "half" });
    },
  ],
];
const TOTAL_WEIGHT = MIX.reduce((n, [w]) => n + w, 0);

function pick(r: number) {
  let x = r * TOTAL_WEIGHT;
  for (const m of MIX) if ((x -= m[0]) < 0) return m;
  return MIX[0]!;
}

/** A raw connection that sends `head`, then drips `drip` bytes (one per `everyMs`), then finishes or abandons. */
function slowSender(head: string, drip: number, everyMs: number, finish: boolean, until: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(receiverPort, "127.0.0.1");
    let status = 0;
    let sent = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const done = () => {
      clearInterval(timer);
      socket.destroy();
      record(status > 0 ? status : finish ? "error" : "abandoned");
      resolve();
    };
    socket.setTimeout(60_000, done);
    socket.on("data", (d: Buffer) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString("latin1"));
      if (m) status = Number(m[1]);
    });
    socket.on("close", done);
    socket.on("error", done);
    socket.on("connect", () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent < drip && Date.now() < until) {
          socket.write(" ");
          sent++;
        } else if (finish && sent >= drip) {
          clearInterval(timer);
          socket.write("}");
        } else done();
      }, everyMs);
    });
  });
}

/** `n` connections opened at once, each with a request for an unknown digest, held until all answered. */
async function connectionBurst(n: number) {
  await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<void>((resolve) => {
          const socket = connect(receiverPort, "127.0.0.1");
          let answered = false;
          const end = () => {
            if (!answered) record("error");
            answered = true;
            socket.destroy();
            resolve();
          };
          socket.setTimeout(30_000, end);
          socket.on("connect", () =>
            socket.write(
              `POST /hook/${String(i).padStart(64, "f")} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}`,
            ),
          );
          socket.on("data", (d: Buffer) => {
            const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString("latin1"));
            if (m && !answered) {
              answered = true;
              record(Number(m[1]));
              socket.destroy();
              resolve();
            }
          });
          socket.on("error", end);
          socket.on("close", end);
        }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Main

const children: Subprocess[] = [];
const workdir = mkdtempSync(join(tmpdir(), "fluxhook-soak-"));
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  rmSync(workdir, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

async function main(): Promise<number> {
  const fixturePath = join(workdir, "objects.json");
  writeFileSync(fixturePath, JSON.stringify(fixture()));
  const api = Bun.spawn([process.execPath, join(ROOT, "test/kube/serve-fixture.ts"), fixturePath], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push(api);
  const { kubeconfig } = JSON.parse(await firstLine(api.stdout)) as { kubeconfig: string };

  const [rp, hp, mp] = [await freePort(), await freePort(), await freePort()];
  const logs = new Map<string, number>();
  const server = Bun.spawn(
    [
      process.execPath,
      join(ROOT, "server/main.ts"),
      `--kubeconfig=${kubeconfig}`,
      `--receiverAddr=127.0.0.1:${rp}`,
      `--health-addr=127.0.0.1:${hp}`,
      `--metrics-addr=127.0.0.1:${mp}`,
      "--log-level=error",
      ...(values["no-rate-limits"] ? ["--receiver-rate-limit=0", "--receiver-failure-rate-limit=0"] : []),
    ],
    { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, KUBECONFIG: kubeconfig } },
  );
  children.push(server);
  countLogLines(server.stdout, logs);
  countLogLines(server.stderr, logs);
  receiverUrl = `http://127.0.0.1:${rp}`;
  receiverPort = rp;
  await waitUntil("fluxhook to be ready", async () => (await fetch(`http://127.0.0.1:${hp}/readyz`)).status === 200);
  await waitUntil("the receivers to be served", async () => {
    const b = pushBody(1);
    return (await fetch(receiverUrl + PATHS.github, { method: "POST", headers: github(b), body: b })).status === 200;
  });

  const started = Date.now();
  const until = started + MINUTES * 60_000;
  console.log(
    `soak: ${MINUTES} min, ${WORKERS} workers, ${SLOW_SENDERS} slow senders, bursts of ${BURST} connections, rate limits ${values["no-rate-limits"] ? "off" : "default"}; fluxhook pid ${server.pid}`,
  );
  const header = [
    "t(s)",
    "rss MiB",
    "fds",
    "sockets",
    "req/s",
    "2xx",
    "400",
    "404",
    "413",
    "429",
    "other 4xx",
    "503",
    "5xx",
    "net err",
    "abandoned",
  ];
  console.log(header.map((h) => h.padStart(9)).join(" "));

  interface Sample {
    t: number;
    rssMiB: number;
    fds: number;
    sockets: number;
  }
  const samples: Sample[] = [];
  let failures: string[] = [];
  let unexpected5xx = 0;

  const sampler = (async () => {
    let last = Date.now();
    while (Date.now() < until) {
      await Bun.sleep(Math.min(SAMPLE_S * 1000, Math.max(0, until - Date.now())));
      const stats = procStats(server.pid);
      const now = Date.now();
      const c = interval;
      interval = newCounters();
      if (!stats || server.exitCode !== null) {
        failures.push(`fluxhook exited (code ${server.exitCode})`);
        return;
      }
      const n = (s: number) => c.byStatus.get(s) ?? 0;
      const sum = (pred: (s: number) => boolean) =>
        [...c.byStatus].filter(([s]) => pred(s)).reduce((a, [, v]) => a + v, 0);
      const bad5xx = sum((s) => s >= 500 && s !== 503);
      unexpected5xx += bad5xx;
      const t = Math.round((now - started) / 1000);
      samples.push({ t, ...stats });
      const row = [
        t,
        stats.rssMiB,
        stats.fds,
        stats.sockets,
        Math.round(c.requests / ((now - last) / 1000)),
        sum((s) => s < 300),
        n(400),
        n(404),
        n(413),
        n(429),
        sum((s) => s >= 400 && s < 500 && ![400, 404, 413, 429].includes(s)),
        n(503),
        bad5xx,
        c.transportErrors,
        c.abandoned,
      ];
      console.log(row.map((v) => String(v).padStart(9)).join(" "));
      last = now;
    }
  })();

  let seq = 0;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    while (Date.now() < until && server.exitCode === null) {
      const i = seq++;
      const [, , run] = pick(((i * 2654435761) % 2 ** 32) / 2 ** 32);
      await run(i * WORKERS + w);
    }
  });
  const slow = Array.from({ length: SLOW_SENDERS }, async (_, s) => {
    let k = 0;
    while (Date.now() < until && server.exitCode === null) {
      const finish = (k++ + s) % 2 === 0;
      const head = `POST ${PATHS.generic} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n{"ref":"x"`;
      // 10 drip bytes + "}" complete the declared 21 bytes; abandoned ones stop halfway.
      await slowSender(head, finish ? 10 : 5, 300, finish, until);
    }
  });
  const bursts = (async () => {
    while (BURST > 0 && Date.now() < until && server.exitCode === null) {
      await connectionBurst(BURST);
      await Bun.sleep(Math.min(10_000, Math.max(0, until - Date.now())));
    }
  })();

  await Promise.all([...workers, ...slow, bursts, sampler]);

  // Verdict: flat means the last quarter's mean is not above the second quarter's by more than
  // the tolerance (plus slack); the first quarter is warm-up.
  const q = Math.floor(samples.length / 4);
  if (q < 1) failures.push(`too few samples (${samples.length}) to judge: run longer or sample more often`);
  else {
    const mean = (xs: Sample[], k: "rssMiB" | "sockets") => xs.reduce((a, s) => a + s[k], 0) / xs.length;
    const second = samples.slice(q, 2 * q);
    const last = samples.slice(samples.length - q);
    for (const [k, slack] of [
      ["rssMiB", RSS_SLACK_MIB],
      ["sockets", SOCKET_SLACK],
    ] as const) {
      const a = mean(second, k);
      const b = mean(last, k);
      const ok = b <= a * (1 + TOLERANCE) + slack;
      console.log(
        `${k}: second quarter mean ${a.toFixed(1)}, last quarter mean ${b.toFixed(1)} (limit ${(a * (1 + TOLERANCE) + slack).toFixed(1)}): ${ok ? "flat" : "GROWING"}`,
      );
      if (!ok) failures.push(`${k} did not end flat`);
    }
  }
  if (unexpected5xx > 0) failures.push(`${unexpected5xx} answers were a 5xx other than 503`);
  if (server.exitCode !== null) failures.push(`fluxhook exited (code ${server.exitCode})`);
  failures = [...new Set(failures)];

  const statuses = [...total.byStatus]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}:${n}`)
    .join(" ");
  console.log(
    `requests: ${total.requests} (${statuses}; transport errors ${total.transportErrors}, abandoned ${total.abandoned})`,
  );
  console.log(`server log lines: ${[...logs].map(([m, n]) => `${m}: ${n}`).join(", ") || "none"}`);
  if (failures.length > 0) {
    console.log(`FAIL: ${failures.join("; ")}`);
    return 1;
  }
  console.log("PASS: RSS and sockets ended flat, the server kept answering, no unexpected 5xx");
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  cleanup();
}
process.exit(code);
