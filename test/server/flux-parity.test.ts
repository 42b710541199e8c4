/**
 * fluxhook as a drop-in for notification-controller's Receiver reconciler (issue 12), through the
 * real client against the API test server, which deletes with finalizers as kube-apiserver does:
 * Flux's finalizer kept and removed, suspended Receivers' status, reconcile Events with Flux's
 * reasons, log fields, never-Ready Receivers answering 404, and Flux's wording.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { RECEIVER_API_VERSION, RECEIVER_FINALIZER } from "../../server/api/receiver";
import { webhookPath } from "../../shared";
import { startStack, waitFor, type Stack } from "../support/stack";
import { GIT } from "../support/kinds";

const RECEIVERS = { group: "notification.toolkit.fluxcd.io", version: "v1", plural: "receivers" } as const;
const generic = (extra: Record<string, unknown> = {}) => ({
  type: "generic",
  secretRef: { name: "token" },
  resources: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
  ...extra,
});

let stack: Stack;
let custom: CustomObjectsApi;

/** A namespace with a token Secret and a target, and a Receiver in it. */
function seed(ns: string, spec: Record<string, unknown> = generic(), token = `token-of-${ns}`) {
  const targets = [{ apiVersion: GIT, kind: "GitRepository", name: "app" }];
  stack.makeReceiver(ns, "receiver", { type: spec.type as string, token, secretName: "token", targets, spec });
  return webhookPath(token, "receiver", ns);
}

const receiver = (ns: string) => stack.receiverObject(ns, "receiver");
const patchReceiver = (ns: string, patch: Record<string, unknown>) =>
  stack.api.store.patch(RECEIVER_API_VERSION, "Receiver", ns, "receiver", patch);
const status = async (path: string) => (await stack.post(path, { body: "{}" })).status;
const eventsOf = (ns: string) => stack.api.store.list("v1", "Event", ns) as Record<string, any>[];

beforeAll(async () => {
  stack = await startStack();
  custom = stack.api.kubeConfig().makeApiClient(CustomObjectsApi);
});
afterAll(() => stack.stop());

describe("finalizers.fluxcd.io, as Flux keeps it", () => {
  test("added to a Receiver; on delete it stops answering, the finalizer goes and the object with it, within 5 s", async () => {
    const path = seed("fin");
    await stack.readyPath("fin", "receiver");
    await waitFor("the finalizer", () => receiver("fin")?.metadata.finalizers?.includes(RECEIVER_FINALIZER));
    expect(await status(path)).toBe(200);
    const started = Date.now();
    await custom.deleteNamespacedCustomObject({ ...RECEIVERS, namespace: "fin", name: "receiver" });
    await waitFor("the Receiver gone", () => receiver("fin") === undefined, 5_000);
    expect(await status(path)).toBe(404);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stack.logs).toContainEqual(
      expect.objectContaining({
        msg: "finalizer removed",
        name: "receiver",
        namespace: "fin",
        receiver: "fin/receiver",
      }),
    );
  });

  test("a removal the API server fails is logged at error and retried until the object is gone", async () => {
    seed("fin-retry");
    await stack.readyPath("fin-retry", "receiver");
    await waitFor("the finalizer", () => receiver("fin-retry")?.metadata.finalizers?.includes(RECEIVER_FINALIZER));
    const path = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/fin-retry/receivers/receiver";
    const fault = stack.api.faults.add({ method: "PATCH", path, times: 2, respond: { status: 500 } });
    await custom.deleteNamespacedCustomObject({ ...RECEIVERS, namespace: "fin-retry", name: "receiver" });
    await waitFor("the Receiver gone", () => receiver("fin-retry") === undefined);
    expect(fault.hits).toBe(2);
    expect(stack.logs).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "cannot remove the finalizer",
        name: "receiver",
        namespace: "fin-retry",
        error: expect.any(String),
      }),
    );
  });

  test("another controller's finalizer is kept: the Receiver stays Terminating, unserved", async () => {
    stack.secret("fin-other", "token", { token: "t-other" });
    stack.target(GIT, "GitRepository", "fin-other", "app");
    stack.api.store.create({
      apiVersion: RECEIVER_API_VERSION,
      kind: "Receiver",
      metadata: { name: "receiver", namespace: "fin-other", finalizers: ["example.com/keep"] },
      spec: generic(),
    });
    const path = await stack.readyPath("fin-other", "receiver");
    await waitFor("both finalizers", () => receiver("fin-other")?.metadata.finalizers?.length === 2);
    expect(receiver("fin-other")!.metadata.finalizers).toEqual(["example.com/keep", RECEIVER_FINALIZER]);
    await custom.deleteNamespacedCustomObject({ ...RECEIVERS, namespace: "fin-other", name: "receiver" });
    await waitFor("only the other finalizer", () => receiver("fin-other")?.metadata.finalizers?.length === 1);
    expect(receiver("fin-other")!.metadata.finalizers).toEqual(["example.com/keep"]);
    expect(receiver("fin-other")!.metadata.deletionTimestamp).toBeString();
    expect(await status(path)).toBe(404);
  });

  test("a suspended Receiver, and one with an invalid spec, get the finalizer and are finalized too", async () => {
    seed("fin-suspended", generic({ suspend: true }));
    stack.receiver("fin-suspended", "invalid", { type: "generic-oidc", resources: [] });
    for (const name of ["receiver", "invalid"])
      await waitFor(`${name}'s finalizer`, () =>
        stack.receiverObject("fin-suspended", name)?.metadata.finalizers?.includes(RECEIVER_FINALIZER),
      );
    for (const name of ["receiver", "invalid"]) {
      await custom.deleteNamespacedCustomObject({ ...RECEIVERS, namespace: "fin-suspended", name });
      await waitFor(`${name} gone`, () => stack.receiverObject("fin-suspended", name) === undefined, 5_000);
    }
  });

  test("a Receiver being deleted is never given the finalizer back, nor its status written", async () => {
    const path = seed("fin-late");
    await stack.readyPath("fin-late", "receiver");
    await waitFor("the finalizer", () => receiver("fin-late")?.metadata.finalizers?.includes(RECEIVER_FINALIZER));
    // Flux's finalizer removed by hand and another one added: fluxhook puts its own back.
    patchReceiver("fin-late", { metadata: { finalizers: ["example.com/keep"] } });
    await waitFor("the finalizer back", () => receiver("fin-late")?.metadata.finalizers?.length === 2);
    const objectPath = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/fin-late/receivers/receiver";
    const patches = (path: string) => stack.api.count({ method: "PATCH", path });
    const [objectBefore, statusBefore] = [patches(objectPath), patches(`${objectPath}/status`)];
    stack.api.store.delete(RECEIVER_API_VERSION, "Receiver", "fin-late", "receiver");
    await waitFor("404", async () => (await status(path)) === 404);
    await waitFor("the finalizer removed", () => receiver("fin-late")?.metadata.finalizers?.length === 1);
    // A spec change of the Terminating object; a Receiver created after it marks when it was seen.
    patchReceiver("fin-late", { spec: { events: ["x"] } });
    seed("fin-late-marker");
    await stack.readyPath("fin-late-marker", "receiver");
    expect([patches(objectPath) - objectBefore, patches(`${objectPath}/status`) - statusBefore]).toEqual([1, 0]);
  });
});

describe("--status-updates=false", () => {
  test("a Terminating Receiver is unserved at once, and no finalizer is written", async () => {
    await using beside = await startStack({ statusUpdates: false });
    beside.secret("beside", "token", { token: "t-beside" });
    beside.target(GIT, "GitRepository", "beside", "app");
    const path = webhookPath("t-beside", "receiver", "beside");
    // As Flux left it: its finalizer, Ready with the path.
    beside.api.store.create({
      apiVersion: RECEIVER_API_VERSION,
      kind: "Receiver",
      metadata: { name: "receiver", namespace: "beside", finalizers: [RECEIVER_FINALIZER] },
      spec: generic(),
      status: { webhookPath: path, conditions: [{ type: "Ready", status: "True", reason: "Succeeded", message: "" }] },
    });
    await waitFor("served", async () => (await beside.post(path, { body: "{}" })).status === 200);
    await beside.api
      .kubeConfig()
      .makeApiClient(CustomObjectsApi)
      .deleteNamespacedCustomObject({ ...RECEIVERS, namespace: "beside", name: "receiver" });
    await waitFor("404", async () => (await beside.post(path, { body: "{}" })).status === 404);
    expect(beside.receiverObject("beside", "receiver")!.metadata.finalizers).toEqual([RECEIVER_FINALIZER]);
    expect(
      beside.api.count({
        method: "PATCH",
        path: "/apis/notification.toolkit.fluxcd.io/v1/namespaces/beside/receivers/receiver",
      }),
    ).toBe(0);
  });
});

describe("suspended Receivers, as Flux's deferred patch leaves them", () => {
  test("Ready then suspended: observedGeneration and lastHandledReconcileAt follow; conditions untouched; 503", async () => {
    const path = seed("suspend");
    await stack.readyPath("suspend", "receiver");
    const conditions = receiver("suspend")!.status.conditions;
    patchReceiver("suspend", {
      spec: { suspend: true },
      metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "2026-12-01T10:00:00Z" } },
    });
    await waitFor("observedGeneration = generation", () => {
      const r = receiver("suspend")!;
      return r.metadata.generation === 2 && r.status.observedGeneration === 2;
    });
    await waitFor(
      "lastHandledReconcileAt",
      () => receiver("suspend")!.status.lastHandledReconcileAt === "2026-12-01T10:00:00Z",
    );
    patchReceiver("suspend", {
      metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "2026-12-01T10:05:00Z" } },
    });
    await waitFor(
      "the next request answered",
      () => receiver("suspend")!.status.lastHandledReconcileAt === "2026-12-01T10:05:00Z",
    );
    expect(receiver("suspend")!.status.conditions).toEqual(conditions);
    expect(await status(path)).toBe(503);
  });

  test("created suspended: never Ready, so 404 (no webhookPath), and its reconcile requests are answered", async () => {
    const path = seed("born-suspended", generic({ suspend: true }));
    patchReceiver("born-suspended", { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "r1" } } });
    await waitFor("lastHandledReconcileAt", () => receiver("born-suspended")?.status?.lastHandledReconcileAt === "r1");
    expect(receiver("born-suspended")!.status.conditions).toBeUndefined();
    expect(receiver("born-suspended")!.status.webhookPath).toBeUndefined();
    expect(await status(path)).toBe(404);
    patchReceiver("born-suspended", { spec: { suspend: false } });
    await stack.readyPath("born-suspended", "receiver");
    expect(await status(path)).toBe(200);
  });
});

describe("never-Ready Receivers answer 404, as in Flux; once Ready, 503", () => {
  test("Stalled before it was ever Ready: 404; Ready, then Stalled: 503 at its path", async () => {
    const path = seed("never-ready", generic({ resourceFilter: "res.metadata.name ==" }));
    await waitFor("Stalled", () => receiver("never-ready")?.status?.conditions?.some((c: any) => c.type === "Stalled"));
    expect(receiver("never-ready")!.status).not.toHaveProperty("webhookPath");
    expect(await status(path)).toBe(404);
    patchReceiver("never-ready", { spec: { resourceFilter: null } });
    await stack.readyPath("never-ready", "receiver");
    patchReceiver("never-ready", { spec: { resourceFilter: "res.metadata.name ==" } });
    await waitFor("503", async () => (await status(path)) === 503);
    expect(receiver("never-ready")!.status.webhookPath).toBe(path);
  });
});

describe("reconcile Events and log lines, with Flux's reasons and fields", () => {
  test("InvalidCELExpression: a Warning Event with Flux's message, logged at error with name, namespace and error", async () => {
    seed("cel-event", generic({ resourceFilter: "res.metadata.name ==" }));
    const event = await waitFor("the Warning Event", () =>
      eventsOf("cel-event").find((e) => e.reason === "InvalidCELExpression"),
    );
    // The Event says what the Ready condition says.
    expect(event.message).toBe(receiver("cel-event")!.status.conditions[0].message);
    expect(event).toMatchObject({
      type: "Warning",
      involvedObject: { kind: "Receiver", name: "receiver", namespace: "cel-event" },
      message: expect.stringMatching(
        /^Reconciliation failed terminally due to configuration error: invalid resourceFilter expression: /,
      ),
    });
    const line = stack.logs.find(
      (l) => l.msg === "Reconciliation failed terminally due to configuration error" && l.namespace === "cel-event",
    );
    expect(line).toMatchObject({
      level: "error",
      name: "receiver",
      receiver: "cel-event/receiver",
      reason: "InvalidCELExpression",
      error: expect.stringMatching(/^invalid resourceFilter expression: /),
    });
  });

  test("an unreadable token: Warning Failed with the error; then Ready: Normal Succeeded; each once", async () => {
    stack.target(GIT, "GitRepository", "token-event", "app");
    stack.receiver("token-event", "receiver", generic());
    const failed = await waitFor("Warning Failed", () => eventsOf("token-event").find((e) => e.reason === "Failed"));
    expect(failed).toMatchObject({
      type: "Warning",
      message: `unable to read token from secret 'token-event/token' error: secrets "token" not found`,
    });
    expect(stack.logs).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "Reconciler error",
        name: "receiver",
        namespace: "token-event",
        error: failed.message,
      }),
    );
    stack.secret("token-event", "token", { token: "now" });
    await stack.readyPath("token-event", "receiver");
    const succeeded = await waitFor("Normal Succeeded", () =>
      eventsOf("token-event").find((e) => e.reason === "Succeeded"),
    );
    expect(succeeded).toMatchObject({ type: "Normal", message: "Reconciliation finished", count: 1 });
    // A later write that is no transition (a reconcile request) records nothing more.
    patchReceiver("token-event", { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "again" } } });
    await waitFor("answered", () => receiver("token-event")!.status.lastHandledReconcileAt === "again");
    expect(eventsOf("token-event").map((e) => [e.reason, e.count])).toEqual([
      ["Failed", 1],
      ["Succeeded", 1],
    ]);
  });

  test("delivery lines carry name and namespace, and a refusal's reason under error too", async () => {
    const path = seed("log-fields", { ...generic(), type: "generic-hmac" });
    await stack.readyPath("log-fields", "receiver");
    expect(await status(path)).toBe(400);
    expect(stack.logs).toContainEqual(
      expect.objectContaining({
        msg: "delivery refused",
        receiver: "log-fields/receiver",
        name: "receiver",
        namespace: "log-fields",
        error: expect.any(String),
      }),
    );
    expect(stack.logs).toContainEqual(
      expect.objectContaining({ msg: "receiver status updated", name: "receiver", namespace: "log-fields" }),
    );
  });
});

describe("Flux's wording", () => {
  test.each([
    [{ type: "generic-oidc", resources: [] }, "generic-oidc receiver requires at least one oidcProvider"],
    [
      { ...generic(), oidcProviders: [{ issuerURL: "https://issuer.example.com" }] },
      "oidcProviders can only be set when type is generic-oidc",
    ],
    [
      {
        type: "generic-oidc",
        resources: [],
        secretRef: { name: "token" },
        oidcProviders: [{ issuerURL: "https://issuer.example.com" }],
      },
      "secretRef cannot be set when type is generic-oidc",
    ],
    [{ type: "generic", resources: [] }, "secretRef is required when type is not generic-oidc"],
  ])("the spec invariants: %j", async (spec, message) => {
    const ns = `wording-${Bun.hash(message).toString(16)}`;
    stack.receiver(ns, "receiver", spec);
    await waitFor("Stalled", () => receiver(ns)?.status?.conditions?.some((c: any) => c.type === "Stalled"));
    expect(receiver(ns)!.status.conditions[0]).toMatchObject({
      reason: "ValidationFailed",
      message: `Reconciliation failed terminally due to configuration error: ${message}`,
    });
  });

  test('TokenNotFound\'s Reconciling condition: ProgressingWithRetry, "Reconciliation in progress"', async () => {
    stack.receiver("wording-token", "receiver", generic());
    await waitFor("Reconciling", () => receiver("wording-token")?.status?.conditions?.length === 2);
    expect(receiver("wording-token")!.status.conditions[1]).toMatchObject({
      type: "Reconciling",
      status: "True",
      reason: "ProgressingWithRetry",
      message: "Reconciliation in progress",
    });
  });
});
