/**
 * @module server/kube/discovery-api
 * What the API server is and serves: its version (is it reachable?) and whether it serves
 * Receivers (is Flux's CRD installed?).
 */
import { VersionApi } from "@kubernetes/client-node";
import { RECEIVER_GROUP, RECEIVER_PLURAL, RECEIVER_VERSION } from "../api/receiver";
import type { Connection } from "./connection";
import { failure } from "./failure";
import type { KubePort } from "./port";

export function discoveryApi(connection: Connection): Pick<KubePort, "version" | "servesReceivers"> {
  const versions = connection.kubeConfig.makeApiClient(VersionApi);
  return {
    async version(timeoutMs) {
      try {
        // getCode(param, options): its request object is empty, so an options object in its
        // place type-checks and is dropped (the TLS settings and the deadline with it).
        const info = await versions.getCode({}, connection.call({ timeoutMs }));
        return { ok: true, value: info.gitVersion };
      } catch (err) {
        return failure(err, "Kubernetes API");
      }
    },

    async servesReceivers() {
      try {
        const resource = await connection.objects.discover(`${RECEIVER_GROUP}/${RECEIVER_VERSION}`, "Receiver");
        return { ok: true, value: resource?.name === RECEIVER_PLURAL };
      } catch (err) {
        const result = failure(err, "discovery");
        // No such group/version: the CRD is not installed.
        return result.status === 404 ? { ok: true, value: false } : result;
      }
    },
  };
}
