/**
 * The recommended install, deploy/base, beside Flux's notification-controller: fluxhook runs with
 * the base's flags (status updates off) under exactly the base's RBAC, which cannot write
 * Receivers. It must serve, annotate, answer status queries, elect a leader and record delivery
 * Events with those rights alone, and never touch a Receiver (that is notification-controller's).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encodeStatusQuery, signPayload, statusQueryKey, webhookPath, type QueriedTarget } from "../../shared";
import { githubExample } from "../support/payloads";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  FLUX_NAMESPACE,
  get,
  gitRepository,
  githubDelivery,
  installFlux,
  kustomization,
  namespace,
  receiver,
  requestedAt,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

let plane: ControlPlane;
let server: FluxhookProcess;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
  server = await startFluxhookProcess(plane, { install: "base" });
});
afterAll(async () => {
  await server?.stop();
  await deleteAllReceivers(plane);
});

describe("deploy/base beside Flux: status updates off, the base's RBAC", () => {
  test("serves, annotates and answers the status query; leaves the Receiver to notification-controller", async () => {
    const ns = uniqueNamespace("beside");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      kustomization(ns, "apps", { kind: "GitRepository", name: "app" }),
      tokenSecret(ns, "r-token", token),
      receiver(
        ns,
        "r",
        {
          type: "github",
          events: ["push"],
          secretRef: { name: "r-token" },
          resources: [{ kind: "GitRepository", name: "app" }],
        },
        token,
      ),
    );
    const path = webhookPath(token, "r", ns);
    const url = `${server.urls.receiverAddr}${path}`;
    const delivered = await waitFor("the Receiver served", async () => {
      const res = await fetch(url, { method: "POST", ...githubDelivery(token, "push", githubExample("push")) });
      return res.status === 200 && ((await res.json()) as { targets: QueriedTarget[] });
    });
    expect(requestedAt(plane, "gitrepositories", ns, "app")).toBeString();

    const body = encodeStatusQuery({
      targets: delivered.targets.map(({ kind, namespace, name, requestedAt }) => ({
        kind,
        namespace,
        name,
        requestedAt,
      })),
    });
    const query = await fetch(`${url}/status`, {
      method: "POST",
      body,
      headers: {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signPayload("sha256", statusQueryKey(token), body),
      },
    });
    expect(query.status).toBe(200);
    const answer = (await query.json()) as { targets: { consumers?: { name: string }[] }[] };
    expect(answer.targets[0]!.consumers?.map((c) => c.name)).toEqual(["apps"]);

    const r = get(plane, "receivers.notification.toolkit.fluxcd.io", ns, "r")!;
    // The CRD's default status ({observedGeneration: -1}) and nothing of fluxhook's.
    expect({ finalizers: r.metadata.finalizers, status: r.status }).toEqual({
      finalizers: undefined,
      status: { observedGeneration: -1 },
    });
    await waitFor("the delivery's Event", () => {
      const events = JSON.parse(
        plane.kubectl(["get", "events", "-n", ns, "-o", "json", "--field-selector=involvedObject.name=r"]),
      );
      return (events.items as { reason: string }[]).some((e) => e.reason === "ReconcileRequested");
    });
  });

  test("elects a leader on the base's Lease rights, and no API request was refused", async () => {
    await waitFor("the leader", () => server.lines.some((l) => l.msg?.startsWith("became leader")));
    const lease = get(plane, "leases.coordination.k8s.io", FLUX_NAMESPACE, "fluxhook-leader-election");
    expect(lease?.spec?.holderIdentity).toBeString();
    expect(await server.refusedApiRequests()).toEqual({});
    expect(server.errors()).toEqual([]);
  });
});
