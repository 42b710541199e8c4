/**
 * @module server/kube/observed-api
 * What a status query reads: objects by name or by kind, each projected as it arrives to what a
 * status answer may show (api/observed.ts), so no more of an object than that is kept.
 */
import { observe } from "../api/observed";
import type { Connection } from "./connection";
import { failure } from "./failure";
import type { KubePort } from "./port";

export function observedApi(connection: Connection): Pick<KubePort, "observeObject" | "observeObjects"> {
  return {
    async observeObject(ref) {
      try {
        return { ok: true, value: observe(await connection.readObject(ref), ref) };
      } catch (err) {
        const result = failure(err, `${ref.kind} ${ref.namespace}/${ref.name}`);
        return result.status === 404 ? { ok: true, value: undefined } : result;
      }
    },

    async observeObjects(apiVersion, kind, namespace, maxObjects) {
      const items = [];
      let token: string | undefined;
      try {
        do {
          const limit = Math.min(connection.tuning.listPageSize, maxObjects - items.length + 1);
          const list = await connection.listPage(apiVersion, kind, namespace, { limit, token });
          // A kind whose controller is not installed (no HelmRelease CRD) has no objects to find.
          if (!list) return { ok: true, value: { items: [], truncated: false } };
          for (const item of list.items) items.push(observe(item, { kind, namespace, name: "" }));
          token = list.continue;
        } while (token && items.length <= maxObjects);
      } catch (err) {
        // A group/version not served at all (no such CRD) has no objects to find either.
        const result = failure(err, `${kind} in ${namespace}`);
        if (result.status === 404) return { ok: true, value: { items: [], truncated: false } };
        return result;
      }
      return { ok: true, value: { items: items.slice(0, maxObjects), truncated: items.length > maxObjects } };
    },
  };
}
