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

export type LogLevel = "debug" | "info" | "error";
export type LogEncoding = "json" | "console";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly receiverAddr: ListenAddress;
  readonly healthAddr: ListenAddress;
  readonly metricsAddr: ListenAddress;
  /** Undefined means every namespace. */
  readonly watchNamespace: string | undefined;
  readonly noCrossNamespaceRefs: boolean;
  readonly statusUpdates: boolean;
  readonly logLevel: LogLevel;
  readonly logEncoding: LogEncoding;
  /** Path of a kubeconfig; undefined means KUBECONFIG, else in-cluster. */
  readonly kubeconfig: string | undefined;
}

export type ConfigResult = { ok: true; config: ServerConfig } | { ok: false; error: string } | { ok: "help"; text: string };

type FlagKind = "string" | "bool";
interface FlagSpec {
  readonly kind: FlagKind;
  readonly usage: string;
  readonly default: string;
}

const FLAGS = {
  receiverAddr: { kind: "string", default: ":9292", usage: "The address the webhook receiver server binds to." },
  "health-addr": { kind: "string", default: ":9440", usage: "The address the health endpoints (/healthz, /readyz) bind to." },
  "metrics-addr": { kind: "string", default: ":8080", usage: "The address the metric endpoint binds to." },
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
  "log-level": { kind: "string", default: "info", usage: "Log verbosity: debug, info or error." },
  "log-encoding": { kind: "string", default: "json", usage: "Log encoding: json or console." },
  kubeconfig: { kind: "string", default: "", usage: "Path to a kubeconfig; defaults to KUBECONFIG, else in-cluster." },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

/**
 * Flags of Flux's notification-controller that do not apply to fluxhook (event server, leader
 * election of the reconcilers, worker tuning). Accepted so a copied Deployment keeps starting.
 */
export const IGNORED_FLUX_FLAGS: ReadonlyMap<string, FlagKind> = new Map([
  ["events-addr", "string"],
  ["enable-leader-election", "bool"],
  ["leader-election-lease-duration", "string"],
  ["leader-election-renew-deadline", "string"],
  ["leader-election-retry-period", "string"],
  ["leader-election-release-on-cancel", "bool"],
  ["concurrent", "string"],
  ["requeue-dependency", "string"],
  ["rate-limit-interval", "string"],
  ["min-retry-delay", "string"],
  ["max-retry-delay", "string"],
  ["feature-gates", "string"],
  ["watch-label-selector", "string"],
  ["watch-configs-label-selector", "string"],
  ["export-http-path-metrics", "bool"],
  ["token-cache-max-size", "string"],
  ["token-cache-max-duration", "string"],
  ["default-service-account", "string"],
]);

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "error"];
const LOG_ENCODINGS: readonly LogEncoding[] = ["json", "console"];
const BOOL_VALUES: Record<string, boolean> = { true: true, "1": true, t: true, T: true, TRUE: true, True: true, false: false, "0": false, f: false, F: false, FALSE: false, False: false };

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
  const lines = ["Usage: fluxhook [flags]", "", "Flags:"];
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    lines.push(`  --${name}${spec.kind === "string" ? " string" : ""}`, `        ${spec.usage} (default ${JSON.stringify(spec.default)})`);
  }
  return lines.join("\n");
}

/** Parses argv (without the runtime and script) and the environment into a ServerConfig. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const values = new Map<FlagName, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help" || arg === "-help") return { ok: "help", text: usage() };
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      return { ok: false, error: `unexpected argument ${JSON.stringify(arg)}: fluxhook takes only flags` };
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    const kind: FlagKind | undefined = name in FLAGS ? FLAGS[name as FlagName].kind : IGNORED_FLUX_FLAGS.get(name);
    if (kind === undefined) return { ok: false, error: `unknown flag --${name}\n\n${usage()}` };
    if (value === undefined) {
      if (kind === "bool") value = "true";
      else {
        const next = argv[i + 1];
        if (next === undefined) return { ok: false, error: `flag --${name} needs a value` };
        value = next;
        i++;
      }
    }
    if (kind === "bool" && !(value in BOOL_VALUES)) {
      return { ok: false, error: `invalid value ${JSON.stringify(value)} for flag --${name}: expected true or false` };
    }
    if (name in FLAGS) values.set(name as FlagName, value);
  }

  const get = (name: FlagName) => values.get(name) ?? FLAGS[name].default;
  const bool = (name: FlagName) => BOOL_VALUES[get(name)] === true;

  const addresses: Record<"receiverAddr" | "health-addr" | "metrics-addr", ListenAddress> = {} as never;
  for (const name of ["receiverAddr", "health-addr", "metrics-addr"] as const) {
    const parsed = parseListenAddress(get(name));
    if (!parsed) return { ok: false, error: `invalid value ${JSON.stringify(get(name))} for flag --${name}: expected host:port, e.g. ":9292"` };
    addresses[name] = parsed;
  }

  const logLevel = get("log-level");
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    return { ok: false, error: `invalid value ${JSON.stringify(logLevel)} for flag --log-level: expected one of ${LOG_LEVELS.join(", ")}` };
  }
  const logEncoding = get("log-encoding");
  if (!(LOG_ENCODINGS as readonly string[]).includes(logEncoding)) {
    return { ok: false, error: `invalid value ${JSON.stringify(logEncoding)} for flag --log-encoding: expected one of ${LOG_ENCODINGS.join(", ")}` };
  }

  let watchNamespace: string | undefined;
  if (!bool("watch-all-namespaces")) {
    watchNamespace = env.RUNTIME_NAMESPACE?.trim();
    if (!watchNamespace) {
      return { ok: false, error: "--watch-all-namespaces=false needs the RUNTIME_NAMESPACE environment variable (the namespace to watch)" };
    }
  }

  return {
    ok: true,
    config: {
      receiverAddr: addresses.receiverAddr,
      healthAddr: addresses["health-addr"],
      metricsAddr: addresses["metrics-addr"],
      watchNamespace,
      noCrossNamespaceRefs: bool("no-cross-namespace-refs"),
      statusUpdates: bool("status-updates"),
      logLevel: logLevel as LogLevel,
      logEncoding: logEncoding as LogEncoding,
      kubeconfig: get("kubeconfig") || undefined,
    },
  };
}
