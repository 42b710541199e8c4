/**
 * @module server/kube/secrets-api
 * Secrets, read as little as possible: every Secret is watched as metadata only (the API server
 * strips them to PartialObjectMetadata), and only the ones Receivers reference are read whole, so
 * the data of the other Secrets in the cluster (TLS keys, Helm releases) never reaches fluxhook.
 */
import { METADATA_LIST_ACCEPT, type Connection } from "./connection";
import { failure } from "./failure";
import type { KubePort } from "./port";

export function secretsApi(
  connection: Connection,
): Pick<KubePort, "watchSecretMetadata" | "listSecrets" | "getSecret"> {
  const { core, call } = connection;
  return {
    watchSecretMetadata(namespace, sink) {
      return connection.reflect(
        {
          name: "secrets",
          path: namespace === undefined ? "/api/v1/secrets" : `/api/v1/namespaces/${namespace}/secrets`,
          list: (page) => {
            const metadataOnly = call({ accept: METADATA_LIST_ACCEPT });
            return namespace === undefined
              ? core.listSecretForAllNamespaces(page, metadataOnly)
              : core.listNamespacedSecret({ namespace, ...page }, metadataOnly);
          },
          metadataOnly: true,
        },
        sink,
      );
    },

    async listSecrets(namespace, token) {
      try {
        const list = await core.listNamespacedSecret(
          { namespace, limit: connection.tuning.listPageSize, ...(token ? { _continue: token } : {}) },
          call(),
        );
        return { ok: true, value: { items: list.items, continue: list.metadata?._continue || undefined } };
      } catch (err) {
        return failure(err, `Secrets in ${namespace}`);
      }
    },

    async getSecret(key) {
      try {
        return {
          ok: true,
          value: await core.readNamespacedSecret({ namespace: key.namespace, name: key.name }, call()),
        };
      } catch (err) {
        // The reason goes into the Receiver's status as Flux words it: the API's own message.
        const result = failure(err, "");
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },
  };
}
