/**
 * The senders of scenario (7), in their own process so their work does not delay the probes:
 * `perShape` concurrent senders of each costly shape, each posting its body again as soon as it
 * is answered, for `seconds`. It prints `{"ready": true}` once its bodies are built, starts on a
 * `{"cmd": "run"}` line on stdin, and answers it with the statuses per shape (bench/lib/proc.ts's
 * JsonProcess protocol).
 *
 *   bun bench/load/abuse.ts '{"url": "...", "targets": [...], "perShape": 8, "seconds": 10}'
 */
import { abuseBody, type AbuseShape, type AbuseTarget } from "../lib/abuse";

const { url, targets, perShape, seconds } = JSON.parse(process.argv[2]!) as {
  url: string;
  targets: AbuseTarget[];
  perShape: number;
  seconds: number;
};

const bodies = new Map<AbuseShape, Uint8Array<ArrayBuffer>>();
for (const t of targets) if (!bodies.has(t.shape)) bodies.set(t.shape, new TextEncoder().encode(abuseBody(t.shape)));

console.log(JSON.stringify({ ready: true }));
for await (const _line of console) break; // the run command

const until = performance.now() + seconds * 1000;
const statuses: Record<string, Record<string, number>> = {};
const senders: Promise<void>[] = [];
for (const shape of bodies.keys()) {
  const mine = targets.filter((t) => t.shape === shape);
  for (let i = 0; i < perShape; i++) {
    const target = mine[i % mine.length]!;
    senders.push(
      (async () => {
        while (performance.now() < until) {
          let status = "error";
          try {
            const res = await fetch(url + target.path, {
              method: "POST",
              headers: target.headers,
              body: bodies.get(shape)!,
              signal: AbortSignal.timeout(15_000),
            });
            await res.arrayBuffer();
            status = String(res.status);
          } catch {
            // counted as an error
          }
          const counts = (statuses[shape] ??= {});
          counts[status] = (counts[status] ?? 0) + 1;
        }
      })(),
    );
  }
}
await Promise.all(senders);
console.log(JSON.stringify({ ok: true, statuses }));
process.exit(0);
