/**
 * @module server/observe/recent-deliveries
 * The last deliveries of each receiver, like GitHub's "Recent Deliveries" tab, kept in memory and
 * served on the health address as JSON and as a small self-contained HTML page. It answers "did
 * my push arrive, and what happened to it?" without reading logs.
 *
 * Memory is bounded: RECENT_PER_RECEIVER records for each of at most MAX_RECEIVERS receivers
 * (least recently delivered dropped first), each a few hundred bytes. Only deliveries that matched
 * a receiver are kept, so guesses at unknown paths cannot push real records out.
 */

import { targetLabel, type TargetOutcome } from "../targets/annotate";

/** Records kept per receiver: a day of pushes for a busy repository, a screenful on the page. */
export const RECENT_PER_RECEIVER = 20;
/** Receivers tracked at once; beyond it, the one with the oldest delivery is forgotten. */
export const MAX_RECEIVERS = 10_000;

export interface DeliveryRecord {
  readonly time: string;
  readonly receiver: string;
  readonly type: string;
  readonly event: string | undefined;
  readonly deliveryId: string | undefined;
  readonly status: number;
  readonly outcome: string;
  readonly reason: string;
  readonly durationMs: number;
  readonly targets: readonly string[];
}

/** A delivery as kept: its time and targets are worded when the page is read, not per delivery. */
export interface RecentDelivery extends Omit<DeliveryRecord, "time" | "targets"> {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly targets: readonly TargetOutcome[] | undefined;
}

const toRecord = ({ at, targets, ...rest }: RecentDelivery): DeliveryRecord => ({
  time: new Date(at).toISOString(),
  ...rest,
  targets: targets?.map(targetLabel) ?? [],
});

export class RecentDeliveries {
  /** Map iteration order is insertion order: re-inserting on each delivery keeps it an LRU. */
  readonly #byReceiver = new Map<string, RecentDelivery[]>();
  readonly #perReceiver: number;
  readonly #maxReceivers: number;

  constructor(perReceiver = RECENT_PER_RECEIVER, maxReceivers = MAX_RECEIVERS) {
    this.#perReceiver = perReceiver;
    this.#maxReceivers = maxReceivers;
  }

  add(record: RecentDelivery): void {
    const list = this.#byReceiver.get(record.receiver) ?? [];
    this.#byReceiver.delete(record.receiver);
    list.unshift(record);
    if (list.length > this.#perReceiver) list.length = this.#perReceiver;
    this.#byReceiver.set(record.receiver, list);
    if (this.#byReceiver.size > this.#maxReceivers) {
      this.#byReceiver.delete(this.#byReceiver.keys().next().value!);
    }
  }

  /** Newest first, receivers sorted by name. */
  snapshot(): { receiver: string; deliveries: readonly DeliveryRecord[] }[] {
    return [...this.#byReceiver.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([receiver, deliveries]) => ({ receiver, deliveries: deliveries.map(toRecord) }));
  }
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The page: one table per receiver, no scripts and no external assets. */
export function renderDeliveriesPage(snapshot: ReturnType<RecentDeliveries["snapshot"]>): string {
  const sections = snapshot.map(({ receiver, deliveries }) => {
    const rows = deliveries
      .map((d) => {
        const cls = d.status === 200 ? "ok" : d.status >= 500 ? "fail" : "refused";
        return `<tr class="${cls}"><td><time>${escapeHtml(d.time)}</time></td><td>${escapeHtml(d.event ?? "")}</td><td><code>${escapeHtml(d.deliveryId ?? "")}</code></td><td class="status">${d.status}</td><td>${escapeHtml(d.reason)}</td><td>${d.durationMs.toFixed(1)} ms</td><td>${d.targets.map((t) => escapeHtml(t)).join("<br>")}</td></tr>`;
      })
      .join("\n");
    return `<section><h2>${escapeHtml(receiver)} <small>${escapeHtml(deliveries[0]?.type ?? "")}</small></h2>
<table><thead><tr><th>time</th><th>event</th><th>delivery</th><th>status</th><th>reason</th><th>duration</th><th>targets</th></tr></thead>
<tbody>
${rows}
</tbody></table></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fluxhook: recent deliveries</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}small{color:#59636e;font-weight:normal}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d1d9e0;vertical-align:top}
tr.ok .status{color:#1a7f37}tr.refused .status{color:#9a6700}tr.fail .status{color:#d1242f}
code{font-size:12px}p.empty{color:#59636e}td time{white-space:nowrap}
</style></head>
<body><h1>Recent deliveries</h1>
${sections.length ? sections.join("\n") : '<p class="empty">No delivery has reached a receiver yet.</p>'}
</body></html>
`;
}
