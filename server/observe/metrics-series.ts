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

/** Adds `value` to a series' sum and count, and to the first bucket whose bound it does not exceed. */
function recordIn(s: { counts: Float64Array; sum: number; count: number }, buckets: readonly number[], value: number) {
  s.sum += value;
  s.count++;
  for (let i = 0; i < buckets.length; i++) {
    if (value <= buckets[i]!) {
      s.counts[i]!++;
      return;
    }
  }
}

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
    recordIn(s, this.buckets, value);
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

/** A label value as Prometheus' text format writes it (backslash, double quote, newline escaped). */
const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

interface TextSeries {
  /** `k="v",…` of the series, without `le`. */
  readonly labels: string;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram with a series per object (one per Receiver), written in Prometheus' text format by
 * itself rather than through prom-client, which built ~117 MB of objects and strings to format
 * 10,000 series (14 MB of text, 300 ms a scrape): here a scrape builds the text and little else.
 * The text is what prom-client writes for a Histogram (a test compares them).
 */
export class TextHistogram {
  readonly #series = new Map<string, TextSeries>();
  readonly #header: string;

  constructor(
    readonly name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    this.#header = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
  }

  /** Records `value` in the series `key` (whose labels are built only the first time). */
  observe(key: string, labels: () => Labels, value: number): void {
    let s = this.#series.get(key);
    if (!s) {
      const text = Object.entries(labels())
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      s = { labels: text, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    recordIn(s, this.buckets, value);
  }

  remove(key: string): void {
    this.#series.delete(key);
  }

  /** The metric in Prometheus' text format (its HELP and TYPE lines even with no series, as prom-client). */
  expose(): string {
    const parts = [this.#header];
    for (const s of this.#series.values()) parts.push(this.#lines(s));
    return parts.join("");
  }

  #lines(s: TextSeries): string {
    let out = "";
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += s.counts[i]!;
      out += `${this.name}_bucket{le="${this.buckets[i]}",${s.labels}} ${cumulative}\n`;
    }
    out += `${this.name}_bucket{le="+Inf",${s.labels}} ${s.count}\n`;
    out += `${this.name}_sum{${s.labels}} ${s.sum}\n`;
    out += `${this.name}_count{${s.labels}} ${s.count}\n`;
    return out;
  }
}
