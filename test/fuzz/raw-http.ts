/**
 * A raw HTTP/1.1 client over a TCP socket, for requests fetch() will not send: repeated headers
 * in a given order, any method or request target, obs-text in values, a body whose framing lies
 * (truncated, chunked badly, oversized), or bytes that are not HTTP at all. One request per
 * connection (`Connection: close`); the answer is whatever arrived before the server closed the
 * connection or the deadline passed.
 */
import { connect } from "node:net";

export interface RawRequest {
  readonly method: string;
  readonly target: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
  /** `length` sends Content-Length, `chunked` splits the body into chunks of `chunkSize`. */
  readonly framing: "length" | "chunked" | "none";
  readonly chunkSize?: number;
}

export interface RawResponse {
  /** 0 when no status line arrived. */
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** How the exchange ended: the server closed it, or the client gave up. */
  readonly ended: "closed" | "timeout" | "error";
}

const latin1 = (s: string) => Buffer.from(s, "latin1");

/** The bytes of a request; header values are written as Latin-1 (obs-text included). */
export function encodeRequest(req: RawRequest, host: string): Buffer {
  const head: string[] = [`${req.method} ${req.target} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  for (const [name, value] of req.headers) head.push(`${name}: ${value}`);
  let body: Buffer = Buffer.from(req.body);
  if (req.framing === "length") head.push(`Content-Length: ${body.length}`);
  else if (req.framing === "chunked") {
    head.push("Transfer-Encoding: chunked");
    const size = Math.max(1, req.chunkSize ?? 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) {
      const chunk = body.subarray(i, i + size);
      parts.push(latin1(`${chunk.length.toString(16)}\r\n`), chunk, latin1("\r\n"));
    }
    parts.push(latin1("0\r\n\r\n"));
    body = Buffer.concat(parts);
  }
  return Buffer.concat([latin1(`${head.join("\r\n")}\r\n\r\n`), body]);
}

/** Parses the first response in `bytes` (status line, headers, body up to Content-Length). */
export function parseResponse(bytes: Buffer, ended: RawResponse["ended"]): RawResponse {
  let text = bytes.toString("latin1");
  // Interim answers (100 Continue) come before the final one.
  while (/^HTTP\/1\.[01] 1\d\d[^\r\n]*\r\n/.test(text) && text.includes("\r\n\r\n")) {
    const skip = text.indexOf("\r\n\r\n") + 4;
    bytes = bytes.subarray(skip);
    text = text.slice(skip);
  }
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
  const headers = new Headers();
  if (!m) return { status: 0, headers, body: "", ended };
  const headEnd = text.indexOf("\r\n\r\n");
  const headText = headEnd < 0 ? text.slice(m[0].length) : text.slice(m[0].length, headEnd);
  for (const line of headText.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let body = headEnd < 0 ? Buffer.alloc(0) : bytes.subarray(headEnd + 4);
  const length = headers.get("content-length");
  if (length !== null && /^\d+$/.test(length)) body = body.subarray(0, Number(length));
  return { status: Number(m[1]), headers, body: body.toString("utf8"), ended };
}

/**
 * Sends `bytes` on a new connection to 127.0.0.1:`port` and collects the answer. `endWrite`
 * half-closes the connection after writing (a client that is done sending).
 */
export function sendRaw(
  port: number,
  bytes: Uint8Array | readonly Uint8Array[],
  options: { timeoutMs?: number; endWrite?: boolean } = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, "127.0.0.1");
    let settled = false;
    const finish = (ended: RawResponse["ended"]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks), ended));
    };
    const timer = setTimeout(() => finish("timeout"), options.timeoutMs ?? 5_000);
    socket.on("connect", () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) socket.write(b as Uint8Array);
      if (options.endWrite) socket.end();
    });
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("end", () => finish("closed"));
    socket.on("close", () => finish("closed"));
    socket.on("error", () => finish("error"));
  });
}
