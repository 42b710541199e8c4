import { describe, expect, test } from "bun:test";
import { Referrers } from "../../server/receivers/secret-cache";
import { prepareReceiver, NOTHING_COMPILED } from "../../server/receivers/prepare";
import type { ReceiverSpec } from "../../server/api/receiver";
import { GIT } from "../support/kinds";

describe("Referrers: a Secret's Receivers, one without a Set", () => {
  const cases: { name: string; ops: [op: "add" | "delete", key: string][]; members: string[] }[] = [
    { name: "empty", ops: [], members: [] },
    { name: "one", ops: [["add", "a"]], members: ["a"] },
    {
      name: "the same one twice",
      ops: [
        ["add", "a"],
        ["add", "a"],
      ],
      members: ["a"],
    },
    {
      name: "two",
      ops: [
        ["add", "a"],
        ["add", "b"],
      ],
      members: ["a", "b"],
    },
    {
      name: "one removed",
      ops: [
        ["add", "a"],
        ["delete", "a"],
      ],
      members: [],
    },
    {
      name: "another removed",
      ops: [
        ["add", "a"],
        ["delete", "b"],
      ],
      members: ["a"],
    },
    {
      name: "back to one of three",
      ops: [
        ["add", "a"],
        ["add", "b"],
        ["add", "c"],
        ["delete", "a"],
        ["delete", "c"],
      ],
      members: ["b"],
    },
    {
      name: "all removed, then one",
      ops: [
        ["add", "a"],
        ["add", "b"],
        ["delete", "a"],
        ["delete", "b"],
        ["add", "c"],
      ],
      members: ["c"],
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const r = new Referrers();
      for (const [op, key] of c.ops) r[op](key);
      expect([...r].sort()).toEqual(c.members);
      expect(r.size).toBe(c.members.length);
    });

  test("iterating while the set changes sees the members it started with", () => {
    const r = new Referrers();
    for (const k of ["a", "b", "c"]) r.add(k);
    const seen: string[] = [];
    for (const k of r) {
      seen.push(k);
      r.delete(k);
    }
    expect(seen).toEqual(["a", "b", "c"]);
    expect(r.size).toBe(0);
  });
});

describe("prepareReceiver: a spec with nothing to compile shares one result", () => {
  const spec = (over: Partial<ReceiverSpec>): ReceiverSpec =>
    ({
      type: "github",
      events: [],
      resources: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
      oidcProviders: [],
      ...over,
    }) as unknown as ReceiverSpec;

  test("no expression, no provider: NOTHING_COMPILED, the same object every time", () => {
    const a = prepareReceiver(spec({}));
    expect(a).toEqual({ ok: true, compiled: NOTHING_COMPILED });
    expect(prepareReceiver(spec({}))).toBe(a);
  });

  test("an empty filter is still compiled (and refused), not taken for none", () => {
    const r = prepareReceiver(
      spec({
        resources: [{ apiVersion: GIT, kind: "GitRepository", name: "app", filter: "" }],
      } as never),
    );
    expect(r.ok).toBe(false);
  });
});
