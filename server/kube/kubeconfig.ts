/**
 * @module server/kube/kubeconfig
 * Where the cluster is and who fluxhook is in it: the Kubernetes configuration, loaded once.
 */
import { KubeConfig } from "@kubernetes/client-node";

/**
 * Loads the cluster configuration: the explicit path, else KUBECONFIG, else the in-cluster
 * service account. Throws with a readable message when none is usable.
 */
export function loadKubeConfig(
  path: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): KubeConfig {
  const kc = new KubeConfig();
  const file = path ?? env.KUBECONFIG;
  if (file) {
    // KUBECONFIG may list several files; client-node merges them like kubectl.
    if (!path) kc.loadFromDefault();
    else kc.loadFromFile(file);
  } else {
    // loadFromCluster does not fail outside a cluster; it yields "https://undefined:undefined".
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new Error("KUBECONFIG is not set and KUBERNETES_SERVICE_HOST is not set (not running in a cluster)");
    }
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster())
    throw new Error(`no cluster in the Kubernetes configuration${file ? ` (${file})` : " (in-cluster)"}`);
  return kc;
}
