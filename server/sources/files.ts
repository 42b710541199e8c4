/**
 * @module server/sources/files
 * Receivers and Secrets read from YAML files: the same multi-document manifests a user would
 * `kubectl apply` (Secrets with base64 `data` or plain `stringData`, `List` objects too). They feed
 * the reconciler through the same caches as the cluster watches, so a file-defined Receiver behaves
 * exactly like one in a cluster. Files are polled for changes. A file that fails to parse keeps
 * its last good content; a YAML error, and a Receiver the API server or Flux would refuse, are
 * logged at error with the line they are on (read with the `yaml` package, which keeps each node's
 * position).
 */
import { statSync, readFileSync } from "node:fs";
import { type Document, isMap, isNode, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import { replaceAll, type Informer, type WatchSink } from "../kube/port";
import type { Logger } from "../runtime/log";
import { RECEIVER_API_VERSION, type ReceiverSpec, readReceiver } from "../api/receiver";
import { DEFAULT_TUNING } from "../limits";
import type { ReceiverIndex } from "../receivers/index";
import { prepareReceiver } from "../receivers/prepare";
import { type DecisionInputs, optInProblem } from "../receivers/decide";
import { ROUTE_BY_ANNOTATION } from "../api/annotations";
import { ReceiverCache } from "../receivers/receiver-cache";
import { Reconciler } from "../receivers/reconciler";
import { SecretCache } from "../receivers/secret-cache";
import type { ReceiverSource } from "./source";

/** How often files are checked for changes: quick enough for an edit-and-curl loop, cheap as a stat. */
export const FILE_POLL_INTERVAL_MS = 500;

/** Namespace of objects that name none, as `kubectl apply` does with the default context. */
const DEFAULT_NAMESPACE = "default";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export interface ManifestObjects {
  receivers: Json[];
  secrets: Json[];
}

/** Something in a receivers file that would not be served as written, at its 1-based line. */
export interface ManifestProblem {
  readonly line: number;
  /** `namespace/name` of the Receiver, when the problem is one. */
  readonly receiver?: string;
  readonly message: string;
}

/** A receivers file that is not YAML: nothing of it is read. */
export class ManifestSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

type Path = readonly (string | number)[];

/**
 * Reads a multi-document manifest into its Receivers and Secrets (other kinds are ignored), and
 * the problems of its Receivers: what the CRD's schema or Flux's controller would refuse (their
 * messages, which name the field), a CEL expression that does not compile, an apiVersion fluxhook
 * does not serve, an opt-in of fluxhook's it cannot serve from a file; and the objects of other
 * kinds, which it leaves out. Throws ManifestSyntaxError for a YAML error.
 */
export function readManifests(text: string, mode: ManifestMode = {}): Collected {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  const out: Collected = { receivers: [], secrets: [], problems: [], leftOut: [] };
  for (const doc of Array.isArray(docs) ? docs : []) {
    const error = doc.errors[0];
    if (error) throw new ManifestSyntaxError(error.linePos?.[0].line ?? 1, yamlErrorText(error.message));
    collect(doc, lines, doc.toJS(), [], out, mode);
  }
  return out;
}

type Collected = ManifestObjects & { problems: ManifestProblem[]; leftOut: ManifestProblem[] };

/** The flags fluxhook's own opt-ins are checked with (decide.ts optInProblem). */
type ManifestMode = Pick<DecisionInputs, "noCrossNamespaceRefs" | "withoutSources">;

/**
 * The `yaml` package's message without what the log line already says: its first line ends with
 * the position (` at line 43, column 1:`), which ManifestSyntaxError gives as `line 43`.
 */
function yamlErrorText(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function collect(
  doc: Document,
  lines: LineCounter,
  value: unknown,
  at: Path,
  into: Collected,
  mode: ManifestMode,
): void {
  if (!isObject(value)) return;
  if (value.kind === "List" && Array.isArray(value.items)) {
    for (const [i, item] of value.items.entries()) collect(doc, lines, item, [...at, "items", i], into, mode);
    return;
  }
  const meta = isObject(value.metadata) ? value.metadata : {};
  const object = { ...value, metadata: { generation: 1, ...meta, namespace: meta.namespace ?? DEFAULT_NAMESPACE } };
  const lineOf = (path: Path) => lineOfNode(doc, lines, [...at, ...path]);
  if (value.kind === "Receiver") {
    if (value.apiVersion !== RECEIVER_API_VERSION) {
      into.problems.push({
        line: lineOf(["apiVersion"]),
        message: `apiVersion ${JSON.stringify(value.apiVersion)}: fluxhook reads ${RECEIVER_API_VERSION} Receivers only; this one is left out`,
      });
      return;
    }
    into.receivers.push(object);
    const receiver = readReceiver(object);
    if (!receiver) {
      into.problems.push({ line: lineOf(["metadata"]), message: "a Receiver needs metadata.name" });
      return;
    }
    const name = `${receiver.key.namespace}/${receiver.key.name}`;
    const problem =
      receiver.invalid ?? (receiver.spec && (preparationProblem(receiver.spec) ?? optInProblem(receiver.spec, mode)));
    if (problem) into.problems.push({ line: lineOf(fieldOf(problem)), receiver: name, message: problem });
  } else if (value.apiVersion === "v1" && value.kind === "Secret") into.secrets.push(object);
  else
    into.leftOut.push({
      line: lineOf(["kind"]),
      message: `${typeof value.kind === "string" ? value.kind : "an object without a kind"}: a receivers file serves Receivers and their Secrets; this one is left out`,
    });
}

/** Where in a Receiver a problem's message points: its route-by annotation, or a field of its spec. */
function fieldOf(problem: string): Path {
  return problem.startsWith(`annotation ${ROUTE_BY_ANNOTATION}`)
    ? ["metadata", "annotations", ROUTE_BY_ANNOTATION]
    : ["spec", ...specFieldOf(problem)];
}

function preparationProblem(spec: ReceiverSpec): string | undefined {
  const prepared = prepareReceiver(spec);
  return prepared.ok ? undefined : prepared.message;
}

/**
 * The spec field a problem's message names (readReceiver's and prepareReceiver's words, which are
 * Flux's: `receiver type "x" is not supported`, `resources[0].kind is required`, `invalid filter
 * expression for resources[1] (…)`, `oidcProviders[0] (…): validations[2]: …`), as a path under
 * `spec`; empty when it names none.
 */
export function specFieldOf(message: string): Path {
  if (/^receiver type |^spec\.type |^generic-oidc receiver requires/.test(message)) return ["type"];
  const filter = /^invalid filter expression for resources\[(\d+)\]/.exec(message);
  if (filter) return ["resources", Number(filter[1]), "filter"];
  const named =
    /\b(events|resources|oidcProviders|secretRef|resourceFilter)(?:\[(\d+)\])?((?:\.\w+(?:\[\d+\])?)*)/.exec(message);
  if (!named) return [];
  const path: (string | number)[] = [named[1]!];
  if (named[2] !== undefined) path.push(Number(named[2]));
  for (const part of named[3]!.split(".").filter((p) => p !== "")) {
    const [, key, index] = /^(\w+)(?:\[(\d+)\])?$/.exec(part)!;
    path.push(key!);
    if (index !== undefined) path.push(Number(index));
  }
  const inner = /\): (validations|variables)\[(\d+)\]/.exec(message);
  if (named[1] === "oidcProviders" && inner) path.push(inner[1]!, Number(inner[2]));
  return path;
}

/**
 * The line of `path` in the document: its key's line (or its item's, in a list); for a field that
 * is missing, the line of the deepest part of the path that is there.
 */
function lineOfNode(doc: Document, lines: LineCounter, path: Path): number {
  for (let n = path.length; n > 0; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
    const last = path[n - 1];
    const at = isMap(parent)
      ? parent.items.find((p) => isScalar(p.key) && p.key.value === last)?.key
      : isSeq(parent) && typeof last === "number"
        ? parent.items[last]
        : undefined;
    if (isNode(at) && at.range) return lines.linePos(at.range[0]).line;
  }
  return isNode(doc.contents) && doc.contents.range ? lines.linePos(doc.contents.range[0]).line : 1;
}

export interface FilesOptions {
  readonly paths: readonly string[];
  readonly index: ReceiverIndex;
  readonly log: Logger;
  /** Called after a changed file was read and its Receivers decided (the index is up to date). */
  readonly onReload?: () => void;
  /** --no-cross-namespace-refs: a Receiver naming every namespace (`namespace: "*"`) cannot serve. */
  readonly noCrossNamespaceRefs?: boolean;
  /** No cluster to annotate through: a Receiver that routes by repository cannot serve. */
  readonly withoutSources?: boolean;
}

/**
 * Receivers and Secrets read from YAML files, polled for changes. They are not cluster objects:
 * there is no status to write, no Event, no election, and nothing to read from an API server.
 */
export function startFiles(options: FilesOptions): ReceiverSource {
  const { paths, index, log, onReload } = options;
  const secrets = new SecretCache({ log, backoff: DEFAULT_TUNING.secretReadBackoff });
  const receivers = new ReceiverCache(secrets);
  const reconciler = new Reconciler({
    receivers,
    secrets,
    index,
    withoutStatus: true,
    log,
    prepare: prepareReceiver,
    noCrossNamespaceRefs: options.noCrossNamespaceRefs,
    withoutSources: options.withoutSources,
  });
  const files = startFileSource({
    paths,
    mode: { noCrossNamespaceRefs: options.noCrossNamespaceRefs, withoutSources: options.withoutSources },
    receivers: receivers.sink,
    secrets: secrets.sink,
    log,
    onPublished: onReload,
  });
  return {
    synced: () => reconciler.synced,
    counts: () => reconciler.counts(),
    watches: () => ({ files: "loaded" }),
    unread: () => 0,
    isLeader: () => true,
    recordEvent: () => {},
    statusUpdates: false,
    describe: paths,
    async stop() {
      files.stop();
      secrets.stop();
      reconciler.stop();
    },
  };
}

/** What identifies a version of a file: its modification time, size and inode ("missing" when none). */
function stampOf(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
  } catch {
    return "missing";
  }
}

/**
 * A receivers file's Receivers and Secrets, each problem logged as an editor finds it (file:line),
 * then the file's summary; undefined, with the error logged, when it cannot be read or parsed.
 */
function readReceiversFile(path: string, log: Logger, mode: ManifestMode = {}): ManifestObjects | undefined {
  let read: ReturnType<typeof readManifests>;
  try {
    read = readManifests(readFileSync(path, "utf8"), mode);
  } catch (err) {
    log.error("cannot read receivers file; keeping its previous content", {
      file: path,
      ...(err instanceof ManifestSyntaxError ? { line: err.line } : {}),
      error: err instanceof Error ? err.message : String(err),
    });
    return undefined;
  }
  for (const problem of read.problems)
    log.error(`${path}:${problem.line}: ${problem.message}`, {
      file: path,
      line: problem.line,
      ...(problem.receiver ? { receiver: problem.receiver } : {}),
    });
  for (const object of read.leftOut)
    log.info(`${path}:${object.line}: ${object.message}`, { file: path, line: object.line });
  const summary = { file: path, receivers: read.receivers.length, secrets: read.secrets.length };
  if (read.problems.length === 0) log.info("receivers file loaded", summary);
  else log.error("receivers file loaded with errors", { ...summary, errors: read.problems.length });
  return { receivers: read.receivers, secrets: read.secrets };
}

export interface FileSourceOptions {
  readonly paths: readonly string[];
  readonly receivers: WatchSink;
  readonly secrets: WatchSink;
  readonly log: Logger;
  readonly pollIntervalMs?: number;
  /** What the Receivers are decided with, for the problems they are logged with. */
  readonly mode?: ManifestMode;
  /** Called after a poll that found a change has handed every file's objects to the sinks. */
  readonly onPublished?: () => void;
}

/** Polls the files and hands their Receivers and Secrets to the sinks, as a watch would. */
export function startFileSource(options: FileSourceOptions): Informer {
  const state = new Map<string, { stamp: string; objects: ManifestObjects }>();
  let synced = false;

  const load = (path: string, stamp: string): boolean => {
    const previous = state.get(path);
    if (previous?.stamp === stamp) return false;
    const read = readReceiversFile(path, options.log, options.mode);
    // Unreadable: keep serving what the file said before; remember the stamp so the error is logged once.
    state.set(path, { stamp, objects: read ?? previous?.objects ?? { receivers: [], secrets: [] } });
    return true;
  };

  const publish = () => {
    const all = [...state.values()];
    // Secrets first, so Receivers find their tokens in the same pass.
    replaceAll(
      options.secrets,
      all.flatMap((s) => s.objects.secrets),
    );
    replaceAll(
      options.receivers,
      all.flatMap((s) => s.objects.receivers),
    );
    synced = true;
    options.onPublished?.();
  };

  const poll = () => {
    let changed = false;
    for (const path of options.paths) changed = load(path, stampOf(path)) || changed;
    if (changed) publish();
  };

  poll();
  if (!synced) publish();
  const timer = setInterval(poll, options.pollIntervalMs ?? FILE_POLL_INTERVAL_MS);
  return {
    get synced() {
      return synced;
    },
    connected: true,
    stop() {
      clearInterval(timer);
    },
  };
}
