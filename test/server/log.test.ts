/**
 * The structured logger: what a record looks like in each encoding, and which records are written.
 */
import { describe, expect, test } from "bun:test";
import { createLogger } from "../../server/runtime/log";
import type { LogEncoding, LogLevel } from "../../server/config";

function capture(level: LogLevel, encoding: LogEncoding = "json") {
  const lines: string[] = [];
  const log = createLogger({
    level,
    encoding,
    write: (line) => lines.push(line),
    now: () => new Date("2026-01-02T03:04:05.000Z"),
  });
  return { log, lines };
}

describe("json records", () => {
  test.each([
    ["plain values", { receiver: "ns/app", status: 200 }, { receiver: "ns/app", status: 200 }],
    ["undefined fields are left out", { event: undefined, status: 404 }, { status: 404 }],
    ["an Error becomes its message", { error: new Error("connection refused") }, { error: "connection refused" }],
    ["a bigint becomes a string", { size: 12n }, { size: "12" }],
    [
      "a nested bigint and Error too",
      { detail: { size: 3n, cause: new Error("x") } },
      { detail: { size: "3", cause: "x" } },
    ],
    [
      "arrays stay arrays",
      { targets: ["GitRepository/ns/app:annotated"] },
      { targets: ["GitRepository/ns/app:annotated"] },
    ],
  ])("%s", (_name, fields, expected) => {
    const { log, lines } = capture("info");
    log.info("delivery handled", fields);
    expect(JSON.parse(lines[0]!)).toEqual({
      level: "info",
      ts: "2026-01-02T03:04:05.000Z",
      msg: "delivery handled",
      ...expected,
    });
  });

  test("bound fields come first and a record's own fields win", () => {
    const { log, lines } = capture("debug");
    log.with({ component: "controller", receiver: "bound" }).debug("m", { receiver: "own" });
    expect(JSON.parse(lines[0]!)).toEqual({
      level: "debug",
      ts: "2026-01-02T03:04:05.000Z",
      msg: "m",
      component: "controller",
      receiver: "own",
    });
  });
});

describe("levels", () => {
  test.each([
    ["debug", [true, true, true]],
    ["info", [false, true, true]],
    ["error", [false, false, true]],
  ] as const)("at --log-level=%s", (level, expected) => {
    const { log, lines } = capture(level);
    log.debug("d");
    log.info("i");
    log.error("e");
    expect(["d", "i", "e"].map((m) => lines.some((l) => JSON.parse(l).msg === m))).toEqual([...expected]);
    expect((["debug", "info", "error"] as const).map((l) => log.enabled(l))).toEqual([...expected]);
  });
});

test("console records: time, level, message, then key=value", () => {
  const { log, lines } = capture("info", "console");
  log.error("delivery refused", { receiver: "ns/app", status: 400, error: new Error("bad"), targets: ["a", "b"] });
  expect(lines).toEqual([
    '2026-01-02T03:04:05.000Z\tERROR\tdelivery refused\treceiver="ns/app" status=400 error="bad" targets=["a","b"]',
  ]);
});
