/**
 * @module pager
 * Paginated lists (`limit` and `continue`), as the real API server serves them: every page of a
 * list comes from one consistent snapshot at the first page's resourceVersion, the continue
 * token is opaque, `remainingItemCount` says how many are left, and a token whose snapshot is
 * gone (after compact(), as etcd compaction does) is answered 410 Expired.
 */
import { badRequest, KubeApiError } from "./errors";
import type { KubeObject } from "./types";

/** Snapshots kept for lists still being paged; the oldest is dropped beyond it. */
const MAX_SNAPSHOTS = 64;

interface Snapshot {
  readonly query: string;
  readonly resourceVersion: number;
  readonly items: readonly KubeObject[];
}

export interface Page {
  readonly items: KubeObject[];
  readonly resourceVersion: number;
  readonly continue: string | undefined;
  readonly remainingItemCount: number | undefined;
}

export class ListPager {
  readonly #snapshots = new Map<string, Snapshot>();
  #next = 0;

  /**
   * The first page of `items` (the whole list when `limit` is 0 or covers it). `query` names the
   * collection and selectors, so a token cannot continue a different list.
   */
  first(query: string, items: KubeObject[], resourceVersion: number, limit: number): Page {
    if (limit <= 0 || items.length <= limit)
      return { items, resourceVersion, continue: undefined, remainingItemCount: undefined };
    const id = `${++this.#next}`;
    this.#snapshots.set(id, { query, resourceVersion, items });
    if (this.#snapshots.size > MAX_SNAPSHOTS) this.#snapshots.delete(this.#snapshots.keys().next().value!);
    return this.#page(id, this.#snapshots.get(id)!, 0, limit);
  }

  /** The page after a continue token. */
  next(query: string, token: string, limit: number): Page {
    const [id, offsetText] = decode(token);
    const offset = Number(offsetText);
    const snapshot = this.#snapshots.get(id ?? "");
    if (!snapshot) {
      throw new KubeApiError(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
      );
    }
    if (snapshot.query !== query || !Number.isInteger(offset) || offset < 0) throw badRequest("invalid continue token");
    return this.#page(id!, snapshot, offset, limit);
  }

  /** Forgets every snapshot: pending continue tokens now answer 410. */
  expire(): void {
    this.#snapshots.clear();
  }

  #page(id: string, snapshot: Snapshot, offset: number, limit: number): Page {
    const end = limit > 0 ? offset + limit : snapshot.items.length;
    const items = snapshot.items.slice(offset, end);
    const remaining = snapshot.items.length - Math.min(end, snapshot.items.length);
    if (remaining === 0) this.#snapshots.delete(id);
    return {
      items,
      resourceVersion: snapshot.resourceVersion,
      continue: remaining > 0 ? Buffer.from(`${id}:${end}`).toString("base64url") : undefined,
      remainingItemCount: remaining > 0 ? remaining : undefined,
    };
  }
}

function decode(token: string): (string | undefined)[] {
  try {
    return Buffer.from(token, "base64url").toString("utf8").split(":");
  } catch {
    return [];
  }
}
