/**
 * @module server/body
 * Reads a request body with a byte cap enforced while reading: an oversized body, whether it
 * declares its length or streams chunks, is refused as soon as the cap is crossed and is never
 * buffered beyond it.
 */

export type BodyResult =
  | { ok: true; body: Uint8Array }
  | { ok: false; status: 413; reason: string }
  | { ok: false; status: 400; reason: string }
  | { ok: false; status: 408; reason: string };

export const tooLarge = (limit: number) => ({
  ok: false as const,
  status: 413 as const,
  reason: `request body is larger than ${limit} bytes`,
});

/**
 * The most bytes this body can bring, known before reading it: its declared length (over
 * `limit` when the declaration alone shows it is too large), `limit` for a chunked body or an
 * unreadable length, 0 for a request with neither (it has no body).
 */
export function bodyBytesBound(headers: Headers, limit: number): number {
  const declared = headers.get("content-length");
  if (declared !== null) return /^\d+$/.test(declared) ? Number(declared) : limit;
  return headers.has("transfer-encoding") ? limit : 0;
}

/** True when Content-Length alone shows the body is over the cap (refuse before reading). */
export function declaredTooLarge(headers: Headers, limit: number): boolean {
  return bodyBytesBound(headers, limit) > limit;
}

/** A body read that may be called off (protect/guards.ts evicts the oldest reads to make room). */
export interface Evictable {
  evicted: boolean;
  /** Set by readBody while it reads; called when the read is called off. */
  onEvict: (() => void) | undefined;
}

const evictedResult = {
  ok: false as const,
  status: 408 as const,
  reason: "request body not received before newer deliveries needed its place",
};

/**
 * Reads the whole body, refusing it past `limit` bytes (413) or when it has not all arrived
 * within `timeoutMs` (408): a slow sender cannot hold a socket and a slot for long.
 */
export async function readBody(
  request: Request,
  limit: number,
  timeoutMs = Infinity,
  evictable?: Evictable,
): Promise<BodyResult> {
  const headers = request.headers;
  if (declaredTooLarge(headers, limit)) return tooLarge(limit);
  // A declared length within the cap bounds what HTTP framing lets the sender deliver, and a
  // request with neither a length nor chunked framing has no body: either is read in one go,
  // without creating a stream (under Bun, touching request.body first makes reading it slower).
  // Chunked bodies, whose size nobody declared, are counted while they stream.
  const whole = headers.has("content-length") || !headers.has("transfer-encoding");
  if (!whole && !request.body) return { ok: true, body: new Uint8Array(0) };
  if (evictable?.evicted) return evictedResult;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout" | "evicted">((resolve) => {
    if (Number.isFinite(timeoutMs)) timer = setTimeout(() => resolve("timeout"), timeoutMs);
    if (evictable) evictable.onEvict = () => resolve("evicted");
  });
  const timeoutResult = {
    ok: false as const,
    status: 408 as const,
    reason: `request body not received within ${Math.round(timeoutMs / 1000)} s`,
  };

  if (whole) {
    try {
      const read = await Promise.race([request.arrayBuffer(), timedOut]);
      // Answering now makes Bun drop the rest of the body rather than buffer it.
      if (read === "timeout") return timeoutResult;
      if (read === "evicted") return evictedResult;
      // Belt and braces: framing that contradicts the declared length cannot slip past the cap.
      if (read.byteLength > limit) return tooLarge(limit);
      return { ok: true, body: new Uint8Array(read) };
    } catch {
      return { ok: false, status: 400, reason: "request body could not be read" };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  const reader = request.body!.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === "timeout" || next === "evicted") {
        await reader.cancel().catch(() => {});
        return next === "timeout" ? timeoutResult : evictedResult;
      }
      const { done, value } = next;
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return tooLarge(limit);
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, status: 400, reason: "request body could not be read" };
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (chunks.length === 1) return { ok: true, body: chunks[0]! };
  const body = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    body.set(c, offset);
    offset += c.byteLength;
  }
  return { ok: true, body };
}
