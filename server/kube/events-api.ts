/**
 * @module server/kube/events-api
 * core/v1 Events about Receivers: created once, then patched as they repeat.
 */
import { PatchStrategy } from "@kubernetes/client-node";
import { FIELD_MANAGER, type Connection } from "./connection";
import { failure } from "./failure";
import type { EventRecord, KubePort } from "./port";

/** An Event as the API takes it, reported by fluxhook. */
const eventBody = (event: EventRecord) => ({
  apiVersion: "v1",
  kind: "Event",
  metadata: { name: event.name, namespace: event.namespace },
  involvedObject: event.involvedObject,
  type: event.type,
  reason: event.reason,
  message: event.message,
  count: event.count,
  firstTimestamp: event.firstTimestamp,
  lastTimestamp: event.lastTimestamp,
  source: { component: FIELD_MANAGER },
  reportingComponent: FIELD_MANAGER,
  reportingInstance: event.reportingInstance,
});

export function eventsApi(connection: Connection): Pick<KubePort, "createEvent" | "updateEvent"> {
  const { core, call } = connection;
  return {
    async createEvent(event) {
      try {
        await core.createNamespacedEvent({ namespace: event.namespace, body: eventBody(event) }, call());
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Event ${event.namespace}/${event.name}`);
      }
    },

    async updateEvent(event) {
      try {
        const { count, lastTimestamp, message } = eventBody(event);
        await core.patchNamespacedEvent(
          { namespace: event.namespace, name: event.name, body: { count, lastTimestamp, message } },
          call({ contentType: PatchStrategy.MergePatch }),
        );
        return { ok: true, value: undefined };
      } catch (err) {
        return failure(err, `Event ${event.namespace}/${event.name}`);
      }
    },
  };
}
