/**
 * A Receiver's life on a real API server, fluxhook at deploy/standalone's flags and RBAC: every status
 * write accepted by the real CRD's structural schema, Flux's finalizer, real deletion
 * (Terminating, then gone), suspend and resume, and Events accepted by the real API.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { githubExample } from "../support/payloads";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  get,
  gitRepository,
  githubDelivery,
  helmRelease,
  imageRepository,
  installFlux,
  namespace,
  ociRepository,
  readyCondition,
  readyPath,
  receiver,
  requestedAt,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

const RECEIVERS = "receivers.notification.toolkit.fluxcd.io";
let plane: ControlPlane;
let server: FluxhookProcess;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
  server = await startFluxhookProcess(plane);
});
afterAll(async () => {
  await server?.stop();
  await deleteAllReceivers(plane);
});

function githubReceiver(ns: string, name: string, token: string, resources: Record<string, unknown>[]) {
  return receiver(
    ns,
    name,
    { type: "github", events: ["push", "ping"], secretRef: { name: `${name}-token` }, resources },
    token,
  );
}

async function post(path: string, token: string, event = "push") {
  const res = await fetch(`${server.urls.receiverAddr}${path}`, {
    method: "POST",
    ...githubDelivery(token, event, githubExample(event)),
  });
  return { status: res.status, body: (await res.json()) as { reason: string } };
}

/** The Events on one Receiver, as the API serves them. */
function eventsOf(ns: string, name: string): { reason: string; type: string; message: string; count?: number }[] {
  const list = JSON.parse(
    plane.kubectl(["get", "events", "-n", ns, "-o", "json", `--field-selector=involvedObject.name=${name}`]),
  );
  return list.items;
}

/** Status writes the API refused, by fluxhook's own account. */
const refusedWrites = () =>
  server.lines.filter((l) => l.level === "error" && /status update failed|finalizer/.test(l.msg));

describe("a Receiver's life on a real API server", () => {
  test("Ready with Flux's status fields and finalizer; the real CRD accepts every write", async () => {
    const ns = uniqueNamespace("life");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      tokenSecret(ns, "r-token", token),
      githubReceiver(ns, "r", token, [{ kind: "GitRepository", name: "app" }]),
    );
    const path = await readyPath(plane, ns, "r");
    const r = get(plane, RECEIVERS, ns, "r")!;
    expect(r.metadata.finalizers).toEqual(["finalizers.fluxcd.io"]);
    expect(r.status.observedGeneration).toBe(r.metadata.generation);
    expect(r.status.webhookPath).toBe(path);
    expect(readyCondition(plane, ns, "r")).toMatchObject({
      reason: "Succeeded",
      message: `Receiver initialized for path: ${path}`,
    });
    expect(refusedWrites()).toEqual([]);
  });

  test("a push annotates a GitRepository, an OCIRepository, an ImageRepository and a HelmRelease", async () => {
    const ns = uniqueNamespace("kinds");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "git"),
      ociRepository(ns, "oci"),
      imageRepository(ns, "image"),
      helmRelease(ns, "release"),
      tokenSecret(ns, "r-token", token),
      githubReceiver(ns, "r", token, [
        { kind: "GitRepository", name: "git" },
        { kind: "OCIRepository", name: "oci" },
        { apiVersion: "image.toolkit.fluxcd.io/v1", kind: "ImageRepository", name: "image" },
        { apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", name: "release" },
      ]),
    );
    const path = await readyPath(plane, ns, "r");
    const answer = await post(path, token);
    expect(answer).toEqual({ status: 200, body: expect.objectContaining({ reason: "4 of 4 targets annotated" }) });
    for (const [kind, name] of [
      ["gitrepositories", "git"],
      ["ocirepositories", "oci"],
      ["imagerepositories", "image"],
      ["helmreleases", "release"],
    ] as const)
      expect(requestedAt(plane, kind, ns, name)).toBeString();
  });

  test("Events on the Receiver, with Flux's reasons, accepted by the real API", async () => {
    const ns = uniqueNamespace("events");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      tokenSecret(ns, "r-token", token),
      githubReceiver(ns, "r", token, [{ kind: "GitRepository", name: "app" }]),
    );
    const path = await readyPath(plane, ns, "r");
    expect((await post(path, token)).status).toBe(200);
    expect((await post(path, "not-the-token")).status).toBe(400);
    const reasons = await waitFor("the Events", () => {
      const seen = new Set(eventsOf(ns, "r").map((e) => `${e.type}/${e.reason}`));
      return (
        ["Normal/Succeeded", "Normal/ReconcileRequested", "Warning/DeliveryRejected"].every((r) => seen.has(r)) && seen
      );
    });
    expect([...reasons].sort()).toEqual(["Normal/ReconcileRequested", "Normal/Succeeded", "Warning/DeliveryRejected"]);
    expect(server.lines.filter((l) => l.level === "error" && /[Ee]vent/.test(l.msg))).toEqual([]);
  });

  test("suspend answers 503 and keeps the conditions; resume serves again", async () => {
    const ns = uniqueNamespace("suspend");
    const token = crypto.randomUUID();
    const spec = [{ kind: "GitRepository", name: "app" }];
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      tokenSecret(ns, "r-token", token),
      githubReceiver(ns, "r", token, spec),
    );
    const path = await readyPath(plane, ns, "r");
    plane.kubectl(["patch", RECEIVERS, "-n", ns, "r", "--type=merge", "-p", '{"spec":{"suspend":true}}']);
    await waitFor("503 while suspended", async () => (await post(path, token)).status === 503);
    expect(readyCondition(plane, ns, "r")).toMatchObject({ status: "True", reason: "Succeeded" });
    plane.kubectl(["patch", RECEIVERS, "-n", ns, "r", "--type=merge", "-p", '{"spec":{"suspend":false}}']);
    await waitFor("200 once resumed", async () => (await post(path, token)).status === 200);
    await waitFor("observedGeneration of the resumed spec", () => {
      const r = get(plane, RECEIVERS, ns, "r")!;
      return r.status.observedGeneration === r.metadata.generation;
    });
  });

  test("deletion: Terminating while Flux's finalizer is on, then gone; its path answers 404", async () => {
    const ns = uniqueNamespace("delete");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      tokenSecret(ns, "r-token", token),
      githubReceiver(ns, "r", token, [{ kind: "GitRepository", name: "app" }]),
    );
    const path = await readyPath(plane, ns, "r");
    // A second finalizer, the test's, holds the object in Terminating after fluxhook let go of Flux's.
    plane.kubectl([
      "patch",
      RECEIVERS,
      "-n",
      ns,
      "r",
      "--type=json",
      "-p",
      '[{"op":"add","path":"/metadata/finalizers/-","value":"test.fluxhook.io/hold"}]',
    ]);
    plane.kubectl(["delete", RECEIVERS, "-n", ns, "r", "--wait=false"]);
    const terminating = await waitFor("Flux's finalizer removed from the Terminating Receiver", () => {
      const r = get(plane, RECEIVERS, ns, "r");
      const released =
        r?.metadata.deletionTimestamp && !(r.metadata.finalizers as string[]).includes("finalizers.fluxcd.io");
      return released ? r : undefined;
    });
    expect(terminating.metadata.finalizers).toEqual(["test.fluxhook.io/hold"]);
    expect((await post(path, token)).status).toBe(404);
    plane.kubectl(["patch", RECEIVERS, "-n", ns, "r", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    await waitFor("the Receiver gone", () => get(plane, RECEIVERS, ns, "r") === undefined);
  });

  test("a Secret without a token: Ready=False TokenNotFound, as Flux words it; a token added: Ready", async () => {
    const ns = uniqueNamespace("token");
    apply(
      plane,
      namespace(ns),
      gitRepository(ns, "app"),
      { apiVersion: "v1", kind: "Secret", metadata: { name: "r-token", namespace: ns }, stringData: { other: "x" } },
      githubReceiver(ns, "r", "", [{ kind: "GitRepository", name: "app" }]),
    );
    const cond = await waitFor("TokenNotFound", () => {
      const c = readyCondition(plane, ns, "r");
      return c?.status === "False" && c;
    });
    expect(cond).toMatchObject({
      reason: "TokenNotFound",
      message: `invalid '${ns}/r-token' secret data: required fields 'token'`,
    });
    const token = crypto.randomUUID();
    apply(plane, tokenSecret(ns, "r-token", token));
    await readyPath(plane, ns, "r");
  });

  test("an invalid CEL expression: Stalled, not Ready, and the write is accepted", async () => {
    const ns = uniqueNamespace("cel");
    const token = crypto.randomUUID();
    apply(
      plane,
      namespace(ns),
      tokenSecret(ns, "r-token", token),
      receiver(
        ns,
        "r",
        {
          type: "github",
          secretRef: { name: "r-token" },
          resourceFilter: "this is not CEL",
          resources: [{ kind: "GitRepository", name: "*" }],
        },
        token,
      ),
    );
    const cond = await waitFor("Ready=False", () => {
      const c = readyCondition(plane, ns, "r");
      return c?.status === "False" && c;
    });
    expect(cond.reason).toBe("InvalidCELExpression");
    const r = get(plane, RECEIVERS, ns, "r")!;
    expect(r.status.conditions.map((c: { type: string }) => c.type).sort()).toEqual(["Ready", "Stalled"]);
    expect(refusedWrites()).toEqual([]);
  });

  test("no API request of fluxhook's was refused under deploy/standalone's RBAC", async () => {
    expect(await server.refusedApiRequests()).toEqual({});
  });
});
