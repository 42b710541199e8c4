/**
 * @module request-log
 * Every request the server received, for assertions such as "exactly one PATCH reached the
 * GitRepository". Records are added on arrival and completed with the status when answered.
 */

/** How a fault affected a request. */
export type FaultOutcome = "status" | "hang" | "hold" | "drop";

export interface RequestRecord {
  readonly method: string;
  /** URL path, not decoded. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  /** The Accept header (metadata-only requests ask for PartialObjectMetadata there). */
  readonly accept: string | undefined;
  /** HTTP status; 0 while in flight, or when hung/dropped without an answer. */
  status: number;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
  readonly watch: boolean;
  fault?: FaultOutcome;
}

export interface RequestFilter {
  method?: string;
  /** A string matches the path exactly; a RegExp is tested against it. */
  path?: string | RegExp;
  status?: number;
  watch?: boolean;
}

export function matchesRequest(record: RequestRecord, filter: RequestFilter): boolean {
  if (filter.method && filter.method.toUpperCase() !== record.method) return false;
  if (filter.status !== undefined && filter.status !== record.status) return false;
  if (filter.watch !== undefined && filter.watch !== record.watch) return false;
  if (filter.path === undefined) return true;
  return typeof filter.path === "string" ? filter.path === record.path : filter.path.test(record.path);
}

/** A bounded log: past `limit` entries the oldest half is dropped, so a long benchmark cannot exhaust memory. */
export class RequestLog {
  records: RequestRecord[] = [];

  constructor(readonly limit: number) {}

  add(record: RequestRecord): void {
    if (this.limit <= 0) return;
    if (this.records.length >= this.limit) this.records.splice(0, Math.ceil(this.limit / 2));
    this.records.push(record);
  }

  count(filter: RequestFilter = {}): number {
    let n = 0;
    for (const record of this.records) if (matchesRequest(record, filter)) n++;
    return n;
  }

  reset(): void {
    this.records = [];
  }
}
