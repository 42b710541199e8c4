/**
 * fluxhook's hot-path series must expose exactly what prom-client's own metrics would: the same
 * observations through both give the same text.
 */
import { expect, test } from "bun:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { GaugeValues, PendingCounts, SeriesHistogram, TextHistogram } from "../../server/observe/metrics-series";
import { RECONCILE_BUCKETS } from "../../server/observe/metrics";

const observations: [string, string, number, number][] = [
  ["/hook/", "POST", 200, 0.003],
  ["/hook/", "POST", 200, 0.2],
  ["/hook/", "POST", 400, 12],
  ["/hook/", "GET", 405, 0.0001],
];
const buckets = [0.005, 0.01, 0.1, 1, 10];

test("SeriesHistogram renders as prom-client's Histogram", async () => {
  const theirs = new Registry();
  const h = new Histogram({
    name: "h",
    help: "help",
    labelNames: ["handler", "method", "code"],
    buckets,
    registers: [theirs],
  });
  const ours = new Registry();
  const s = new SeriesHistogram("h", "help", buckets);
  ours.registerMetric(s as never);
  for (const [handler, method, code, v] of observations) {
    h.observe({ handler, method, code: String(code) }, v);
    s.observe(`${handler} ${method} ${code}`, () => ({ handler, method, code: String(code) }), v);
  }
  expect(await ours.metrics()).toBe(await theirs.metrics());
});

test("PendingCounts and GaugeValues render as direct counter and gauge updates", async () => {
  const theirs = new Registry();
  const c = new Counter({ name: "c", help: "help", labelNames: ["k"], registers: [theirs] });
  const g = new Gauge({ name: "g", help: "help", labelNames: ["k"], registers: [theirs] });
  const ours = new Registry();
  const counts = new PendingCounts();
  const values = new GaugeValues();
  new Counter({
    name: "c",
    help: "help",
    labelNames: ["k"],
    registers: [ours],
    collect() {
      counts.flushInto(this);
    },
  });
  new Gauge({
    name: "g",
    help: "help",
    labelNames: ["k"],
    registers: [ours],
    collect() {
      values.setInto(this);
    },
  });
  for (const k of ["a", "b", "a"]) {
    c.inc({ k });
    counts.inc(k, () => ({ k }));
    g.inc({ k }, 2);
    values.add(k, () => ({ k }), 2);
  }
  g.dec({ k: "a" }, 1);
  values.add("a", () => ({ k: "a" }), -1);
  expect(await ours.metrics()).toBe(await theirs.metrics());
  // A second scrape adds nothing twice.
  expect(await ours.metrics()).toBe(await theirs.metrics());
});

test("TextHistogram writes what prom-client's Histogram writes, Flux's reconcile buckets, and forgets a removed series", async () => {
  const theirs = new Registry();
  const name = "gotk_reconcile_duration_seconds";
  const h = new Histogram({
    name,
    help: "help",
    labelNames: ["kind", "name", "namespace"],
    buckets: RECONCILE_BUCKETS,
    registers: [theirs],
  });
  const ours = new TextHistogram(name, "help", RECONCILE_BUCKETS);
  // Below the first bucket, between buckets, on a bucket's bound, above the last; a name that needs escaping.
  const cases: [string, number][] = [
    ["a", 0.001],
    ["a", 0.5],
    ["b", 0.01],
    ["b", 5000],
    ['we"ird\\name', 3],
    ["gone", 1],
  ];
  for (const [receiver, v] of cases) {
    const labels = { kind: "Receiver", name: receiver, namespace: "ns" };
    h.observe(labels, v);
    ours.observe(`ns/${receiver}`, () => labels, v);
  }
  h.remove({ kind: "Receiver", name: "gone", namespace: "ns" });
  ours.remove("ns/gone");
  expect(ours.expose()).toBe(await theirs.metrics());
  // No series yet: the HELP and TYPE lines alone, as prom-client writes them.
  const empty = new Registry();
  new Histogram({ name, help: "help", labelNames: ["kind"], buckets: RECONCILE_BUCKETS, registers: [empty] });
  expect(new TextHistogram(name, "help", RECONCILE_BUCKETS).expose()).toBe(await empty.metrics());
});
