/**
 * @module server/targets/shared-lists
 * Concurrent deliveries that resolve the same selector share one list: while a list of a kind,
 * namespace and selector is in flight, every other delivery asking for it waits for that one
 * (a single-flight), so a flood of deliveries to a wildcard Receiver costs one metadata list at a
 * time, not one each (16 senders listing one each read 1,306 MiB in 10 s).
 *
 * Nothing is kept once a list has answered: the next delivery lists again, so a delivery sees
 * objects created before the list it waited on started. An object created while that list was in
 * flight is the one a joining delivery may miss; being new, its controller reconciles it anyway.
 * A failed list fails every delivery that waited on it, as a shared PATCH does (coalesce.ts).
 */
import type { KubePort } from "../kube/port";

type Lister = Pick<KubePort, "listObjects">;

export interface SharedLists {
  readonly listObjects: KubePort["listObjects"];
  /** Deliveries waiting on a list another started (tests wait for a flood to have joined). */
  readonly waiting: () => number;
}

/** `kube.listObjects`, shared between concurrent callers with the same arguments. */
export function shareLists(kube: Lister): SharedLists {
  const inFlight = new Map<string, ReturnType<KubePort["listObjects"]>>();
  let waiting = 0;
  const listObjects: KubePort["listObjects"] = (apiVersion, kind, namespace, matchLabels, name) => {
    // Label keys and values cannot hold a newline, nor can names, kinds and namespaces.
    const labels = Object.entries(matchLabels)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const key = `${apiVersion}\n${kind}\n${namespace ?? "*"}\n${labels}\n${name ?? "*"}`;
    const running = inFlight.get(key);
    if (running) {
      waiting++;
      return running.finally(() => waiting--);
    }
    const list = kube.listObjects(apiVersion, kind, namespace, matchLabels, name).finally(() => inFlight.delete(key));
    inFlight.set(key, list);
    return list;
  };
  return { listObjects, waiting: () => waiting };
}
