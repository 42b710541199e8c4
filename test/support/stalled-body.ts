/**
 * @module test/support/stalled-body
 * A raw connection that sends its headers and the first bytes of a body it never finishes, as a
 * trickling attacker does; `status` is set when the server answers, `closed` when the connection ends.
 */
import { connect } from "node:net";

export interface StalledBody {
  readonly status: number | undefined;
  /** True once the connection closed, answered or not. */
  readonly closed: boolean;
  close(): void;
}

export function stalledBody(baseUrl: string, path: string, declaredBytes: number): StalledBody {
  const { port } = new URL(baseUrl);
  const socket = connect(Number(port), "127.0.0.1");
  const conn = { status: undefined as number | undefined, closed: false, close: () => socket.destroy() };
  socket.on("error", () => {});
  socket.on("close", () => {
    conn.closed = true;
  });
  socket.on("data", (chunk) => {
    const match = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString("latin1"));
    if (match && conn.status === undefined) conn.status = Number(match[1]);
  });
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n` +
      `X-Hub-Signature-256: sha256=${"0".repeat(64)}\r\nContent-Length: ${declaredBytes}\r\n\r\n{"ref":`,
  );
  return conn;
}
