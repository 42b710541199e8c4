/**
 * @module server/observe/metrics-series
 * Hot-path recording for the per-request metrics. prom-client hashes a metric's label set on
 * every observation, too costly per request (bench/README.md). Here each series is looked up once by a string key the caller builds, and plain
 * numbers are updated; prom-client still does the exposition: the histogram below implements its
 * metric interface, and the counter and gauge helpers hand their totals to prom-client metrics in
 * their `collect()`, at scrape time.
 */
import type { Counter, Gauge } from "prom-client";

type Labels = Record<string, string>;

interface HistogramSeries {
  readonly labels: Labels;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram in Prometheus' text format, registered with `registry.registerMetric`. */
export class SeriesHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  /** Records `value` in the series `key` (whose labels are built only the first time). */
  observe(key: string, labels: () => Labels, value: number): void {
    let s = this.#series.get(key);
    if (!s) {
      s = { labels: labels(), counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    s.sum += value;
    s.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        s.counts[i]!++;
        break;
      }
    }
  }

  async get() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...s.labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf", ...s.labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.#series.clear();
  }
}

/** Counts kept by key and added to a prom-client Counter when it is scraped. */
export class PendingCounts {
  readonly #pending = new Map<string, { labels: Labels; n: number }>();

  inc(key: string, labels: () => Labels): void {
    const p = this.#pending.get(key);
    if (p) p.n++;
    else this.#pending.set(key, { labels: labels(), n: 1 });
  }

  /** Call from the Counter's collect(). */
  flushInto(counter: Counter<string>): void {
    for (const p of this.#pending.values()) if (p.n > 0) counter.inc(p.labels, p.n);
    for (const p of this.#pending.values()) p.n = 0;
  }
}

/** Gauge values kept by key and set on a prom-client Gauge when it is scraped. */
export class GaugeValues {
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  add(key: string, labels: () => Labels, delta: number): void {
    const v = this.#values.get(key);
    if (v) v.value += delta;
    else this.#values.set(key, { labels: labels(), value: delta });
  }

  /** Call from the Gauge's collect(). */
  setInto(gauge: Gauge<string>): void {
    for (const v of this.#values.values()) gauge.set(v.labels, v.value);
  }
}
