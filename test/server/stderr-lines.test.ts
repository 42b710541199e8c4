/**
 * The logger's stderr sink (server/runtime/log.ts stderrLines) when stderr is a pipe read slowly,
 * as a container runtime reads it under a burst: Bun makes fd 2 non-blocking once anything touches
 * process.stderr, so a write may take part of a batch, or none (EAGAIN).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { stderrLines } from "../../server/runtime/log";
import { waitFor } from "../support/wait";

const FIXTURE = join(import.meta.dir, "stderr-lines-fixture.ts");

/** Reads a child's stderr lines, stalling the reader (a blocking call, as a busy parent does) now and then. */
async function readSlowly(count: number): Promise<{ lines: number[]; dropped: number; broken: string[] }> {
  const child = Bun.spawn([process.execPath, FIXTURE, String(count)], { stdout: "ignore", stderr: "pipe" });
  const stall = (async () => {
    for (let i = 0; i < 4; i++) {
      await Bun.sleep(50);
      Bun.spawnSync(["sleep", "0.4"]);
    }
  })();
  const text = await new Response(child.stderr).text();
  await stall;
  await child.exited;
  const lines: number[] = [];
  const broken: string[] = [];
  let dropped = 0;
  for (const line of text.split("\n").filter(Boolean)) {
    try {
      const record = JSON.parse(line) as { n?: number; dropped?: number };
      if (record.dropped !== undefined) dropped += record.dropped;
      else lines.push(record.n!);
    } catch {
      broken.push(line.slice(0, 80));
    }
  }
  return { lines, dropped, broken };
}

describe("stderr that is not read at once", () => {
  test("a burst within the backlog bound arrives whole and in order (2.3 MB)", async () => {
    const count = 10_000;
    const { lines, dropped, broken } = await readSlowly(count);
    expect({ broken, dropped, lines: lines.length }).toEqual({ broken: [], dropped: 0, lines: count });
    expect(lines.every((n, i) => n === i)).toBe(true);
  });

  test("a burst past it (9 MB): whole lines, in order, and what was dropped is counted", async () => {
    const count = 40_000;
    const { lines, dropped, broken } = await readSlowly(count);
    expect(broken).toEqual([]);
    expect(lines.length + dropped).toBe(count);
    expect(lines.every((n, i) => i === 0 || n > lines[i - 1]!)).toBe(true);
  });

  test("a write that takes part of a batch, or none (EAGAIN), is finished later, in order", async () => {
    const written: string[] = [];
    let calls = 0;
    const writer = (text: Uint8Array) => {
      calls++;
      if (calls % 3 === 1) throw Object.assign(new Error("EAGAIN"), { code: "EAGAIN" });
      const part = calls % 3 === 2 ? Math.ceil(text.length / 2) : text.length;
      written.push(Buffer.from(text.subarray(0, part)).toString());
      return part;
    };
    const sink = stderrLines({ write: writer, retryMs: 1 });
    for (let i = 0; i < 1000; i++) sink.write(`line ${i}`);
    sink.flush();
    await waitFor("the 1,000 lines written", () => written.join("").split("\n").length > 1000);
    expect(written.join("")).toBe(Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join(""));
  });

  test("past the backlog bound the oldest batches are dropped, counted, and reported once stderr drains", async () => {
    let open = false;
    const written: string[] = [];
    const writer = (text: Uint8Array) => {
      if (!open) throw Object.assign(new Error("EAGAIN"), { code: "EAGAIN" });
      written.push(Buffer.from(text).toString());
      return text.length;
    };
    const dropped: number[] = [];
    const sink = stderrLines({ write: writer, retryMs: 1, backlogMaxBytes: 10_000 });
    sink.onDropped((n) => dropped.push(n));
    for (let i = 0; i < 1000; i++) {
      sink.write(`line ${String(i).padStart(4, "0")} ${"x".repeat(80)}`);
      if (i % 50 === 49) sink.flush();
    }
    expect(sink.backlogBytes()).toBeLessThanOrEqual(10_000 + 50 * 90);
    open = true;
    await waitFor("the backlog drained and the drop reported", () => dropped.length > 0 && sink.backlogBytes() === 0);
    const lines = written.join("").split("\n").filter(Boolean);
    expect(dropped[0]! + lines.length).toBe(1000);
    // What is kept is the newest, whole and in order.
    expect(lines.at(-1)).toStartWith("line 0999 ");
    expect(lines.every((l) => /^line \d{4} x+$/.test(l))).toBe(true);
  });
});

test("what was dropped while stderr stalled is reported even when it drains only at exit", () => {
  let open = false;
  const written: string[] = [];
  const sink = stderrLines({
    write: (bytes) => {
      if (!open) throw Object.assign(new Error("EAGAIN"), { code: "EAGAIN" });
      written.push(Buffer.from(bytes).toString());
      return bytes.length;
    },
    retryMs: 60_000,
    backlogMaxBytes: 10_000,
  });
  // As main.ts wires it: the report is a line through the same sink.
  sink.onDropped((n) => sink.write(`{"msg":"log lines dropped","dropped":${n}}`));
  for (let i = 0; i < 1000; i++) {
    sink.write(`line ${String(i).padStart(4, "0")} ${"x".repeat(80)}`);
    if (i % 50 === 49) sink.flush();
  }
  // SIGTERM: process.exit runs flushAtExit, and the log collector reads again.
  open = true;
  sink.flushAtExit();
  const lines = written.join("").split("\n").filter(Boolean);
  expect(lines.at(-2)).toStartWith("line 0999");
  expect(lines.at(-1)).toStartWith('{"msg":"log lines dropped"');
});
