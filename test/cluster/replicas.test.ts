/**
 * deploy/standalone's two replicas on a real API server: leader election through a real Lease (the
 * ServiceAccount may create Leases and read and update only its own), the leader killed and the
 * other taking over, a clean shutdown handing the Lease over at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../support/wait";
import {
  apply,
  deleteAllReceivers,
  FLUX_NAMESPACE,
  get,
  gitRepository,
  installFlux,
  namespace,
  readyPath,
  receiver,
  startFluxhookProcess,
  tokenSecret,
  uniqueNamespace,
  type FluxhookProcess,
} from "./flux";
import { controlPlane, type ControlPlane } from "./plane";

const LEASE = "fluxhook-leader-election";
let plane: ControlPlane;
const running: FluxhookProcess[] = [];
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.stop();
  await deleteAllReceivers(plane);
});

async function replica(): Promise<FluxhookProcess> {
  const p = await startFluxhookProcess(plane);
  running.push(p);
  return p;
}

/** The identity a replica holds the Lease under (client-go's form, `<hostname>_<uuid>`), once it leads. */
const leads = (p: FluxhookProcess): string | undefined =>
  p.lines.find((l) => l.msg?.startsWith("became leader"))?.identity;
const holder = () => get(plane, "leases.coordination.k8s.io", FLUX_NAMESPACE, LEASE)?.spec?.holderIdentity;

function aReceiver(ns: string) {
  const token = crypto.randomUUID();
  apply(
    plane,
    namespace(ns),
    gitRepository(ns, "app"),
    tokenSecret(ns, "r-token", token),
    receiver(
      ns,
      "r",
      { type: "github", secretRef: { name: "r-token" }, resources: [{ kind: "GitRepository", name: "app" }] },
      token,
    ),
  );
}

describe("two replicas, one Lease", () => {
  test("one leads and writes status; killed, the other takes the Lease once it expires and writes", async () => {
    const first = await replica();
    const firstIdentity = await waitFor("the first replica to lead", () => leads(first), 60_000);
    const second = await replica();
    expect(holder()).toBe(firstIdentity);
    aReceiver(uniqueNamespace("lead"));
    await waitFor("a Receiver Ready, written by the leader", () =>
      first.lines.some((l) => l.msg === "receiver status updated"),
    );
    expect(leads(second)).toBeUndefined();
    expect(second.lines.filter((l) => l.msg === "receiver status updated")).toEqual([]);

    // No release: the Lease must expire (35 s, the Deployment's default) before the other takes it.
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const secondIdentity = await waitFor("the second replica to lead", () => leads(second), 90_000);
    expect(holder()).toBe(secondIdentity);
    const ns = uniqueNamespace("takeover");
    aReceiver(ns);
    await readyPath(plane, ns, "r");
    expect(second.errors()).toEqual([]);
  });

  test("a leader shut down releases the Lease: the other leads within a retry period", async () => {
    const current = running.find((p) => p.proc.exitCode === null && p.proc.signalCode === null && leads(p));
    expect(current).toBeDefined();
    const next = await replica();
    await current!.stop();
    // Released (empty) at once, or already taken by the new replica: no longer the old leader's.
    expect(holder()).not.toBe(leads(current!));
    const nextIdentity = await waitFor("the new replica to lead", () => leads(next), 30_000);
    expect(holder()).toBe(nextIdentity);
    expect(next.errors()).toEqual([]);
  });
});
