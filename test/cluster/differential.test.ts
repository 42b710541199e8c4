/**
 * notification-controller as the oracle: the cases of differential-cases.ts (upstream's 37
 * handler cases, GitHub's real payloads, the spec's refusals) made and sent once to Flux's
 * notification-controller and once to fluxhook, on the tier's kube-apiserver, each controller
 * watching only its own namespace. Every difference in what they did is printed in one table,
 * and each must be one README lists on purpose ("Differences from notification-controller, on
 * purpose"); a README row that no difference matches any more fails too, so the list stays true.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startController, type ControllerProcess } from "./controllers";
import { CASES, GROUP_FLAGS, type DiffCase, type Group } from "./differential-cases";
import {
  ABSENT,
  barrier,
  compareMetrics,
  mutate,
  observe,
  send,
  setUp,
  waitSettled,
  type Observed,
  type Sent,
  type Side,
} from "./differential";
import {
  type Difference,
  formatDifferences,
  listedDifferences,
  listingOf,
  SIDES,
  type SideName,
} from "./differences-table";
import { deleteAllReceivers, installFlux, startFluxhookProcess, type FluxhookProcess } from "./flux";
import { controlPlane, type ControlPlane } from "./plane";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";

let plane: ControlPlane;
let issuer: TokenIssuer;
const processes: { stop(): Promise<void> }[] = [];
beforeAll(async () => {
  plane = await controlPlane();
  installFlux(plane);
  issuer = await startTokenIssuer();
  processes.push(issuer);
});
afterAll(async () => {
  for (const p of processes) await p.stop();
  await deleteAllReceivers(plane);
});

/** How long a side may take to settle every Receiver of a phase (a side that never does is a difference). */
const SETTLE_MS = 60_000;

async function startSides(group: Group, run: string, issuer: TokenIssuer): Promise<Record<SideName, Side>> {
  const short = group === "default" ? "d" : "x";
  const ns = (side: string) => `diff-${side}-${short}-${run}`;
  const nc = await startController(plane, "notification-controller", {
    namespace: ns("nc"),
    args: GROUP_FLAGS[group],
  });
  processes.push(nc);
  const fh: FluxhookProcess = await startFluxhookProcess(plane, {
    deploymentArgs: false,
    args: ["--watch-all-namespaces=false", "--status-updates=true", "--log-encoding=json", ...GROUP_FLAGS[group]],
    env: { RUNTIME_NAMESPACE: ns("fh") },
  });
  processes.push(fh);
  const side = (name: SideName, p: ControllerProcess | FluxhookProcess, code: string): Side => ({
    name,
    ns: ns(code),
    other: `${ns(code)}-other`,
    receiverUrl: "receiver" in p.urls ? p.urls.receiver! : (p as FluxhookProcess).urls.receiverAddr,
    metricsUrl: "metrics" in p.urls ? p.urls.metrics : (p as FluxhookProcess).urls.metricsAddr,
    issuer,
  });
  return { "notification-controller": side("notification-controller", nc, "nc"), fluxhook: side("fluxhook", fh, "fh") };
}

/** Each case's answers and annotations, per side: what the comparison is made of. */
const answers: string[] = [];

/** Runs one group's cases on both sides and returns every difference. */
async function runGroup(group: Group, cases: readonly DiffCase[], run: string): Promise<Difference[]> {
  const sides = await startSides(group, run, issuer);
  const both = <T>(f: (side: Side) => Promise<T> | T) =>
    Promise.all(SIDES.map((s) => f(sides[s]))).then(
      (r) => Object.fromEntries(SIDES.map((s, i) => [s, r[i]!])) as Record<SideName, T>,
    );

  await both((side) => setUp(plane, side, cases));
  const first = await both((side) => waitSettled(plane, side, cases, SETTLE_MS));
  await both((side) => mutate(plane, side, cases));
  const second = await both((side) => waitSettled(plane, side, cases, SETTLE_MS));
  await both((side) => barrier(plane, side));

  const sent = { "notification-controller": new Map<string, Sent>(), fluxhook: new Map<string, Sent>() };
  for (const c of cases) for (const s of SIDES) sent[s].set(c.name, await send(plane, sides[s], c));

  // Every Event of the deliveries recorded, every status written, before anything is read.
  await both((side) => barrier(plane, side));
  const observed = await both((side) => observe(plane, side, cases, sent[side.name]));

  const differences: Difference[] = [];
  for (const c of cases) {
    const got = SIDES.map(
      (s) => `${observed[s].get(c.name)!.status} (${sent[s].get(c.name)!.annotated.length} annotated)`,
    );
    answers.push(`${c.name}: ${got[0]} | ${got[1]}`);
    const [nc, fh] = SIDES.map((s): Observed => {
      const unsettled = first[s].includes(c.slug) || second[s].includes(c.slug);
      return {
        ...observed[s].get(c.name)!,
        ...(c.spec ? { settled: unsettled ? `not within ${SETTLE_MS / 1000} s` : "yes" } : {}),
      };
    }) as [Observed, Observed];
    for (const key of new Set([...Object.keys(nc), ...Object.keys(fh)]))
      if ((nc[key] ?? ABSENT) !== (fh[key] ?? ABSENT))
        differences.push({
          case: c.name,
          compared: key,
          values: { "notification-controller": nc[key] ?? ABSENT, fluxhook: fh[key] ?? ABSENT },
        });
  }
  differences.push(...(await compareMetrics(sides, group)));
  return differences;
}

describe("differential: notification-controller and fluxhook on one kube-apiserver", () => {
  test("the same Secrets, Receivers, targets and requests: every difference is one README lists", async () => {
    const run = crypto.randomUUID().slice(0, 6);
    const groups = [...new Set(CASES.map((c) => c.group ?? "default"))];
    const results = await Promise.all(
      groups.map((g) =>
        runGroup(
          g,
          CASES.filter((c) => (c.group ?? "default") === g),
          run,
        ),
      ),
    );
    const differences = results.flat();
    const listed = listedDifferences();
    console.log(`\nanswers, notification-controller | fluxhook:\n${answers.join("\n")}`);
    console.log(
      `\n${differences.length} differences between notification-controller and fluxhook in ${CASES.length} cases:\n${formatDifferences(differences, listed)}\n`,
    );
    const unlisted = differences.filter((d) => !listingOf(d, listed));
    const stale = listed.filter((l) => !differences.some((d) => listingOf(d, [l])));
    expect(unlisted).toEqual([]);
    expect(stale.map((l) => `row ${l.row}: ${l.case} / ${l.compared}`)).toEqual([]);
  }, 900_000);
});
