/**
 * @module server/config
 * Command-line flags, parsed once at the edge into a typed, readonly ServerConfig.
 *
 * Flag names are Flux notification-controller's, so a Deployment's args carry over. Flags that
 * only make sense for Flux's other controllers are accepted and ignored (listed in
 * IGNORED_FLUX_FLAGS), so a copied argument list does not stop the server; anything else unknown
 * is an error. Go's flag syntax is accepted: `--name=value`, `--name value`, `-name`, and a bare
 * `--bool-flag` meaning true.
 */
import {
  DEFAULT_FAILED_BURST,
  DEFAULT_FAILED_RATE,
  DEFAULT_MAX_CONCURRENT_DELIVERIES,
  DEFAULT_VALID_BURST,
  DEFAULT_VALID_RATE,
} from "./limits";

export type LogLevel = "debug" | "info" | "error";
export type LogEncoding = "json" | "console";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly receiverAddr: ListenAddress;
  /** Undefined when off (`--health-addr=0`, as controller-runtime reads it). */
  readonly healthAddr: ListenAddress | undefined;
  /** Undefined when off (`--metrics-addr=0`, as controller-runtime reads it). */
  readonly metricsAddr: ListenAddress | undefined;
  /** Undefined means every namespace. */
  readonly watchNamespace: string | undefined;
  readonly noCrossNamespaceRefs: boolean;
  readonly statusUpdates: boolean;
  readonly logLevel: LogLevel;
  readonly logEncoding: LogEncoding;
  /** Path of a kubeconfig; undefined means KUBECONFIG, else in-cluster. */
  readonly kubeconfig: string | undefined;
  /** Receivers and Secrets read from these YAML files instead of watched in the cluster. */
  readonly receiversFiles: readonly string[];
  /** Log the targets instead of annotating them. */
  readonly dryRun: boolean;
  /** Label request metrics per receiver (`/hook/<namespace>/<name>`) instead of `/hook/`. */
  readonly exportHttpPathMetrics: boolean;
  /** Abuse limits: per-receiver rate limits, concurrency cap, replay window. */
  readonly limits: DeliveryLimits;
  /** Elect one replica to write status and Events; undefined when every replica is its own leader. */
  readonly leaderElection: LeaderElectionConfig | undefined;
  /** Where Google's ID-token signing keys are fetched (gcr receivers); only tests change it. */
  readonly gcrJwksUrl: string;
  /** Refuse OIDC issuers, key sets and redirects at loopback, link-local or private addresses. */
  readonly oidcDenyPrivateNetworks: boolean;
}

export interface DeliveryLimits {
  readonly validRate: number;
  readonly validBurst: number;
  readonly failedRate: number;
  readonly failedBurst: number;
  readonly maxConcurrent: number;
  /** 0 when off. */
  readonly replayWindowMs: number;
}

export interface LeaderElectionConfig {
  /** Namespace of the Lease (RUNTIME_NAMESPACE, as Flux's controllers use). */
  readonly namespace: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly releaseOnCancel: boolean;
}

export type ConfigResult =
  | { ok: true; config: ServerConfig }
  | { ok: false; error: string }
  | { ok: "help"; text: string }
  | { ok: "version" };

type FlagKind = "string" | "bool" | "strings";
interface FlagSpec {
  readonly kind: FlagKind;
  readonly usage: string;
  readonly default: string;
  /** Left out of --help: a test hook, not a setting for users. */
  readonly hidden?: boolean;
}

const FLAGS = {
  receiverAddr: { kind: "string", default: ":9292", usage: "The address the webhook receiver server binds to." },
  "health-addr": {
    kind: "string",
    default: ":9440",
    usage:
      "The address the health endpoints (/healthz, /readyz, /deliveries, /openapi.json) bind to; 0 turns them off.",
  },
  "metrics-addr": {
    kind: "string",
    default: ":8080",
    usage: "The address the metric endpoint binds to; 0 turns it off.",
  },
  "watch-all-namespaces": {
    kind: "bool",
    default: "true",
    usage: "Watch Receivers in all namespaces; if false, only in the namespace given by RUNTIME_NAMESPACE.",
  },
  "no-cross-namespace-refs": {
    kind: "bool",
    default: "false",
    usage: "Refuse targets in a namespace other than the Receiver's.",
  },
  "status-updates": {
    kind: "bool",
    default: "true",
    usage: "Write Receiver status; set to false when Flux's notification-controller runs beside fluxhook.",
  },
  "log-level": {
    kind: "string",
    default: "info",
    usage: "Log verbosity: debug, info or error (trace, as Flux accepts it, is debug).",
  },
  "log-encoding": { kind: "string", default: "json", usage: "Log encoding: json or console." },
  kubeconfig: { kind: "string", default: "", usage: "Path to a kubeconfig; defaults to KUBECONFIG, else in-cluster." },
  "receivers-file": {
    kind: "strings",
    default: "",
    usage:
      "Read Receivers and their Secrets from this multi-document YAML file (repeatable) instead of the cluster; reloaded on change.",
  },
  "dry-run": {
    kind: "bool",
    default: "false",
    usage:
      "Log the targets a delivery would annotate instead of annotating them (with --receivers-file, the default when no cluster is reachable).",
  },
  "export-http-path-metrics": {
    kind: "bool",
    default: "false",
    usage: "Label HTTP metrics per receiver (/hook/<namespace>/<name>; never the secret digest) instead of /hook/.",
  },
  "enable-leader-election": {
    kind: "bool",
    default: "false",
    usage:
      "Elect one replica, through a Lease in RUNTIME_NAMESPACE, to write Receiver status and its Ready-transition Events (with --status-updates); every replica serves webhooks and records the Events of its deliveries.",
  },
  "leader-election-lease-duration": {
    kind: "string",
    default: "35s",
    usage: "How long a leader's Lease is valid without renewal.",
  },
  "leader-election-renew-deadline": {
    kind: "string",
    default: "30s",
    usage: "How long the leader keeps trying to renew before it steps down.",
  },
  "leader-election-retry-period": {
    kind: "string",
    default: "5s",
    usage: "How often candidates try to acquire or renew the Lease.",
  },
  "leader-election-release-on-cancel": {
    kind: "bool",
    default: "true",
    usage: "Release the Lease on shutdown so another replica takes over at once.",
  },
  "receiver-rate-limit": {
    kind: "string",
    default: String(DEFAULT_VALID_RATE),
    usage:
      "Valid deliveries per second per receiver; beyond it, 429 with Retry-After. 0 (the default) is no limit: a refused valid delivery is a lost reconcile, since GitHub does not retry.",
  },
  "receiver-rate-burst": {
    kind: "string",
    default: String(DEFAULT_VALID_BURST),
    usage: "Valid deliveries a quiet receiver takes at once, when --receiver-rate-limit is set.",
  },
  "receiver-failure-rate-limit": {
    kind: "string",
    default: String(DEFAULT_FAILED_RATE),
    usage:
      "Deliveries failing validation per second per receiver (0: no limit); beyond it, 429. Kept apart from the valid budget.",
  },
  "receiver-failure-burst": {
    kind: "string",
    default: String(DEFAULT_FAILED_BURST),
    usage: "Failed deliveries a receiver takes at once before 429.",
  },
  "max-concurrent-deliveries": {
    kind: "string",
    default: String(DEFAULT_MAX_CONCURRENT_DELIVERIES),
    usage: "Deliveries handled at once by this replica; beyond it, 429.",
  },
  "replay-window": {
    kind: "string",
    default: "0s",
    usage:
      "Refuse (409) a signed body already delivered to the same receiver within this window, e.g. 10m; 0s is off (a CI job posting the same body on purpose keeps working).",
  },
  "oidc-deny-private-networks": {
    kind: "bool",
    default: "false",
    usage:
      "Refuse generic-oidc issuers (and their key sets and redirects) whose host resolves to a loopback, link-local or private address. Off by default: in-cluster issuers such as Dex are legitimate.",
  },
  "gcr-jwks-url": {
    kind: "string",
    default: "https://www.googleapis.com/oauth2/v3/certs",
    usage:
      "Where the keys that sign Google ID tokens (gcr receivers) are published. For tests that sign their own tokens.",
    hidden: true,
  },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

/**
 * Flags of Flux's notification-controller that do not apply to fluxhook (event server, leader
 * election of the reconcilers, worker tuning). Accepted so a copied Deployment keeps starting.
 * `--kube-api-qps`/`--kube-api-burst` tune client-go's request rate limiter; fluxhook bounds its
 * Kubernetes calls by how many are in flight instead (Secret reads, status writes, PATCHes).
 */
export const IGNORED_FLUX_FLAGS: ReadonlyMap<string, FlagKind> = new Map([
  ["events-addr", "string"],
  ["concurrent", "string"],
  ["requeue-dependency", "string"],
  ["rate-limit-interval", "string"],
  ["min-retry-delay", "string"],
  ["max-retry-delay", "string"],
  ["feature-gates", "string"],
  ["watch-label-selector", "string"],
  ["watch-configs-label-selector", "string"],
  ["token-cache-max-size", "string"],
  ["token-cache-max-duration", "string"],
  ["default-service-account", "string"],
  ["kube-api-qps", "string"],
  ["kube-api-burst", "string"],
]);

/** The address value that turns the health or metrics listener off, as controller-runtime's BindAddress "0". */
const LISTENER_OFF = "0";
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "error"];
/** Flux's --log-level also takes `trace` (fluxcd/pkg runtime/logger); fluxhook has nothing finer than debug. */
const LOG_LEVEL_ALIASES: Readonly<Record<string, LogLevel>> = { trace: "debug" };
const LOG_ENCODINGS: readonly LogEncoding[] = ["json", "console"];
/** The values Go's strconv.ParseBool takes, as a bool flag's `=value`. */
const BOOL_VALUES: Record<string, boolean> = {
  true: true,
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  True: true,
  false: false,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  False: false,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration such as `35s`, `1m30s` or `500ms` into milliseconds. */
export function parseDuration(value: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, , unit] of value.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g))
    total += Number(amount) * DURATION_UNITS[unit!]!;
  return total;
}

/** Parses Go's `host:port` listen address (`:9292` binds every interface). */
export function parseListenAddress(value: string): ListenAddress | undefined {
  const colon = value.lastIndexOf(":");
  if (colon < 0) return undefined;
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host: host === "" ? "0.0.0.0" : host, port };
}

export function usage(): string {
  const lines = [
    "Usage: fluxhook [flags]",
    "       fluxhook --version",
    "       fluxhook send [flags]   (deliver an event as the GitHub Action does; fluxhook send --help)",
    "",
    "Flags:",
  ];
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    if (spec.hidden) continue;
    const arg = spec.kind === "bool" ? "" : spec.kind === "strings" ? " path" : " string";
    lines.push(
      `  --${name}${arg}`,
      `        ${spec.usage}${spec.default ? ` (default ${JSON.stringify(spec.default)})` : ""}`,
    );
  }
  return lines.join("\n");
}

/** Parses argv (without the runtime and script) and the environment into a ServerConfig. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const scanned = scanFlags(argv);
  if (scanned.ok !== true) return scanned;
  const { flags } = scanned;
  const addresses = listenAddresses(flags);
  if (!addresses.ok) return addresses;
  const logging = logSettings(flags);
  if (!logging.ok) return logging;
  const watchNamespace = watchedNamespace(flags, env);
  if (!watchNamespace.ok) return watchNamespace;
  const limits = deliveryLimits(flags);
  if (!limits.ok) return limits;
  const leaderElection = leaderElectionConfig(flags, env);
  if (!leaderElection.ok) return leaderElection;
  const gcrJwksUrl = flags.get("gcr-jwks-url");
  if (!/^https?:\/\/[^\s]+$/.test(gcrJwksUrl)) return invalid("gcr-jwks-url", gcrJwksUrl, "expected an http(s) URL");

  return {
    ok: true,
    config: {
      ...addresses.value,
      watchNamespace: watchNamespace.value,
      noCrossNamespaceRefs: flags.bool("no-cross-namespace-refs"),
      statusUpdates: flags.bool("status-updates"),
      ...logging.value,
      kubeconfig: flags.get("kubeconfig") || undefined,
      receiversFiles: flags.list("receivers-file"),
      dryRun: flags.bool("dry-run"),
      exportHttpPathMetrics: flags.bool("export-http-path-metrics"),
      limits: limits.value,
      leaderElection: leaderElection.value,
      gcrJwksUrl,
      oidcDenyPrivateNetworks: flags.bool("oidc-deny-private-networks"),
    },
  };
}

/** A flag's value refused, with the message fluxhook exits 2 with. */
type Refused = { readonly ok: false; readonly error: string };
/** One concern of the config, or why its flags are refused. */
type Parsed<T> = { readonly ok: true; readonly value: T } | Refused;

const refuse = (error: string): Refused => ({ ok: false, error });
const invalid = (name: string, value: string, expected: string): Refused =>
  refuse(`invalid value ${JSON.stringify(value)} for flag --${name}: ${expected}`);
const parsed = <T>(value: T): Parsed<T> => ({ ok: true, value });

/** The flags of one command line: a flag's value (its default when not given), a repeatable flag's every value. */
interface Flags {
  get(name: FlagName): string;
  bool(name: FlagName): boolean;
  list(name: FlagName): readonly string[];
}

/** A flag's kind, for fluxhook's flags and Flux's flags fluxhook ignores; undefined for any other name. */
function kindOf(name: string): FlagKind | undefined {
  return Object.hasOwn(FLAGS, name) ? FLAGS[name as FlagName].kind : IGNORED_FLUX_FLAGS.get(name);
}

/**
 * Reads argv with Go's flag syntax, which Flux's controllers take (pflag): `--name=value`,
 * `--name value`, `-name`, a bare bool flag meaning true, a repeated string flag's every value.
 * Hand-written: node:util parseArgs refuses `--bool=false` and a value that starts with `-`, and reads `-name` as short flags.
 * `fluxhook send` takes the action's inputs as GNU-style flags, parsed with parseArgs (action/cli.ts).
 */
function scanFlags(argv: readonly string[]): { ok: true; flags: Flags } | Exclude<ConfigResult, { ok: true }> {
  const values = new Map<FlagName, string>();
  const lists = new Map<FlagName, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help" || arg === "-help") return { ok: "help", text: usage() };
    if (arg === "--version" || arg === "-version") return { ok: "version" };
    if (!arg.startsWith("-") || arg === "-" || arg === "--")
      return refuse(`unexpected argument ${JSON.stringify(arg)}: fluxhook takes only flags`);
    const nameAndValue = arg.replace(/^--?/, "");
    const eq = nameAndValue.indexOf("=");
    const name = eq < 0 ? nameAndValue : nameAndValue.slice(0, eq);
    let value: string | undefined = eq < 0 ? undefined : nameAndValue.slice(eq + 1);
    const kind = kindOf(name);
    if (kind === undefined) return refuse(`unknown flag --${name}\n\n${usage()}`);
    if (value === undefined) {
      if (kind === "bool") value = "true";
      else {
        const next = argv[i + 1];
        if (next === undefined) return refuse(`flag --${name} needs a value`);
        value = next;
        i++;
      }
    }
    if (kind === "bool" && !Object.hasOwn(BOOL_VALUES, value)) return invalid(name, value, "expected true or false");
    if (kind === "strings") lists.set(name as FlagName, [...(lists.get(name as FlagName) ?? []), value]);
    else if (Object.hasOwn(FLAGS, name)) values.set(name as FlagName, value);
  }
  const get = (name: FlagName) => values.get(name) ?? FLAGS[name].default;
  return {
    ok: true,
    flags: { get, bool: (name) => BOOL_VALUES[get(name)] === true, list: (name) => lists.get(name) ?? [] },
  };
}

/** The three listeners; controller-runtime's "0" turns the health or metrics one off (not the webhook one: it is the point). */
function listenAddresses(flags: Flags): Parsed<Pick<ServerConfig, "receiverAddr" | "healthAddr" | "metricsAddr">> {
  const address = (name: "receiverAddr" | "health-addr" | "metrics-addr"): Parsed<ListenAddress | undefined> => {
    const value = flags.get(name);
    if (name !== "receiverAddr" && value === LISTENER_OFF) return parsed(undefined);
    const listen = parseListenAddress(value);
    return listen ? parsed(listen) : invalid(name, value, 'expected host:port, e.g. ":9292"');
  };
  const receiverAddr = address("receiverAddr");
  if (!receiverAddr.ok) return receiverAddr;
  const healthAddr = address("health-addr");
  if (!healthAddr.ok) return healthAddr;
  const metricsAddr = address("metrics-addr");
  if (!metricsAddr.ok) return metricsAddr;
  return parsed({ receiverAddr: receiverAddr.value!, healthAddr: healthAddr.value, metricsAddr: metricsAddr.value });
}

function logSettings(flags: Flags): Parsed<Pick<ServerConfig, "logLevel" | "logEncoding">> {
  const levelFlag = flags.get("log-level");
  const logLevel = Object.hasOwn(LOG_LEVEL_ALIASES, levelFlag) ? LOG_LEVEL_ALIASES[levelFlag]! : levelFlag;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    return invalid("log-level", levelFlag, `expected one of trace, ${LOG_LEVELS.join(", ")}`);
  const logEncoding = flags.get("log-encoding");
  if (!(LOG_ENCODINGS as readonly string[]).includes(logEncoding))
    return invalid("log-encoding", logEncoding, `expected one of ${LOG_ENCODINGS.join(", ")}`);
  return parsed({ logLevel: logLevel as LogLevel, logEncoding: logEncoding as LogEncoding });
}

/** Every namespace, or (--watch-all-namespaces=false) RUNTIME_NAMESPACE's alone, as Flux's controllers read it. */
function watchedNamespace(flags: Flags, env: Readonly<Record<string, string | undefined>>): Parsed<string | undefined> {
  if (flags.bool("watch-all-namespaces")) return parsed(undefined);
  const namespace = env.RUNTIME_NAMESPACE?.trim();
  if (!namespace)
    return refuse(
      "--watch-all-namespaces=false needs the RUNTIME_NAMESPACE environment variable (the namespace to watch)",
    );
  return parsed(namespace);
}

/** A flag that holds a number >= 0. */
function nonNegative(flags: Flags, name: FlagName): Parsed<number> {
  const text = flags.get(name);
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) return invalid(name, text, "expected a number >= 0");
  return parsed(value);
}

function deliveryLimits(flags: Flags): Parsed<DeliveryLimits> {
  const validRate = nonNegative(flags, "receiver-rate-limit");
  if (!validRate.ok) return validRate;
  const validBurst = nonNegative(flags, "receiver-rate-burst");
  if (!validBurst.ok) return validBurst;
  const failedRate = nonNegative(flags, "receiver-failure-rate-limit");
  if (!failedRate.ok) return failedRate;
  const failedBurst = nonNegative(flags, "receiver-failure-burst");
  if (!failedBurst.ok) return failedBurst;
  const maxConcurrent = nonNegative(flags, "max-concurrent-deliveries");
  if (!maxConcurrent.ok) return maxConcurrent;
  if (maxConcurrent.value < 1) return refuse("--max-concurrent-deliveries must be at least 1");
  // A rate without a burst of at least one would refuse every delivery.
  if (validRate.value > 0 && validBurst.value < 1)
    return refuse("--receiver-rate-burst must be at least 1 when --receiver-rate-limit is set");
  if (failedRate.value > 0 && failedBurst.value < 1)
    return refuse("--receiver-failure-burst must be at least 1 when --receiver-failure-rate-limit is set");
  const replayWindow = flags.get("replay-window");
  const replayWindowMs = replayWindow === "0" ? 0 : parseDuration(replayWindow);
  if (replayWindowMs === undefined)
    return invalid("replay-window", replayWindow, 'expected a duration such as "10m" or "0s"');
  return parsed({
    validRate: validRate.value,
    validBurst: validBurst.value,
    failedRate: failedRate.value,
    failedBurst: failedBurst.value,
    maxConcurrent: maxConcurrent.value,
    replayWindowMs,
  });
}

/** A leader election duration flag: a Go duration above zero. */
function leaderDuration(flags: Flags, name: FlagName): Parsed<number> {
  const ms = parseDuration(flags.get(name));
  return ms === undefined || ms <= 0 ? invalid(name, flags.get(name), 'expected a duration such as "30s"') : parsed(ms);
}

/** Undefined unless --enable-leader-election; then the Lease's namespace and client-go's three durations. */
function leaderElectionConfig(
  flags: Flags,
  env: Readonly<Record<string, string | undefined>>,
): Parsed<LeaderElectionConfig | undefined> {
  if (!flags.bool("enable-leader-election")) return parsed(undefined);
  const lease = leaderDuration(flags, "leader-election-lease-duration");
  if (!lease.ok) return lease;
  const renew = leaderDuration(flags, "leader-election-renew-deadline");
  if (!renew.ok) return renew;
  const retry = leaderDuration(flags, "leader-election-retry-period");
  if (!retry.ok) return retry;
  if (!(lease.value > renew.value && renew.value > retry.value))
    return refuse("leader election needs lease duration > renew deadline > retry period");
  const namespace = env.RUNTIME_NAMESPACE?.trim();
  if (!namespace)
    return refuse(
      "--enable-leader-election needs the RUNTIME_NAMESPACE environment variable (the namespace of the Lease)",
    );
  return parsed({
    namespace,
    leaseDurationMs: lease.value,
    renewDeadlineMs: renew.value,
    retryPeriodMs: retry.value,
    releaseOnCancel: flags.bool("leader-election-release-on-cancel"),
  });
}
