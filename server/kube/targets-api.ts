/**
 * @module server/kube/targets-api
 * The objects a delivery reaches: a target by name, targets by labels, the sources routing watches,
 * and the annotation that asks Flux to reconcile a target.
 */
import { PatchStrategy } from "@kubernetes/client-node";
import { backoffDelayMs } from "../../shared";
import { FIELD_MANAGER, METADATA_LIST_ACCEPT, groupVersion, type Connection } from "./connection";
import { failure, withRetries } from "./failure";
import { replaceAll, type Informer, type KubePort, type PartialObject, type TargetRef, type WatchSink } from "./port";

const objectName = (ref: TargetRef) => `${ref.kind} ${ref.namespace}/${ref.name}`;

function labelSelector(matchLabels: Readonly<Record<string, string>>): string {
  return Object.entries(matchLabels)
    .map(([label, value]) => `${label}=${value}`)
    .join(",");
}

function partial(
  obj: { apiVersion?: string; kind?: string; metadata?: unknown },
  fallback: { apiVersion: string; kind: string },
): PartialObject {
  // Flux hands CEL a PartialObjectMetadata: apiVersion, kind and metadata only; managedFields are noise.
  const { managedFields: _managed, ...metadata } = (obj.metadata ?? {}) as Record<string, unknown>;
  return {
    apiVersion: obj.apiVersion ?? fallback.apiVersion,
    kind: obj.kind ?? fallback.kind,
    metadata: metadata as PartialObject["metadata"],
  };
}

/** An item of a metadata list (kind PartialObjectMetadata) as the target's own kind, as CEL's `res` names it. */
const partialOf = (item: { metadata?: unknown }, target: { apiVersion: string; kind: string }) =>
  partial({ metadata: item.metadata }, target);

export function targetsApi(
  connection: Connection,
): Pick<KubePort, "getObject" | "listObjects" | "watchObjects" | "annotateObject"> {
  const { custom, objects, tuning } = connection;
  return {
    async getObject(ref) {
      try {
        return { ok: true, value: partial(await connection.readObject(ref), ref) };
      } catch (err) {
        return failure(err, objectName(ref));
      }
    },

    // Metadata only, as Flux lists targets: a list of 1,000 HelmReleases of 20 KB reads 19.8 MiB in
    // full, a few hundred KiB as PartialObjectMetadata.
    async listObjects(apiVersion, kind, namespace, matchLabels, name) {
      const where = namespace === undefined ? "every namespace" : namespace;
      try {
        const resource = await objects.discover(apiVersion, kind);
        if (!resource) return { ok: false, reason: `${kind} in ${where}: ${apiVersion} ${kind} is not served` };
        const selectors = {
          ...groupVersion(apiVersion),
          plural: resource.name,
          ...(Object.keys(matchLabels).length > 0 ? { labelSelector: labelSelector(matchLabels) } : {}),
          ...(name !== undefined ? { fieldSelector: `metadata.name=${name}` } : {}),
          limit: tuning.listPageSize,
        };
        const metadataOnly = connection.call({ accept: METADATA_LIST_ACCEPT });
        const found: PartialObject[] = [];
        let token: string | undefined;
        do {
          const page = { ...selectors, ...(token ? { _continue: token } : {}) };
          const list = (await (namespace === undefined
            ? custom.listClusterCustomObject(page, metadataOnly)
            : custom.listNamespacedCustomObject({ ...page, namespace }, metadataOnly))) as {
            items?: { metadata?: unknown }[] | null;
            metadata?: { continue?: string };
          };
          // kube-apiserver sends an empty PartialObjectMetadataList's items as null.
          for (const item of list.items ?? []) found.push(partialOf(item, { apiVersion, kind }));
          token = list.metadata?.continue || undefined;
        } while (token);
        return { ok: true, value: found };
      } catch (err) {
        return failure(err, `${kind} in ${where}`);
      }
    },

    watchObjects: (apiVersion, kind, sink) => watchServedKind(connection, apiVersion, kind, sink),

    async annotateObject(ref, annotations) {
      const patch = () =>
        objects.patch(
          {
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            metadata: { name: ref.name, namespace: ref.namespace, annotations: { ...annotations } },
          },
          undefined,
          undefined,
          FIELD_MANAGER,
          undefined,
          PatchStrategy.MergePatch,
        );
      const result = await withRetries(objectName(ref), patch, { budgetMs: tuning.patchBudgetMs });
      return result.ok ? { ok: true, value: undefined } : result;
    },
  };
}

/**
 * list+watch the objects of one kind in every namespace, discovery first: a kind whose controller
 * is not installed (no image-reflector-controller) is an empty set, asked about again now and then,
 * not a list that fails and is logged forever.
 */
function watchServedKind(connection: Connection, apiVersion: string, kind: string, sink: WatchSink): Informer {
  const { log, tuning } = connection;
  const { group, version } = groupVersion(apiVersion);
  let informer: Informer | undefined;
  let unserved = false;
  let stopped = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const discoverAfter = (delayMs: number) => {
    if (!stopped) timer = setTimeout(discover, delayMs);
  };
  const discover = async () => {
    let plural: string | undefined;
    try {
      plural = (await connection.objects.discover(apiVersion, kind))?.name;
    } catch (err) {
      const result = failure(err, `discovery of ${apiVersion} ${kind}`);
      if (result.status !== 404) {
        log.error(`${kind}: discovery failed, asking again`, { error: result.reason });
        discoverAfter(backoffDelayMs(tuning.watchBackoff, ++failures));
        return;
      }
    }
    if (stopped) return;
    failures = 0;
    if (plural === undefined) {
      if (!unserved) {
        log.info(`${kind}: ${apiVersion} is not served; none are routed to until it is`);
        replaceAll(sink, []);
        unserved = true;
      }
      discoverAfter(tuning.unservedKindDiscoveryMs);
      return;
    }
    informer = connection.reflect(
      {
        name: plural,
        path: `/apis/${apiVersion}/${plural}`,
        list: (page) =>
          connection.custom.listClusterCustomObject({ group, version, plural, ...page }, connection.call()),
      },
      sink,
    );
  };
  void discover();
  return {
    get synced() {
      return informer ? informer.synced : unserved;
    },
    get connected() {
      return informer ? informer.connected : unserved;
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      informer?.stop();
    },
  };
}
