/**
 * @module test/support/ports
 * A loopback port nothing listens on, for tests of a refused connection.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Below this are well-known and registered services' ports, which a machine may be running. */
const REFUSED_PORTS_FROM = 20_000;

/**
 * The first port of the kernel's ephemeral range: a listen on port 0 (every test server here) is
 * given a port from that range, never one below it. Where the kernel does not say (not Linux),
 * Linux's default, which is below macOS's and Windows' 49152.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low)) return low;
  } catch {}
  return 32_768;
}

const listenable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

/**
 * A port with nothing listening on it, that stays so while the test connects to it: one below the
 * ephemeral range (so no test server of a parallel run is given it) that could be bound just now.
 * A port bound on 0 and released would do only in a process of its own: there another test file's
 * server may be given it a moment later.
 */
export async function closedPort(): Promise<number> {
  const high = ephemeralLow();
  if (high <= REFUSED_PORTS_FROM) throw new Error(`the ephemeral range starts at ${high}: no port below it to refuse`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = REFUSED_PORTS_FROM + Math.floor(Math.random() * (high - REFUSED_PORTS_FROM));
    if (await listenable(port)) return port;
  }
  throw new Error(`no free port between ${REFUSED_PORTS_FROM} and ${high}`);
}
