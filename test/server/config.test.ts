import { describe, expect, test } from "bun:test";
import { parseConfig, parseListenAddress } from "../../server/config";
import { createHealthApp } from "../../server/http/app";
import { RecentDeliveries } from "../../server/observe/recent-deliveries";

const ok = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  if (r.ok !== true) throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
};

describe("flags", () => {
  test("defaults are Flux's", () => {
    expect(ok([])).toEqual({
      receiverAddr: { host: "0.0.0.0", port: 9292 },
      healthAddr: { host: "0.0.0.0", port: 9440 },
      metricsAddr: { host: "0.0.0.0", port: 8080 },
      watchNamespace: undefined,
      noCrossNamespaceRefs: false,
      statusUpdates: true,
      logLevel: "info",
      logEncoding: "json",
      kubeconfig: undefined,
      receiversFiles: [],
      dryRun: false,
      exportHttpPathMetrics: false,
      leaderElection: undefined,
      limits: {
        validRate: 0,
        validBurst: 500,
        failedRate: 10,
        failedBurst: 100,
        maxConcurrent: 1024,
        replayWindowMs: 0,
      },
      gcrJwksUrl: "https://www.googleapis.com/oauth2/v3/certs",
      oidcDenyPrivateNetworks: false,
    });
    expect(ok(["--oidc-deny-private-networks"]).oidcDenyPrivateNetworks).toBe(true);
  });

  test("a notification-controller Deployment's args carry over", () => {
    const c = ok(
      [
        "--watch-all-namespaces=false",
        "--log-level=debug",
        "--log-encoding=json",
        "--enable-leader-election",
        "--receiverAddr=:9393",
        "--health-addr",
        "127.0.0.1:0",
        "--no-cross-namespace-refs=true",
        "--status-updates=false",
      ],
      { RUNTIME_NAMESPACE: "flux-system" },
    );
    expect(c).toMatchObject({
      watchNamespace: "flux-system",
      logLevel: "debug",
      receiverAddr: { host: "0.0.0.0", port: 9393 },
      healthAddr: { host: "127.0.0.1", port: 0 },
      noCrossNamespaceRefs: true,
      statusUpdates: false,
    });
  });

  test("--metrics-addr=0 and --health-addr=0 turn those listeners off, as in controller-runtime", () => {
    expect(ok(["--metrics-addr=0", "--health-addr", "0"])).toMatchObject({
      metricsAddr: undefined,
      healthAddr: undefined,
      receiverAddr: { host: "0.0.0.0", port: 9292 },
    });
    // Port 0 on an interface still means "any free port", and the webhook listener cannot be off.
    expect(ok(["--metrics-addr=:0"]).metricsAddr).toEqual({ host: "0.0.0.0", port: 0 });
    expect(parseConfig(["--receiverAddr=0"], {})).toMatchObject({ ok: false });
  });

  test("--log-level=trace, which Flux accepts, is debug", () => {
    expect(ok(["--log-level=trace"], {})).toEqual(ok(["--log-level=debug"], {}));
  });

  test("Flux flags that do not apply are accepted and change nothing", () => {
    const flux = [
      "--events-addr=:9090",
      "--concurrent=4",
      "--kube-api-qps=50",
      "--kube-api-burst",
      "300",
      "--feature-gates=CacheSecretsAndConfigMaps=false",
      "--rate-limit-interval=5m",
    ];
    expect(ok(flux, {})).toEqual(ok([], {}));
  });

  test.each([
    [["--nope"], "unknown flag --nope"],
    [["--receiverAddr"], "flag --receiverAddr needs a value"],
    [["--receiverAddr=9292"], 'invalid value "9292" for flag --receiverAddr'],
    [["--health-addr=:99999"], 'invalid value ":99999" for flag --health-addr'],
    [["--log-level=verbose"], 'invalid value "verbose" for flag --log-level'],
    [["--log-encoding=xml"], 'invalid value "xml" for flag --log-encoding'],
    [["--watch-all-namespaces=maybe"], 'invalid value "maybe" for flag --watch-all-namespaces'],
    // Names an object inherits are not values: Object.prototype's are no bool and no flag.
    [["--dry-run=toString"], 'invalid value "toString" for flag --dry-run'],
    [["--status-updates=constructor"], 'invalid value "constructor" for flag --status-updates'],
    [["--watch-all-namespaces=false"], "needs the RUNTIME_NAMESPACE environment variable"],
    [["stray"], 'unexpected argument "stray"'],
  ])("%p is refused", (argv, message) => {
    const r = parseConfig(argv, {});
    expect(r.ok).toBe(false);
    expect(r.ok === false && r.error).toContain(message);
  });

  test("--receivers-file repeats; leader election reads Flux's duration flags", () => {
    const c = ok(
      [
        "--receivers-file=a.yaml",
        "--receivers-file",
        "b.yaml",
        "--dry-run",
        "--enable-leader-election",
        "--leader-election-lease-duration=1m30s",
        "--leader-election-retry-period=500ms",
      ],
      { RUNTIME_NAMESPACE: "flux-system" },
    );
    expect(c.receiversFiles).toEqual(["a.yaml", "b.yaml"]);
    expect(c.dryRun).toBe(true);
    expect(c.leaderElection).toEqual({
      namespace: "flux-system",
      leaseDurationMs: 90_000,
      renewDeadlineMs: 30_000,
      retryPeriodMs: 500,
      releaseOnCancel: true,
    });
  });

  test.each([
    [["--enable-leader-election"], {}, "needs the RUNTIME_NAMESPACE"],
    [
      ["--enable-leader-election", "--leader-election-renew-deadline=40s"],
      { RUNTIME_NAMESPACE: "x" },
      "lease duration > renew deadline > retry period",
    ],
    [
      ["--enable-leader-election", "--leader-election-retry-period=5"],
      { RUNTIME_NAMESPACE: "x" },
      'invalid value "5" for flag --leader-election-retry-period',
    ],
  ])("leader election %p is refused", (argv, env, message) => {
    const r = parseConfig(argv, env as Record<string, string>);
    expect(r.ok === false && r.error).toContain(message);
  });

  test("--gcr-jwks-url is hidden from --help, and must be an http(s) URL", () => {
    expect(ok(["--gcr-jwks-url=http://127.0.0.1:5556/jwks"]).gcrJwksUrl).toBe("http://127.0.0.1:5556/jwks");
    const help = parseConfig(["--help"], {});
    expect(help.ok === "help" && help.text).not.toContain("gcr-jwks-url");
    const bad = parseConfig(["--gcr-jwks-url=file:///etc/keys"], {});
    expect(bad.ok === false && bad.error).toContain(
      'invalid value "file:///etc/keys" for flag --gcr-jwks-url: expected an http(s) URL',
    );
  });

  test("abuse limits", () => {
    expect(
      ok([
        "--receiver-rate-limit=0",
        "--receiver-failure-rate-limit=2.5",
        "--receiver-failure-burst=5",
        "--max-concurrent-deliveries=8",
        "--replay-window=10m",
      ]).limits,
    ).toEqual({
      validRate: 0,
      validBurst: 500,
      failedRate: 2.5,
      failedBurst: 5,
      maxConcurrent: 8,
      replayWindowMs: 600_000,
    });
  });

  test.each([
    [["--receiver-rate-limit=-1"], 'invalid value "-1" for flag --receiver-rate-limit'],
    [["--receiver-rate-burst=lots"], 'invalid value "lots" for flag --receiver-rate-burst'],
    [["--max-concurrent-deliveries=0"], "--max-concurrent-deliveries must be at least 1"],
    [["--receiver-rate-limit=5", "--receiver-rate-burst=0"], "--receiver-rate-burst must be at least 1"],
    [["--replay-window=forever"], 'invalid value "forever" for flag --replay-window'],
  ])("limit %p is refused", (argv, message) => {
    const r = parseConfig(argv, {});
    expect(r.ok === false && r.error).toContain(message);
  });

  test("help", () => {
    const r = parseConfig(["--help"], {});
    expect(r.ok === "help" && r.text).toContain("--receiverAddr");
  });

  test("help names every path the health listener serves, and `fluxhook send`", () => {
    const r = parseConfig(["--help"], {});
    const lines = r.ok === "help" ? r.text.split("\n") : [];
    // A flag's usage is the line after its name.
    const healthUsage = lines[lines.indexOf("  --health-addr string") + 1] ?? "";
    const served = createHealthApp({ ready: () => true, watches: () => ({}), deliveries: new RecentDeliveries() })
      .routes.map((route) => route.path)
      .sort();
    expect(served).toContain("/healthz");
    expect(served.filter((path) => !healthUsage.includes(path))).toEqual([]);
    expect(lines).toContainEqual(expect.stringContaining("fluxhook send [flags]"));
  });

  test.each([
    [":9292", { host: "0.0.0.0", port: 9292 }],
    ["localhost:0", { host: "localhost", port: 0 }],
    ["[::1]:80", { host: "::1", port: 80 }],
    ["nope", undefined],
  ])("listen address %p", (value, expected) => {
    expect(parseListenAddress(value)).toEqual(expected);
  });
});
