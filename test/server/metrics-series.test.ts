/**
 * fluxhook's hot-path series must expose exactly what prom-client's own metrics would: the same
 * observations through both give the same text.
 */
import { expect, test } from "bun:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { GaugeValues, PendingCounts, SeriesHistogram } from "../../server/observe/metrics-series";

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
