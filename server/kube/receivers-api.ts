/**
 * @module server/kube/receivers-api
 * Flux's Receivers: list+watch, and the two writes fluxhook makes to one (its finalizers, its
 * status), each as fluxhook's field manager.
 */
import { PatchStrategy } from "@kubernetes/client-node";
import { RECEIVER_GROUP, RECEIVER_PLURAL, RECEIVER_VERSION, type ObjectKey } from "../api/receiver";
import { FIELD_MANAGER, type Connection } from "./connection";
import { failure } from "./failure";
import type { KubePort } from "./port";

const group = RECEIVER_GROUP;
const version = RECEIVER_VERSION;
const plural = RECEIVER_PLURAL;

/** The request of a PATCH of one Receiver (or its status), as fluxhook's field manager. */
const receiverPatch = (key: ObjectKey, body: unknown) => ({
  group,
  version,
  plural,
  namespace: key.namespace,
  name: key.name,
  body,
  fieldManager: FIELD_MANAGER,
});

/** The patched object's resourceVersion ("" when the answer has none). */
function resourceVersionOf(patched: unknown): string {
  const resourceVersion = (patched as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata
    ?.resourceVersion;
  return typeof resourceVersion === "string" ? resourceVersion : "";
}

export function receiversApi(
  connection: Connection,
): Pick<KubePort, "watchReceivers" | "patchReceiverFinalizers" | "patchReceiverStatus"> {
  const { custom, call } = connection;
  return {
    watchReceivers(namespace, sink) {
      const base = `/apis/${group}/${version}`;
      return connection.reflect(
        namespace === undefined
          ? {
              name: "receivers",
              path: `${base}/${plural}`,
              list: (page) => custom.listClusterCustomObject({ group, version, plural, ...page }, call()),
            }
          : {
              name: "receivers",
              path: `${base}/namespaces/${namespace}/${plural}`,
              list: (page) => custom.listNamespacedCustomObject({ group, version, namespace, plural, ...page }, call()),
            },
        sink,
      );
    },

    async patchReceiverFinalizers(key, current, wanted, resourceVersion) {
      // An absent list cannot be tested (RFC 6902): the version decided on is, so a list another
      // controller added meanwhile is never replaced by ours.
      const body =
        current.length === 0
          ? [
              { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
              { op: "add", path: "/metadata/finalizers", value: wanted },
            ]
          : [
              { op: "test", path: "/metadata/finalizers", value: current },
              { op: "replace", path: "/metadata/finalizers", value: wanted },
            ];
      try {
        const patched = await custom.patchNamespacedCustomObject(
          receiverPatch(key, body),
          call({ contentType: PatchStrategy.JsonPatch }),
        );
        return { ok: true, value: resourceVersionOf(patched) };
      } catch (err) {
        return failure(err, `Receiver ${key.namespace}/${key.name} finalizers`);
      }
    },

    async patchReceiverStatus(key, status) {
      // A merge patch keeps what it leaves out; a status without a webhookPath has none (Flux's
      // field is omitempty), so one written before is removed.
      const body = { status: { ...status, webhookPath: status.webhookPath || null } };
      try {
        const patched = await custom.patchNamespacedCustomObjectStatus(
          receiverPatch(key, body),
          call({ contentType: PatchStrategy.MergePatch }),
        );
        return { ok: true, value: resourceVersionOf(patched) };
      } catch (err) {
        return failure(err, `Receiver ${key.namespace}/${key.name} status`);
      }
    },
  };
}
