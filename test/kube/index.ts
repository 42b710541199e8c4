/**
 * @module kube
 * An in-memory Kubernetes API server for tests, speaking the real REST protocol over HTTP so the
 * code under test talks to it through `@kubernetes/client-node` exactly as it would to a cluster.
 *
 * @example
 * await using api = await startKubeApiServer();
 * api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "token", namespace: "default" }, data: {} });
 * const core = api.kubeConfig().makeApiClient(CoreV1Api);
 * await core.readNamespacedSecret({ name: "token", namespace: "default" });
 */
export { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from "./server";
export type { KubeObject, ObjectMeta } from "./types";
export { BUILTIN_KINDS, KindRegistry, compareKubeVersions, type KindInfo, type KindSpec } from "./registry";
export type { StoreApi, StoreListOptions, StorePatchOptions } from "./store-api";
export type { DeletePreconditions, Subresource } from "./store";
export { FaultInjector, type Fault, type FaultResponse, type FaultSpec, type FaultStatus } from "./faults";
export type { FaultOutcome, RequestFilter, RequestRecord } from "./request-log";
export { KubeApiError, REASON_BY_CODE, type Status, type StatusDetails, type StatusReason } from "./errors";
export { KUBECONFIG_NAME, kubeconfigYaml, makeKubeConfig, writeKubeconfigFile } from "./kubeconfig";
export { applyJsonPatch, applyMergePatch, JsonPatchError, type JsonPatchOperation } from "./patch";
export {
  parseFieldSelector,
  parseLabelSelector,
  type FieldRequirement,
  type LabelRequirement,
  type Selector,
} from "./selectors";
export {
  collectWatch,
  mergePatch,
  patchAs,
  requestTimeout,
  type CollectedWatch,
  type SeenEvent,
} from "./client-helpers";
export type { EventType } from "./watch";
