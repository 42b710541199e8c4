/**
 * The differential suite's machinery: one side is a Receiver controller (notification-controller
 * or fluxhook) watching only its own namespace of the tier's kube-apiserver; the same cases are
 * made on both sides, the same requests sent, and what each side did is observed and compared:
 * status codes, which targets got a new requestedAt, the Receiver's conditions, webhookPath and
 * observedGeneration, its Events' type and reason, and the metric names and labels.
 *
 * Each side writes only its own Receivers' status (each controller runs with
 * --watch-all-namespaces=false in its namespace), so the two never share an object.
 *
 * "Settled" is decided without knowing what either side should do: a Receiver has settled when
 * its controller has observed its latest generation (status.observedGeneration, or its Ready
 * condition's); a barrier (a new Secret, then a new Receiver using it, Ready with an Event)
 * proves a side has caught up with everything made before it, since each side can only see the
 * barrier's Secret after the earlier changes in the same watch.
 */
import { webhookPath } from "../../shared";
import { waitFor } from "../support/wait";
import type { TokenIssuer } from "../support/tokens";
import { type CaseContext, type DiffCase, sign, TOKEN } from "./differential-cases";
import { type Difference, SIDES, type SideName } from "./differences-table";
import { apply, gitRepository, namespace, type KubeObject } from "./flux";
import type { ControlPlane } from "./plane";

/** One Receiver controller under comparison, and the namespaces it was given. */
export interface Side {
  readonly name: SideName;
  readonly ns: string;
  readonly other: string;
  /** http://127.0.0.1:<port> of its receiver and metrics listeners. */
  readonly receiverUrl: string;
  readonly metricsUrl: string;
  /** The OIDC issuer both sides' generic-oidc Receivers trust. */
  readonly issuer: TokenIssuer;
}

const RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1";
const REQUESTED_AT = "reconcile.fluxcd.io/requestedAt";
/** The kinds the cases annotate, with their API collection. */
const TARGET_KINDS: Record<string, string> = {
  GitRepository: "/apis/source.toolkit.fluxcd.io/v1",
  ImageRepository: "/apis/image.toolkit.fluxcd.io/v1",
  Kustomization: "/apis/kustomize.toolkit.fluxcd.io/v1",
};

function contextOf(side: Side, c: DiffCase): CaseContext {
  return {
    ns: side.ns,
    other: side.other,
    name: c.slug,
    n: (suffix) => `${c.slug}-${suffix}`,
    issuer: side.issuer,
  };
}

/** The token a sender of this case signs with and computes the path from. */
function tokenOf(c: DiffCase): string {
  if (c.pathToken !== undefined) return c.pathToken;
  return c.secret === "none" || c.secret === undefined ? TOKEN : (c.secret.token ?? TOKEN);
}

async function api<T = any>(plane: ControlPlane, path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${plane.url}${path}`, { ...init, tls: plane.adminTls });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

function receiverObject(
  ctx: CaseContext,
  spec: Record<string, unknown>,
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: "notification.toolkit.fluxcd.io/v1",
    kind: "Receiver",
    metadata: { name: ctx.name, namespace: ctx.ns, ...(annotations ? { annotations } : {}) },
    spec: spec.type === "generic-oidc" ? spec : { secretRef: { name: ctx.n("token") }, ...spec },
  };
}

/** The objects one side makes for a case: its Secret, targets and Receiver. */
function objectsOf(side: Side, c: DiffCase): KubeObject[] {
  const ctx = contextOf(side, c);
  const out: KubeObject[] = [];
  if (c.secret !== "none")
    out.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: ctx.n("token"), namespace: ctx.ns, ...(c.secretLabels ? { labels: c.secretLabels } : {}) },
      stringData: c.secret ?? { token: TOKEN },
    });
  out.push(...(c.targets ? c.targets(ctx) : [gitRepository(ctx.ns, ctx.n("repo"))]));
  if (c.spec) out.push(receiverObject(ctx, c.spec(ctx), c.annotations));
  return out;
}

/** Makes the side's namespaces and every case's objects. */
export function setUp(plane: ControlPlane, side: Side, cases: readonly DiffCase[]): void {
  apply(plane, namespace(side.ns), namespace(side.other));
  apply(plane, ...cases.flatMap((c) => objectsOf(side, c)));
}

/** Applies each case's `afterReady`: the Secret deleted, or the Receiver's spec changed. */
export function mutate(plane: ControlPlane, side: Side, cases: readonly DiffCase[]): void {
  for (const c of cases) {
    const ctx = contextOf(side, c);
    if (c.afterReady?.deleteSecret) plane.kubectl(["delete", "secret", "-n", ctx.ns, ctx.n("token")]);
    if (c.afterReady?.spec) apply(plane, receiverObject(ctx, c.afterReady.spec(ctx), c.annotations));
  }
}

function settled(r: KubeObject): boolean {
  const generation = r.metadata.generation as number;
  const ready = (r.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
  if (r.status?.observedGeneration === generation || ready?.observedGeneration === generation) return true;
  // A Receiver suspended before it was ever reconciled: its controller only adds the finalizer.
  return r.spec?.suspend === true && ((r.metadata.finalizers as string[] | undefined) ?? []).length > 0;
}

/**
 * Waits until every case Receiver of the side has settled, or the deadline passes; returns the
 * names still unsettled (a side that never settles one is a difference the comparison shows).
 */
export async function waitSettled(
  plane: ControlPlane,
  side: Side,
  cases: readonly DiffCase[],
  deadlineMs = 60_000,
): Promise<string[]> {
  const names = new Set(cases.filter((c) => c.spec).map((c) => c.slug));
  let pending: string[] = [...names];
  try {
    await waitFor(
      `${side.name}'s Receivers to settle`,
      async () => {
        const list = await api<{ items: KubeObject[] }>(plane, `${RECEIVERS}/namespaces/${side.ns}/receivers`);
        pending = [...names].filter((n) => {
          const r = list.items.find((i) => i.metadata.name === n);
          return !r || !settled(r);
        });
        return pending.length === 0;
      },
      deadlineMs,
    );
  } catch {
    // reported by the caller
  }
  return pending;
}

/** Barriers made on each side: the n-th barrier has the same name on both. */
const barriers = new Map<string, number>();

/**
 * A barrier on one side: a new Secret, then a Receiver using it, Ready with an Event on it. The
 * side saw the Secret after every earlier Secret change in the same watch, and recorded the
 * Receiver's Event after the Events of every delivery answered before.
 */
export async function barrier(plane: ControlPlane, side: Side): Promise<void> {
  const count = (barriers.get(side.ns) ?? 0) + 1;
  barriers.set(side.ns, count);
  const name = `zz-barrier-${count}`;
  apply(plane, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `${name}-token`, namespace: side.ns },
    stringData: { token: TOKEN },
  });
  apply(
    plane,
    receiverObject(
      { ns: side.ns, other: side.other, name, n: (s) => `${name}-${s}`, issuer: side.issuer },
      {
        type: "generic",
        resources: [{ kind: "GitRepository", name: `${name}-repo` }],
      },
    ),
  );
  await waitFor(
    `${side.name}: barrier ${name} Ready with an Event`,
    async () => {
      const r = await api<KubeObject>(plane, `${RECEIVERS}/namespaces/${side.ns}/receivers/${name}`);
      const ready = (r.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
      if (ready?.status !== "True") return false;
      return (await eventsOf(plane, side)).has(name);
    },
    60_000,
  );
}

/** The requestedAt of every target of the side (both namespaces), by `namespace/kind/name`. */
async function requestedAts(plane: ControlPlane, side: Side): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const ns of [side.ns, side.other])
    for (const [kind, base] of Object.entries(TARGET_KINDS)) {
      const plural = `${kind.toLowerCase().replace(/y$/, "ie")}s`;
      const list = await api<{ items: KubeObject[] }>(plane, `${base}/namespaces/${ns}/${plural}`);
      for (const o of list.items)
        out.set(
          `${ns === side.ns ? "" : "other/"}${kind}/${o.metadata.name}`,
          (o.metadata.annotations as Record<string, string> | undefined)?.[REQUESTED_AT],
        );
    }
  return out;
}

/** Every Event on the side's Receivers, by Receiver name: distinct `type reason` pairs. */
async function eventsOf(plane: ControlPlane, side: Side): Promise<Map<string, Set<string>>> {
  const list = await api<{ items: any[] }>(plane, `/api/v1/namespaces/${side.ns}/events`);
  const out = new Map<string, Set<string>>();
  for (const e of list.items) {
    if (e.involvedObject?.kind !== "Receiver") continue;
    const name = e.involvedObject.name as string;
    if (!out.has(name)) out.set(name, new Set());
    out.get(name)!.add(`${e.type} ${e.reason}`);
  }
  return out;
}

/** What a case's requests got from one side: each answer's status, and the targets annotated meanwhile. */
export interface Sent {
  readonly statuses: readonly number[];
  readonly annotated: readonly string[];
}

/**
 * Sends a case's requests to one side, in order, and names every target of the side whose
 * requestedAt changed while they were answered (every side annotates before it answers).
 */
export async function send(plane: ControlPlane, side: Side, c: DiffCase): Promise<Sent> {
  const ctx = contextOf(side, c);
  const token = tokenOf(c);
  const receiverPath = webhookPath(token, c.slug, side.ns);
  const before = await requestedAts(plane, side);
  const statuses: number[] = [];
  for (const r of c.requests) {
    const headers: Record<string, string> = { ...r.headers };
    for (const s of r.sign ?? []) headers[s.header] = sign(s, token, r.body ?? "");
    if (r.bearer) headers.Authorization = `Bearer ${await r.bearer(side.issuer)}`;
    const path = r.path ? r.path(ctx, receiverPath) : receiverPath;
    const res = await fetch(`${side.receiverUrl}${path}`, {
      method: r.method ?? "POST",
      headers,
      // Bytes, so that fetch adds no Content-Type of its own.
      ...(r.body === undefined ? {} : { body: new TextEncoder().encode(r.body) }),
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  const after = await requestedAts(plane, side);
  const annotated = [...after].filter(([key, value]) => value !== before.get(key)).map(([key]) => key);
  return { statuses, annotated: annotated.sort() };
}

/** What one side did in one case, as the strings compared. */
export type Observed = Record<string, string>;

/** The value a side has for something it did not report (an Event it did not record, a condition it has not). */
export const ABSENT = "absent";

/**
 * Turns a side's namespaces and the case's webhook digest into names both sides share, so that
 * only what differs in substance remains.
 */
function neutral(side: Side, c: DiffCase, text: string): string {
  const digest = webhookPath(tokenOf(c), c.slug, side.ns).slice("/hook/".length);
  return text
    .replaceAll(digest, "<sha256(token+name+namespace)>")
    .replaceAll(side.other, "<other namespace>")
    .replaceAll(side.ns, "<namespace>");
}

export async function observe(
  plane: ControlPlane,
  side: Side,
  cases: readonly DiffCase[],
  sent: Map<string, Sent>,
): Promise<Map<string, Observed>> {
  const events = await eventsOf(plane, side);
  const list = await api<{ items: KubeObject[] }>(plane, `${RECEIVERS}/namespaces/${side.ns}/receivers`);
  const out = new Map<string, Observed>();
  for (const c of cases) {
    const o: Observed = {};
    const s = sent.get(c.name);
    o.status = s ? s.statuses.join(", ") : "not sent";
    o.annotated = s?.annotated.length ? s.annotated.join(", ") : "none";
    const r = list.items.find((i) => i.metadata.name === c.slug);
    if (c.spec) {
      if (!r) o.receiver = "absent";
      const conditions = (r?.status?.conditions ?? []) as {
        type: string;
        status: string;
        reason: string;
        message: string;
      }[];
      for (const type of new Set(["Ready", "Reconciling", "Stalled", ...conditions.map((x) => x.type)])) {
        const cond = conditions.find((x) => x.type === type);
        o[`condition ${type}`] = cond ? neutral(side, c, `${cond.status} ${cond.reason}: ${cond.message}`) : "absent";
      }
      o.webhookPath = r?.status?.webhookPath === undefined ? "absent" : neutral(side, c, `"${r.status.webhookPath}"`);
      o.observedGeneration =
        r?.status?.observedGeneration === undefined
          ? "absent"
          : `${r.status.observedGeneration} (generation ${r.metadata.generation})`;
      for (const event of events.get(c.slug) ?? []) o[`Event ${event}`] = "recorded";
    }
    out.set(c.name, o);
  }
  return out;
}

// ---- metrics

interface Family {
  readonly type: string;
  readonly labels: Map<string, Set<string>>;
}

/** Prometheus text as metric families: each with its label names and the values seen of each. */
function parseMetrics(text: string, normalise: (value: string) => string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1]!, { type: type[2]!, labels: new Map() });
  }
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    let name = m[1]!;
    if (!families.has(name)) name = name.replace(/_(bucket|sum|count|total|created)$/, "");
    const family = families.get(name);
    if (!family) continue;
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const [, label, value] = pair;
      if (label === "le" || label === "quantile") continue;
      if (!family.labels.has(label!)) family.labels.set(label!, new Set());
      family.labels.get(label!)!.add(normalise(value!));
    }
  }
  return families;
}

/**
 * Labels whose values are not compared: `code` (every answer's status is compared per case),
 * and values that name a process (pod names, listener ports).
 */
const VALUES_NOT_COMPARED = new Set(["code", "host", "pod", "instance", "id"]);

export async function compareMetrics(sides: Record<SideName, Side>, group: string): Promise<Difference[]> {
  const scraped = {} as Record<SideName, Map<string, Family>>;
  for (const name of SIDES) {
    const side = sides[name];
    const text = await (await fetch(`${side.metricsUrl}/metrics`)).text();
    scraped[name] = parseMetrics(text, (v) =>
      v.replaceAll(side.other, "<other namespace>").replaceAll(side.ns, "<namespace>"),
    );
  }
  const out: Difference[] = [];
  const where = `metrics${group === "default" ? "" : ` (${group})`}`;
  const families = new Set(SIDES.flatMap((s) => [...scraped[s].keys()]));
  for (const family of [...families].sort()) {
    const [nc, fh] = SIDES.map((s) => scraped[s].get(family));
    if (!nc || !fh) {
      out.push({
        case: where,
        compared: family,
        values: { "notification-controller": nc ? "present" : "absent", fluxhook: fh ? "present" : "absent" },
      });
      continue;
    }
    const names = (f: Family) => [...f.labels.keys()].sort().join(", ") || "none";
    if (names(nc) !== names(fh)) {
      out.push({
        case: where,
        compared: `${family} labels`,
        values: { "notification-controller": names(nc), fluxhook: names(fh) },
      });
      continue;
    }
    for (const label of nc.labels.keys()) {
      if (VALUES_NOT_COMPARED.has(label)) continue;
      const values = (f: Family) => [...(f.labels.get(label) ?? [])].sort().join(", ");
      if (values(nc) !== values(fh))
        out.push({
          case: where,
          compared: `${family}{${label}}`,
          values: { "notification-controller": values(nc), fluxhook: values(fh) },
        });
    }
  }
  return out;
}
