/**
 * @module server/delivery/body
 * Reads a request body with a byte cap enforced while reading: an oversized body, whether it
 * declares its length or streams chunks, is refused as soon as the cap is crossed and is never
 * buffered beyond it.
 */

export type BodyResult =
  | { ok: true; body: Uint8Array }
  | { ok: false; kind: "too-large" | "rejected" | "too-slow"; status: 413 | 400 | 408; reason: string };

export const tooLarge = (limit: number) => ({
  ok: false as const,
  kind: "too-large" as const,
  status: 413 as const,
  reason: `request body is larger than ${limit} bytes`,
});

const unreadable = {
  ok: false as const,
  kind: "rejected" as const,
  status: 400 as const,
  reason: "request body could not be read",
};

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

/** The abort reason of a read called off to make room for newer deliveries (protect/guards.ts). */
export const EVICTED = new DOMException(
  "request body not received before newer deliveries needed its place",
  "AbortError",
);

/** The abort reason of a read whose body was not in by its deadline (protect/guards.ts). */
export const TIMED_OUT = new DOMException("request body not received in time", "TimeoutError");

/** The answer to a read called off: evicted, or out of time (TIMED_OUT, or any other reason). */
function calledOff(reason: DOMException, timeoutMs: number): BodyResult {
  const text =
    reason === EVICTED ? EVICTED.message : `request body not received within ${Math.round(timeoutMs / 1000)} s`;
  return { ok: false, kind: "too-slow", status: 408, reason: text };
}

/** What can call a read off (an admission's reading, protect/guards.ts). */
export interface CallOff {
  /** Why the read was called off (EVICTED, TIMED_OUT), or undefined while it may go on. */
  readonly calledOff: DOMException | undefined;
  /** Settles with `calledOff` once the read is called off (never, for most reads). */
  readonly whenCalledOff: Promise<DOMException>;
}

/**
 * Reads the whole body, refusing it past `limit` bytes (413), or when `callOff` calls it off first
 * (408). Its callers have refused a declared length over `limit` already (bodyBytesBound), before
 * admitting the request: the admission combines the body timeout with its eviction, so a slow sender cannot hold a
 * socket and a slot for long. `timeoutMs` words the timeout's reason.
 */
export async function readBody(
  request: Request,
  limit: number,
  callOff?: CallOff,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<BodyResult> {
  const headers = request.headers;
  // A declared length within the cap bounds what HTTP framing lets the sender deliver, and a
  // request with neither a length nor chunked framing has no body: either is read in one go,
  // without creating a stream (under Bun, touching request.body first makes reading it slower).
  // Chunked bodies, whose size nobody declared, are counted while they stream.
  const whole = headers.has("content-length") || !headers.has("transfer-encoding");
  if (!whole && !request.body) return { ok: true, body: new Uint8Array(0) };
  if (callOff?.calledOff) return calledOff(callOff.calledOff, timeoutMs);
  const raced = <T>(read: Promise<T>): Promise<T | DOMException> =>
    callOff ? Promise.race([read, callOff.whenCalledOff]) : read;

  if (whole) {
    try {
      const read = await raced(request.arrayBuffer());
      // Answering now makes Bun drop the rest of the body rather than buffer it.
      if (read instanceof DOMException) return calledOff(read, timeoutMs);
      // Belt and braces: framing that contradicts the declared length cannot slip past the cap.
      if (read.byteLength > limit) return tooLarge(limit);
      return { ok: true, body: new Uint8Array(read) };
    } catch {
      return unreadable;
    }
  }

  const reader = request.body!.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await raced(reader.read());
      if (next instanceof DOMException) {
        await reader.cancel().catch(() => {});
        return calledOff(next, timeoutMs);
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
    return unreadable;
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
