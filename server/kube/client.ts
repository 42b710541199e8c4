/**
 * @module server/kube/client
 * KubePort implemented with the real `@kubernetes/client-node`: one connection to the API server,
 * and the calls of each kind of object fluxhook reads or writes, one module each.
 */
import { connect, type KubeClientOptions } from "./connection";
import { discoveryApi } from "./discovery-api";
import { eventsApi } from "./events-api";
import { leasesApi } from "./leases-api";
import { observedApi } from "./observed-api";
import type { KubePort } from "./port";
import { receiversApi } from "./receivers-api";
import { secretsApi } from "./secrets-api";
import { targetsApi } from "./targets-api";

export { loadKubeConfig } from "./kubeconfig";

export function createKubeClient(options: KubeClientOptions): KubePort {
  const connection = connect(options);
  return {
    // Is the API server there, and does it serve Receivers?
    ...discoveryApi(connection),
    // Receivers: list+watch, finalizers, status.
    ...receiversApi(connection),
    // Secrets: metadata watched, the referenced ones read.
    ...secretsApi(connection),
    // What a delivery reaches: targets got, listed, watched, annotated.
    ...targetsApi(connection),
    // What a status query reads.
    ...observedApi(connection),
    // Events about Receivers, and the Lease of leader election.
    ...eventsApi(connection),
    ...leasesApi(connection),
  };
}
