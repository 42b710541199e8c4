/**
 * @module server/kube/leases-api
 * The coordination.k8s.io/v1 Lease of leader election (leader.ts): read, and written with
 * optimistic locking on the resourceVersion read.
 */
import { CoordinationV1Api, V1MicroTime } from "@kubernetes/client-node";
import type { Connection } from "./connection";
import { failure } from "./failure";
import type { KubePort } from "./port";

const microTime = (date: Date | undefined) => (date ? new V1MicroTime(date.getTime()) : undefined);

export function leasesApi(connection: Connection): Pick<KubePort, "getLease" | "writeLease"> {
  const coordination = connection.kubeConfig.makeApiClient(CoordinationV1Api);
  const { call } = connection;
  return {
    async getLease(namespace, name) {
      try {
        const lease = await coordination.readNamespacedLease({ namespace, name }, call());
        const spec = lease.spec ?? {};
        return {
          ok: true,
          value: {
            holderIdentity: spec.holderIdentity ?? "",
            leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
            acquireTime: spec.acquireTime ? new Date(spec.acquireTime) : undefined,
            renewTime: spec.renewTime ? new Date(spec.renewTime) : undefined,
            leaseTransitions: spec.leaseTransitions ?? 0,
            resourceVersion: lease.metadata?.resourceVersion,
          },
        };
      } catch (err) {
        const result = failure(err, `Lease ${namespace}/${name}`);
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },

    async writeLease(namespace, name, lease) {
      const body = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace, ...(lease.resourceVersion ? { resourceVersion: lease.resourceVersion } : {}) },
        spec: {
          holderIdentity: lease.holderIdentity,
          leaseDurationSeconds: lease.leaseDurationSeconds,
          acquireTime: microTime(lease.acquireTime),
          renewTime: microTime(lease.renewTime),
          leaseTransitions: lease.leaseTransitions,
        },
      };
      try {
        if (lease.resourceVersion) await coordination.replaceNamespacedLease({ namespace, name, body }, call());
        else await coordination.createNamespacedLease({ namespace, body }, call());
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Lease ${namespace}/${name}`);
      }
    },
  };
}
