/**
 * @module server/targets/dry-run
 * Target access for `--dry-run`: reads go to the cluster when there is one (so `*` selectors and
 * filters see real objects), writes are only logged ("would annotate GitRepository ns/name").
 */
import type { KubePort, KubeResult, PartialObject } from "../kube/port";
import type { Logger } from "../runtime/log";

export function dryRunTargets(
  log: Logger,
  cluster: KubePort | undefined,
): Pick<KubePort, "annotateObject" | "listObjects" | "getObject"> {
  return {
    async annotateObject(ref, annotations) {
      log.info(`would annotate ${ref.kind} ${ref.namespace}/${ref.name}`, {
        dryRun: true,
        apiVersion: ref.apiVersion,
        annotations,
      });
      return { ok: true, value: undefined };
    },
    async listObjects(apiVersion, kind, namespace, matchLabels, name): Promise<KubeResult<PartialObject[]>> {
      if (cluster) return cluster.listObjects(apiVersion, kind, namespace, matchLabels, name);
      return {
        ok: false,
        reason: `${kind} in ${namespace ?? "every namespace"}: a label selector needs a cluster to list objects (dry run without a cluster)`,
      };
    },
    async getObject(ref) {
      if (cluster) return cluster.getObject(ref);
      // Without a cluster the object is assumed to exist, with no labels or annotations.
      return {
        ok: true,
        value: { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
      };
    },
  };
}
