/**
 * 1,000 Receivers on a real API server, each with its own Secret, across ten namespaces: all
 * Ready, every write accepted. The time from fluxhook's start to all Ready is printed for the
 * notes (performance is judged in bench/, never here: the deadline only bounds a hang).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../support/wait";
import {
  apply,
  createMany,
  deleteAllReceivers,
  installFlux,
  namespace,
  receiver,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
  type KubeObject,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

const RECEIVERS = 1_000;
const NAMESPACES = 10;
let plane: ControlPlane;
let server: FluxhookProcess | undefined;
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
});
afterAll(async () => {
  await server?.stop();
  await deleteAllReceivers(plane);
});

function readyCount(): number {
  const list = JSON.parse(plane.kubectl(["get", "receivers.notification.toolkit.fluxcd.io", "-A", "-o", "json"]));
  return (list.items as KubeObject[]).filter((r) =>
    r.status?.conditions?.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True"),
  ).length;
}

describe("1,000 Receivers", () => {
  test("all Ready on a real API server, every status and finalizer write accepted in the end", async () => {
    const prefix = uniqueNamespace("scale");
    const objects: KubeObject[] = [];
    for (let n = 0; n < NAMESPACES; n++) objects.push(namespace(`${prefix}-${n}`));
    for (let i = 0; i < RECEIVERS; i++) {
      const ns = `${prefix}-${i % NAMESPACES}`;
      const token = `scale-${i}-${crypto.randomUUID()}`;
      objects.push(
        tokenSecret(ns, `token-${i}`, token),
        receiver(
          ns,
          `r-${i}`,
          { type: "generic", secretRef: { name: `token-${i}` }, resources: [{ kind: "GitRepository", name: "app" }] },
          token,
        ),
      );
    }
    apply(plane, ...objects.filter((o) => o.kind === "Namespace"));
    await createMany(
      plane,
      objects.filter((o) => o.kind !== "Namespace"),
    );

    const started = performance.now();
    server = await startFluxhookProcess(plane);
    await waitFor(`${RECEIVERS} Receivers Ready`, () => readyCount() >= RECEIVERS, 300_000);
    const seconds = (performance.now() - started) / 1000;
    console.error(`cluster tier: ${RECEIVERS} Receivers Ready ${seconds.toFixed(1)} s after fluxhook started`);
    // A write lands in the API before fluxhook logs it (in batches of 20 ms): wait for the lines.
    const updated = () =>
      new Set(server!.lines.filter((l) => l.msg === "receiver status updated").map((l) => `${l.namespace}/${l.name}`));
    await waitFor("a status-updated line per Receiver", () => updated().size >= RECEIVERS);
    expect(updated().size).toBe(RECEIVERS);
    // A write refused for a stale resourceVersion is retried; none may be left failing.
    const failing = server.lines.filter((l) => l.level === "error" && !/retryInMs/.test(JSON.stringify(l)));
    expect(failing).toEqual([]);
  });
});
