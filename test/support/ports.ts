/**
 * @module test/support/ports
 * A loopback port nothing listens on, that no port-0 listener will be given meanwhile: for a
 * refused connection, or for a program that takes no port 0 (etcd, kube-apiserver, Flux's
 * controllers).
 */
import { readFileSync } from "node:fs";

/** Below this are well-known and registered services' ports, which a machine may be running. */
const UNUSED_PORTS_FROM = 20_000;

/**
 * The first port of the kernel's ephemeral range: a listen on port 0 (every test server here) is
 * given a port from that range, never one below it, and so is an outgoing connection's local port.
 * Where the kernel does not say (not Linux), Linux's default, below macOS's and Windows' 49152.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low)) return low;
  } catch {}
  return 32_768;
}

/** Whether `port` can be bound on loopback just now (then it is released at once). */
function bindable(port: number): boolean {
  try {
    Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/**
 * A port below the ephemeral range that could be bound just now. A port bound on 0 and released
 * would do only in a process alone: beside parallel test files, or a control plane's outgoing
 * connections, it may be another's a moment later. Chosen at random, so that two callers rarely
 * pick the same one.
 */
export function unusedPort(): number {
  const high = ephemeralLow();
  if (high <= UNUSED_PORTS_FROM) throw new Error(`the ephemeral range starts at ${high}: no port below it is free`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = UNUSED_PORTS_FROM + Math.floor(Math.random() * (high - UNUSED_PORTS_FROM));
    if (bindable(port)) return port;
  }
  throw new Error(`no free port between ${UNUSED_PORTS_FROM} and ${high}`);
}
