/**
 * The benchmark's one table: a row per server and scenario, numbers right-aligned, blanks where a
 * measure does not apply.
 */
export interface Row {
  readonly scenario: string;
  readonly server: string;
  readonly rps?: number;
  /** ms */
  readonly p50?: number | null;
  readonly p99?: number | null;
  readonly errors?: number;
  readonly rssMb?: number;
  /** The server's CPU time (all its threads) per request, median over the rounds. */
  readonly cpuUs?: number;
  readonly patches?: number;
  readonly vsBare?: number;
  readonly vsWebhook?: number;
  readonly note?: string;
}

const COLUMNS: { title: string; cell: (r: Row) => string; left?: boolean }[] = [
  { title: "scenario", cell: (r) => r.scenario, left: true },
  { title: "server", cell: (r) => r.server, left: true },
  { title: "req/s", cell: (r) => (r.rps === undefined ? "" : Math.round(r.rps).toLocaleString("en")) },
  { title: "p50 ms", cell: (r) => (r.p50 == null ? "" : r.p50 < 10 ? r.p50.toFixed(2) : r.p50.toFixed(0)) },
  { title: "p99 ms", cell: (r) => (r.p99 == null ? "" : r.p99 < 10 ? r.p99.toFixed(2) : r.p99.toFixed(0)) },
  { title: "errors", cell: (r) => (r.errors === undefined ? "" : String(r.errors)) },
  { title: "peak RSS MB", cell: (r) => (r.rssMb === undefined ? "" : r.rssMb.toFixed(1)) },
  { title: "CPU µs/req", cell: (r) => (r.cpuUs === undefined ? "" : r.cpuUs.toFixed(0)) },
  {
    title: "PATCHes",
    cell: (r) =>
      r.patches === undefined ? "" : Number.isInteger(r.patches) ? String(r.patches) : r.patches.toFixed(1),
  },
  { title: "× bare", cell: (r) => (r.vsBare === undefined ? "" : r.vsBare.toFixed(2)) },
  { title: "× webhook", cell: (r) => (r.vsWebhook === undefined ? "" : r.vsWebhook.toFixed(1)) },
  { title: "note", cell: (r) => r.note ?? "", left: true },
];

export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((r) => COLUMNS.map((c) => c.cell(r)));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (COLUMNS[i]!.left ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(COLUMNS.map((c) => c.title)), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join(
    "\n",
  );
}
