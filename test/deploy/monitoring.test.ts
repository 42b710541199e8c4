/**
 * deploy/monitoring's dashboard and alerting rules query only what fluxhook exports: every metric
 * name in their PromQL, and every label their selectors match on, is checked against a real scrape
 * of a running server (the test API server, a Ready Receiver, an accepted and a rejected delivery).
 * With promtool installed, the rules also pass `promtool check rules`, and `promtool test rules`
 * shows the leader alerts firing: no leader among the pods, and no pod at all (absent()).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { githubExample } from "../support/payloads";
import { PROMTOOL, promtool } from "../support/promtool";
import { startStack, type Stack } from "../support/stack";
import { DEPLOY } from "./kustomize";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const MONITORING = join(DEPLOY, "monitoring");
const TOKEN = "monitoring-token";
const NS = "monitoring";
const push = githubExample("push");

/** Labels Prometheus attaches from the scrape target (the PodMonitor), not the exporter. */
const TARGET_LABELS = new Set(["namespace", "pod", "container", "job", "instance", "endpoint", "service"]);
const PROMQL_KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
]);

export interface Selector {
  readonly metric: string;
  readonly labels: readonly string[];
}

/**
 * The metric selectors of a PromQL expression: each metric name with the label names it matches on.
 * Enough PromQL for dashboards and rules (functions, aggregations with by/without, ranges, binary
 * operators); Grafana's `$variables` appear only inside strings and ranges, which are dropped.
 */
export function selectorsOf(expr: string): Selector[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const out: Selector[] = [];
  for (const m of text.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = m;
    if (call || PROMQL_KEYWORDS.has(name!)) continue;
    // A number's exponent (1e3) or a duration is not a name: names never follow a digit or a dot.
    const before = text[m.index! - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue;
    const labels = [...(matchers ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]!);
    out.push({ metric: name!, labels });
  }
  return out;
}

/** A scrape's metric families: name → type and the label names its samples carry. */
function families(scrape: string): Map<string, { type: string; labels: Set<string> }> {
  const found = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of scrape.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) found.set(type[1]!, { type: type[2]!, labels: new Set() });
  }
  for (const line of scrape.split("\n")) {
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!sample) continue;
    const family = familyOf(found, sample[1]!);
    for (const l of (sample[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) family?.labels.add(l[1]!);
  }
  return found;
}

/** The family a sample or selector name belongs to (a histogram's _bucket, _sum and _count). */
function familyOf<T extends { type: string }>(found: Map<string, T>, name: string): T | undefined {
  if (found.has(name)) return found.get(name);
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const family = base === undefined ? undefined : found.get(base);
  return family && (family.type === "histogram" || family.type === "summary") ? family : undefined;
}

interface Query {
  readonly where: string;
  readonly expr: string;
}

function dashboardQueries(): Query[] {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, "dashboards/fluxhook.json"), "utf8"));
  const queries: Query[] = [];
  for (const panel of dashboard.panels)
    for (const target of panel.targets ?? []) queries.push({ where: `dashboard "${panel.title}"`, expr: target.expr });
  for (const variable of dashboard.templating.list)
    if (typeof variable.definition === "string" && variable.type === "query") {
      const inner = /^label_values\((.*),\s*\w+\)$/.exec(variable.definition)?.[1];
      if (inner) queries.push({ where: `dashboard variable ${variable.name}`, expr: inner });
    }
  return queries;
}

const rule = parseYaml(readFileSync(join(MONITORING, "prometheusrule.yaml"), "utf8"));
function ruleQueries(): Query[] {
  return rule.spec.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) =>
    g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
  );
}

let stack: Stack;
let scrape: string;
beforeAll(async () => {
  stack = await startStack();
  const path = await stack.readyReceiver(NS, "github", {
    type: "github",
    token: TOKEN,
    targets: [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }],
  });
  for (const token of [TOKEN, "wrong"])
    await stack.post(path, {
      headers: githubHeaders(token, push, { delivery: crypto.randomUUID() }),
      body: push,
    });
  scrape = await (await fetch(`${stack.fluxhook.metricsUrl}/metrics`)).text();
});
afterAll(() => stack?.stop());

describe("selectorsOf reads PromQL", () => {
  test.each<[string, Selector[]]>([
    [
      'max by (namespace) (fluxhook_receivers{ready="false"}) > 0',
      [{ metric: "fluxhook_receivers", labels: ["ready"] }],
    ],
    [
      'histogram_quantile(0.99, sum by (le) (rate(gotk_receiver_http_request_duration_seconds_bucket{namespace="$namespace",handler="/hook/"}[$__rate_interval])))',
      [{ metric: "gotk_receiver_http_request_duration_seconds_bucket", labels: ["namespace", "handler"] }],
    ],
    [
      'sum(rate(a_total[10m]) + rate(b_total{x=~"y|z"}[10m])) > 1e3',
      [
        { metric: "a_total", labels: [] },
        { metric: "b_total", labels: ["x"] },
      ],
    ],
    [
      'up{job="a"} unless on (pod) other_metric',
      [
        { metric: "up", labels: ["job"] },
        { metric: "other_metric", labels: [] },
      ],
    ],
  ])("%s", (expr, expected) => {
    expect(selectorsOf(expr)).toEqual(expected);
  });
});

describe("every metric the dashboard and the rules query is one the server exports", () => {
  const queries = [...dashboardQueries(), ...ruleQueries()];

  test("there are queries to check", () => {
    expect(dashboardQueries().length).toBeGreaterThanOrEqual(10);
    expect(ruleQueries().length).toBeGreaterThanOrEqual(6);
  });

  test.each(queries.map((q) => [q.where, q] as const))("%s", (_where, query) => {
    const exported = families(scrape);
    const selectors = selectorsOf(query.expr);
    expect(selectors.length).toBeGreaterThan(0);
    for (const s of selectors) {
      const family = familyOf(exported, s.metric);
      expect({ metric: s.metric, exported: family !== undefined }).toEqual({ metric: s.metric, exported: true });
      const unknown = s.labels.filter(
        (l) => !TARGET_LABELS.has(l) && !family!.labels.has(l) && !(l === "le" && family!.type === "histogram"),
      );
      expect({ metric: s.metric, unknownLabels: unknown }).toEqual({ metric: s.metric, unknownLabels: [] });
    }
  });

  test("a metric the server does not export is caught", () => {
    const exported = families(scrape);
    expect(familyOf(exported, "fluxhook_deliveries_total")).toBeDefined();
    expect(familyOf(exported, "fluxhook_delivery_total")).toBeUndefined();
    expect(familyOf(exported, "gotk_receiver_http_request_duration_seconds_bucket")).toBeDefined();
    expect(familyOf(exported, "fluxhook_receivers_bucket")).toBeUndefined();
  });
});

describe.if(PROMTOOL !== null)("promtool check rules", () => {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-rules-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the PrometheusRule's groups are valid rules", () => {
    const file = join(dir, "rules.yaml");
    writeFileSync(file, stringify({ groups: rule.spec.groups }));
    const r = promtool(["check", "rules", file]);
    expect(r).toMatchObject({ exitCode: 0 });
    expect(r.output).toContain(`SUCCESS: ${ruleQueries().length} rules found`);
  });

  /** The alert as promtool expects it firing: the rule's labels (plus `labels`) and its annotations. */
  const firing = (name: string, labels: Record<string, string>) => {
    const r = rule.spec.groups
      .flatMap((g: { rules: Record<string, any>[] }) => g.rules)
      .find((x: { alert: string }) => x.alert === name);
    if (!r) throw new Error(`the PrometheusRule has no alert ${name}`);
    return { exp_labels: { ...r.labels, ...labels }, exp_annotations: r.annotations };
  };

  test.each([
    {
      name: "every pod gone: FluxhookDown fires after 5 minutes, FluxhookNoLeader cannot",
      series: [],
      alerts: { "4m": { FluxhookDown: [] }, "6m": { FluxhookDown: [{}], FluxhookNoLeader: [] } },
    },
    {
      name: "pods up, none the leader: FluxhookNoLeader fires, FluxhookDown does not",
      series: [
        {
          series: `fluxhook_runtime_info{namespace="flux-system",pod="fluxhook-0",runtime="bun",version="1"}`,
          values: "1x10",
        },
        {
          series: `leader_election_master_status{namespace="flux-system",pod="fluxhook-0",name="fluxhook-leader-election"}`,
          values: "0x10",
        },
      ],
      alerts: {
        "6m": { FluxhookDown: [], FluxhookNoLeader: [{ namespace: "flux-system" }] },
      },
    },
    {
      name: "a pod up and leading: neither fires",
      series: [
        {
          series: `fluxhook_runtime_info{namespace="flux-system",pod="fluxhook-0",runtime="bun",version="1"}`,
          values: "1x10",
        },
        {
          series: `leader_election_master_status{namespace="flux-system",pod="fluxhook-0",name="fluxhook-leader-election"}`,
          values: "1x10",
        },
      ],
      alerts: { "6m": { FluxhookDown: [], FluxhookNoLeader: [] } },
    },
  ])("promtool test rules: $name", ({ series, alerts }) => {
    const rules = join(dir, "rules.yaml");
    writeFileSync(rules, stringify({ groups: rule.spec.groups }));
    const tests = join(dir, "tests.yaml");
    writeFileSync(
      tests,
      stringify({
        rule_files: [rules],
        evaluation_interval: "1m",
        tests: [
          {
            interval: "1m",
            input_series: series,
            alert_rule_test: Object.entries(alerts).flatMap(([evalTime, byName]) =>
              Object.entries(byName as Record<string, Record<string, string>[]>).map(([alertname, exp]) => ({
                eval_time: evalTime,
                alertname,
                exp_alerts: exp.map((labels) => firing(alertname, labels)),
              })),
            ),
          },
        ],
      }),
    );
    const r = promtool(["test", "rules", tests]);
    expect({ exitCode: r.exitCode, output: r.exitCode === 0 ? "" : r.output }).toEqual({ exitCode: 0, output: "" });
  });
});
