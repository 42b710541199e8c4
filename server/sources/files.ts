/**
 * @module server/sources/files
 * Receivers and Secrets read from YAML files: the same multi-document manifests a user would
 * `kubectl apply` (Secrets with base64 `data` or plain `stringData`, `List` objects too). They feed
 * the reconciler through the same caches as the cluster watches, so a file-defined Receiver behaves
 * exactly like one in a cluster. Files are polled for changes; a file that fails to parse keeps
 * its last good content and the error is logged.
 */
import { statSync, readFileSync } from "node:fs";
import { replaceAll, type Informer, type WatchSink } from "../kube/port";
import type { Logger } from "../runtime/log";
import { RECEIVER_API_VERSION } from "../api/receiver";
import { DEFAULT_TUNING } from "../limits";
import type { ReceiverIndex } from "../receivers/index";
import { prepareReceiver } from "../receivers/prepare";
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

/** Splits parsed YAML documents into Receivers and Secrets; other kinds are ignored. */
export function collectManifests(
  docs: unknown[],
  into: ManifestObjects = { receivers: [], secrets: [] },
): ManifestObjects {
  for (const doc of docs) {
    if (!isObject(doc)) continue;
    if (doc.kind === "List" && Array.isArray(doc.items)) {
      collectManifests(doc.items, into);
      continue;
    }
    const meta = isObject(doc.metadata) ? doc.metadata : {};
    const withNamespace = {
      ...doc,
      metadata: { generation: 1, ...meta, namespace: meta.namespace ?? DEFAULT_NAMESPACE },
    };
    if (doc.apiVersion === RECEIVER_API_VERSION && doc.kind === "Receiver") into.receivers.push(withNamespace);
    else if (doc.apiVersion === "v1" && doc.kind === "Secret") into.secrets.push(withNamespace);
  }
  return into;
}

export function parseManifests(text: string): unknown[] {
  const parsed = Bun.YAML.parse(text);
  return Array.isArray(parsed) ? parsed : [parsed];
}

export interface FilesOptions {
  readonly paths: readonly string[];
  readonly index: ReceiverIndex;
  readonly log: Logger;
}

/**
 * Receivers and Secrets read from YAML files, polled for changes. They are not cluster objects:
 * there is no status to write, no Event, no election, and nothing to read from an API server.
 */
export function startFiles(options: FilesOptions): ReceiverSource {
  const { paths, index, log } = options;
  const secrets = new SecretCache({ log, backoff: DEFAULT_TUNING.secretReadBackoff });
  const receivers = new ReceiverCache(secrets);
  const reconciler = new Reconciler({ receivers, secrets, index, withoutStatus: true, log, prepare: prepareReceiver });
  const files = startFileSource({ paths, receivers: receivers.sink, secrets: secrets.sink, log });
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

export interface FileSourceOptions {
  readonly paths: readonly string[];
  readonly receivers: WatchSink;
  readonly secrets: WatchSink;
  readonly log: Logger;
  readonly pollIntervalMs?: number;
}

/** Polls the files and hands their Receivers and Secrets to the sinks, as a watch would. */
export function startFileSource(options: FileSourceOptions): Informer {
  const state = new Map<string, { stamp: string; objects: ManifestObjects }>();
  let synced = false;

  const stampOf = (path: string) => {
    try {
      const s = statSync(path);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return "missing";
    }
  };

  const load = (path: string, stamp: string): boolean => {
    const previous = state.get(path);
    if (previous?.stamp === stamp) return false;
    try {
      const objects = collectManifests(parseManifests(readFileSync(path, "utf8")));
      state.set(path, { stamp, objects });
      options.log.info("receivers file loaded", {
        file: path,
        receivers: objects.receivers.length,
        secrets: objects.secrets.length,
      });
    } catch (err) {
      // Keep serving what the file said before; remember the stamp so the error is logged once.
      state.set(path, { stamp, objects: previous?.objects ?? { receivers: [], secrets: [] } });
      options.log.error("cannot read receivers file; keeping its previous content", {
        file: path,
        error: err instanceof Error ? err.message : String(err),
      });
    }
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
