/**
 * The Secret cache (server/receivers/secret-cache.ts) between a metadata watch and the
 * reconciler, with reads the test answers by hand: the orderings a real cluster produces (reads
 * ahead of or behind the watch, a Secret re-created while it is read, failures).
 */
import { describe, expect, test } from "bun:test";
import { replaceAll, type KubeResult, type SecretPage } from "../../server/kube/port";
import { SECRET_LIST_MIN_READS, SECRET_LIST_MIN_SHARE } from "../../server/limits";
import { RECEIVER_FINALIZER, type ObjectKey, type ReceiverStatus } from "../../server/api/receiver";
import { READ_FAILURES_BEFORE_UNREADABLE, SecretCache } from "../../server/receivers/secret-cache";
import { silentLogger } from "../../server/runtime/log";
import { webhookPath } from "../../shared";
import { reconcilerRig } from "../support/reconciler";
import { waitFor } from "../support/stack";

const spec = { type: "generic", secretRef: { name: "s" }, resources: [{ kind: "GitRepository", name: "app" }] };
const receiver = {
  metadata: {
    name: "r",
    namespace: "ns",
    generation: 1,
    uid: "u",
    resourceVersion: "1",
    finalizers: [RECEIVER_FINALIZER],
  },
  spec,
};
const meta = (rv: string) => ({
  kind: "PartialObjectMetadata",
  apiVersion: "meta.k8s.io/v1",
  metadata: { name: "s", namespace: "ns", resourceVersion: rv },
});
const full = (rv: string, token: string) => ({
  kind: "Secret",
  apiVersion: "v1",
  metadata: { name: "s", namespace: "ns", resourceVersion: rv },
  data: { token: Buffer.from(token).toString("base64") },
});
/** Lets the reads, reconciles and writes the last step started run (a write waits for its slot in a task of its own). */
const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A reconciler and a Secret cache whose reads wait for the test to answer them. */
function rig(retryBaseMs = 1) {
  const reads: { resolve: (v: KubeResult<unknown>) => void }[] = [];
  /** The Ready reason of every status the reconciler wrote. */
  const statuses: (string | undefined)[] = [];
  let lastStatus: ReceiverStatus | undefined;
  let version = 100;
  const kube = {
    patchReceiverFinalizers: async (): Promise<KubeResult<string>> => {
      throw new Error("the Receivers of this test carry Flux's finalizer already");
    },
    patchReceiverStatus: async (_key: ObjectKey, status: ReceiverStatus): Promise<KubeResult<string>> => {
      statuses.push(status.conditions?.find((c) => c.type === "Ready")?.reason);
      lastStatus = status;
      // Each write makes a newer resourceVersion, as the API server's do.
      return { ok: true, value: String(++version) };
    },
  };
  const fetcher = new SecretCache({
    get: (_key: ObjectKey) => new Promise((resolve) => reads.push({ resolve })),
    log: silentLogger,
    backoff: { baseMs: retryBaseMs, capMs: 30_000 },
  });
  const { index, receivers } = reconcilerRig({
    secrets: fetcher,
    writer: { kube, canWrite: () => true, backoff: { baseMs: 1, capMs: 1 } },
  });
  const path = () => [...index.entries()].map((e) => e.path)[0];
  return { reads, statuses, lastStatus: () => lastStatus, fetcher, receivers, path };
}

/** The rig with the Receiver listed and its Secret's metadata at version 5: one read in flight. */
function listed(retryBaseMs = 1) {
  const r = rig(retryBaseMs);
  replaceAll(r.receivers.sink, [receiver]);
  replaceAll(r.fetcher.sink, [meta("5")]);
  return r;
}

describe("SecretCache", () => {
  test("only a referenced Secret is read, and the Receiver is decided once it is", async () => {
    const { reads, fetcher, receivers, path } = rig();
    replaceAll(fetcher.sink, [meta("5"), { ...meta("6"), metadata: { ...meta("6").metadata, name: "unrelated" } }]);
    replaceAll(receivers.sink, [receiver]);
    await settle();
    expect(reads.length).toBe(1);
    expect(fetcher.unread).toBe(1);
    expect(path()).toBeUndefined(); // undecided while pending: not TokenNotFound
    reads[0]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(path()).toBe(webhookPath("t", "r", "ns"));
    expect(fetcher.unread).toBe(0);
  });

  test("a read that 404s because the Secret was deleted and re-created meanwhile: the new one is read", async () => {
    const { reads, fetcher, path } = listed();
    expect(reads.length).toBe(1);
    fetcher.sink.remove(meta("5"));
    fetcher.sink.upsert(meta("8"));
    reads[0]!.resolve({ ok: true, value: undefined });
    await settle();
    expect(reads.length).toBe(2);
    reads[1]!.resolve({ ok: true, value: full("8", "new") });
    await settle();
    expect(path()).toBe(webhookPath("new", "r", "ns"));
  });

  test("a read ahead of the watch is used and not repeated when the watch catches up", async () => {
    const { reads, fetcher, path } = listed();
    reads[0]!.resolve({ ok: true, value: full("6", "t6") });
    await settle();
    expect(path()).toBe(webhookPath("t6", "r", "ns"));
    fetcher.sink.upsert(meta("6"));
    await settle();
    expect(reads.length).toBe(1);
    expect(path()).toBe(webhookPath("t6", "r", "ns"));
  });

  test("a read behind the watch is not handed on: the Secret is read again", async () => {
    const { reads, fetcher, path } = listed();
    fetcher.sink.upsert(meta("7"));
    reads[0]!.resolve({ ok: true, value: full("5", "stale") });
    await settle();
    expect(path()).toBeUndefined();
    expect(reads.length).toBe(2);
    reads[1]!.resolve({ ok: true, value: full("7", "fresh") });
    await settle();
    expect(path()).toBe(webhookPath("fresh", "r", "ns"));
  });

  test("a failed read is retried with backoff; after a success no stale retry reads it again", async () => {
    const { reads, fetcher, path } = listed();
    reads[0]!.resolve({ ok: false, reason: "Secret ns/s: Kubernetes API answered 500", status: 500 });
    await settle();
    expect(fetcher.unread).toBe(0); // attempted: readiness does not wait for the retry
    await waitFor("the retry", () => reads.length === 2);
    reads[1]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(path()).toBe(webhookPath("t", "r", "ns"));
    await new Promise((resolve) => setTimeout(resolve, 20)); // past every retry delay there was
    expect(reads.length).toBe(2);
  });

  test("a failed read waits for its backoff: it is not read again at once", async () => {
    const { reads, fetcher } = listed(60_000);
    const refused = { ok: false as const, reason: "Secret ns/s: Kubernetes API answered 403", status: 403 };
    // The first read went out before the watch showed the Secret: it is read once more, for that.
    reads[0]!.resolve(refused);
    await waitFor("the read of the version the watch showed", () => reads.length === 2);
    reads[1]!.resolve(refused);
    for (let i = 0; i < 20; i++) await settle();
    expect(reads.length).toBe(2);
    // A newer version from the watch does not wait for the backoff.
    fetcher.sink.upsert(meta("6"));
    await settle();
    expect(reads.length).toBe(3);
    fetcher.stop();
  });

  test("a Secret no Receiver references any more keeps no data, and is read again when one does", async () => {
    const { reads, fetcher } = listed();
    reads[0]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(fetcher.lookup("ns/s")).toMatchObject({ kind: "ready" });
    fetcher.unrefer("ns/s", "ns/r");
    expect(fetcher.lookup("ns/s")).toEqual({ kind: "pending" });
    fetcher.refer({ namespace: "ns", name: "s" }, "ns/r");
    await settle();
    expect(reads.length).toBe(2);
    reads[1]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(fetcher.lookup("ns/s")).toMatchObject({ kind: "ready" });
  });

  test("reads that keep failing: TokenNotFound with the API's message after a few, Ready once one succeeds", async () => {
    const { reads, statuses, lastStatus, path } = listed();
    const forbidden = 'secrets "s" is forbidden: User "fluxhook" cannot get resource "secrets"';
    for (let i = 0; i < READ_FAILURES_BEFORE_UNREADABLE; i++) {
      await waitFor(`read ${i + 1}`, () => reads.length === i + 1);
      expect(statuses).toEqual([]); // a blip decides nothing
      reads[i]!.resolve({ ok: false, reason: forbidden, status: 403 });
      await settle();
    }
    expect(statuses).toEqual(["TokenNotFound"]);
    expect(lastStatus()!.conditions![0]!.message).toBe(`unable to read token from secret 'ns/s' error: ${forbidden}`);
    expect(path()).toBeUndefined();
    await waitFor("the next retry", () => reads.length === READ_FAILURES_BEFORE_UNREADABLE + 1);
    reads[READ_FAILURES_BEFORE_UNREADABLE]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(path()).toBe(webhookPath("t", "r", "ns"));
    expect(statuses).toEqual(["TokenNotFound", "Succeeded"]);
  });

  test("a Secret deleted while a newer version is read: its Receivers stop being served at once", async () => {
    const { reads, statuses, fetcher, path } = listed();
    reads[0]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    expect(path()).toBe(webhookPath("t", "r", "ns"));
    fetcher.sink.upsert(meta("6"));
    expect(reads.length).toBe(2);
    fetcher.sink.remove(meta("6"));
    await settle();
    expect(path()).toBeUndefined();
    expect(statuses).toEqual(["Succeeded", "TokenNotFound"]);
    reads[1]!.resolve({ ok: true, value: full("6", "t6") }); // what the read found is stale
    await settle();
    expect(path()).toBeUndefined();
    expect(statuses).toEqual(["Succeeded", "TokenNotFound"]);
  });

  test("a re-list of versions already read reads nothing and changes nothing", async () => {
    const { reads, fetcher, path } = listed();
    reads[0]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    replaceAll(fetcher.sink, [meta("5")]);
    await settle();
    expect(reads.length).toBe(1);
    expect(path()).toBe(webhookPath("t", "r", "ns"));
  });

  describe("a Secret the watch has not shown (the Receivers' stream is ahead)", () => {
    /** The rig with no Secrets listed, then the Receiver: its Secret is read at once. */
    function ahead() {
      const r = rig();
      replaceAll(r.fetcher.sink, []);
      replaceAll(r.receivers.sink, [receiver]);
      return r;
    }

    test("is read at once; the Receiver waits for the answer and goes straight to Ready", async () => {
      const { reads, statuses, fetcher, path } = ahead();
      expect(reads.length).toBe(1);
      expect(fetcher.lookup("ns/s")).toEqual({ kind: "pending" });
      expect(fetcher.unread).toBe(1);
      await settle();
      expect(statuses).toEqual([]); // not TokenNotFound while the read is out
      reads[0]!.resolve({ ok: true, value: full("5", "t") });
      await settle();
      expect(path()).toBe(webhookPath("t", "r", "ns"));
      expect(statuses).toEqual(["Succeeded"]);
      fetcher.sink.upsert(meta("5")); // the watch catches up: nothing to read again
      await settle();
      expect(reads.length).toBe(1);
      expect(statuses).toEqual(["Succeeded"]);
    });

    test("absent: TokenNotFound on the 404, no read on later Receiver events, and its creation is read", async () => {
      const { reads, statuses, lastStatus, fetcher, receivers, path } = ahead();
      reads[0]!.resolve({ ok: true, value: undefined });
      await settle();
      expect(fetcher.lookup("ns/s")).toEqual({ kind: "absent" });
      expect(statuses).toEqual(["TokenNotFound"]);
      // The watch event of that status write.
      receivers.sink.upsert({
        ...receiver,
        metadata: { ...receiver.metadata, resourceVersion: "2" },
        status: lastStatus(),
      });
      await settle();
      expect(reads.length).toBe(1);
      fetcher.sink.upsert(meta("9"));
      expect(reads.length).toBe(2);
      reads[1]!.resolve({ ok: true, value: full("9", "t") });
      await settle();
      expect(path()).toBe(webhookPath("t", "r", "ns"));
      expect(statuses).toEqual(["TokenNotFound", "Succeeded"]);
    });

    test("created and deleted while it is read: what the read found is not used", async () => {
      const { reads, statuses, fetcher, path } = ahead();
      fetcher.sink.upsert(meta("5"));
      fetcher.sink.remove(meta("5"));
      reads[0]!.resolve({ ok: true, value: full("5", "t") });
      await settle();
      expect(path()).toBeUndefined();
      expect(statuses).toEqual(["TokenNotFound"]);
      expect(reads.length).toBe(1);
    });

    test("one read for two Receivers: its 404 decides both", async () => {
      const r = rig();
      replaceAll(r.fetcher.sink, []);
      replaceAll(r.receivers.sink, [
        receiver,
        { ...receiver, metadata: { ...receiver.metadata, name: "r2", uid: "u2" } },
      ]);
      expect(r.reads.length).toBe(1);
      r.reads[0]!.resolve({ ok: true, value: undefined });
      await settle();
      expect(r.statuses).toEqual(["TokenNotFound", "TokenNotFound"]);
    });

    test("a failed read keeps the Receiver waiting until a retry answers", async () => {
      const { reads, statuses, fetcher, path } = ahead();
      reads[0]!.resolve({ ok: false, reason: "Secret ns/s: Kubernetes API answered 500", status: 500 });
      await settle();
      expect(fetcher.lookup("ns/s")).toEqual({ kind: "pending" });
      expect(statuses).toEqual([]);
      await waitFor("the retry", () => reads.length === 2);
      reads[1]!.resolve({ ok: true, value: full("5", "t") });
      await settle();
      expect(path()).toBe(webhookPath("t", "r", "ns"));
      expect(statuses).toEqual(["Succeeded"]);
    });
  });
});

describe("SecretCache with lists: the first sync reads a namespace's Secrets in pages where most are referenced", () => {
  const N = SECRET_LIST_MIN_READS;
  const names = Array.from({ length: N }, (_, i) => `s${i}`);
  const metaOf = (name: string, rv: string) => ({ ...meta(rv), metadata: { ...meta(rv).metadata, name } });
  const fullOf = (name: string, rv: string, token: string) => ({
    ...full(rv, token),
    metadata: { ...full(rv, token).metadata, name },
  });
  const receiverOf = (name: string) => ({
    metadata: { ...receiver.metadata, name: `r-${name}`, uid: `u-${name}` },
    spec: { ...spec, secretRef: { name } },
  });

  /** A reconciler and a cache whose GETs and list pages wait for the test to answer them. */
  function pagedRig() {
    const reads: { key: ObjectKey; resolve: (v: KubeResult<unknown>) => void }[] = [];
    const lists: { token: string | undefined; resolve: (v: KubeResult<SecretPage>) => void }[] = [];
    const cache = new SecretCache({
      get: (key) => new Promise((resolve) => reads.push({ key, resolve })),
      list: (namespace, token) => {
        expect(namespace).toBe("ns");
        return new Promise((resolve) => lists.push({ token, resolve }));
      },
      log: silentLogger,
      backoff: { baseMs: 1, capMs: 30_000 },
    });
    const { index, receivers } = reconcilerRig({ secrets: cache });
    const paths = () => new Set([...index.entries()].map((e) => e.path));
    return { reads, lists, cache, receivers, paths };
  }

  /** Every Secret referenced, plus one no Receiver references ("other"), listed as metadata. */
  function synced(referenced = names) {
    const r = pagedRig();
    replaceAll(r.receivers.sink, referenced.map(receiverOf));
    // Nothing is read before the Secrets' first list: it is not known yet how to read them.
    expect(r.reads.length + r.lists.length).toBe(0);
    replaceAll(r.cache.sink, [...names.map((n) => metaOf(n, "5")), metaOf("other", "5")]);
    return r;
  }

  const page = (items: unknown[], next?: string): KubeResult<SecretPage> => ({
    ok: true,
    value: { items, continue: next },
  });

  test("one request per page instead of one per Secret; the data of an unreferenced Secret is not kept", async () => {
    const { reads, lists, cache, paths } = synced();
    await settle();
    expect(lists.map((l) => l.token)).toEqual([undefined]);
    expect(cache.unread).toBe(N); // readiness waits for the list
    const half = names.slice(0, N / 2);
    lists[0]!.resolve(page([...half.map((n) => fullOf(n, "5", `t-${n}`)), fullOf("other", "5", "private")], "next"));
    await settle();
    expect(lists.map((l) => l.token)).toEqual([undefined, "next"]);
    lists[1]!.resolve(page(names.slice(N / 2).map((n) => fullOf(n, "5", `t-${n}`))));
    await settle();
    expect(reads.length).toBe(0);
    expect(cache.unread).toBe(0);
    expect(paths()).toEqual(new Set(names.map((n) => webhookPath(`t-${n}`, `r-${n}`, "ns"))));
    // Listed with the rest, but no Receiver references it: still metadata only.
    expect(cache.lookup("ns/other")).toEqual({ kind: "pending" });
  });

  test("the Secrets' list in before the Receivers': still one request per page, no GET", async () => {
    const { reads, lists, cache, receivers } = pagedRig();
    replaceAll(cache.sink, [...names.map((n) => metaOf(n, "5")), metaOf("other", "5")]);
    await settle();
    expect(reads.length + lists.length).toBe(0); // no reference known yet
    replaceAll(receivers.sink, names.map(receiverOf));
    await settle();
    expect({ gets: reads.length, lists: lists.length }).toEqual({ gets: 0, lists: 1 });
  });

  test("a Secret rotated after the list is read by itself, as before", async () => {
    const { reads, lists, cache, paths } = synced();
    await settle();
    lists[0]!.resolve(page(names.map((n) => fullOf(n, "5", `t-${n}`))));
    await settle();
    cache.sink.upsert(metaOf("s0", "9"));
    expect(reads.map((r) => r.key.name)).toEqual(["s0"]);
    reads[0]!.resolve({ ok: true, value: fullOf("s0", "9", "rotated") });
    await settle();
    expect(paths().has(webhookPath("rotated", "r-s0", "ns"))).toBe(true);
    expect(lists.length).toBe(1);
  });

  test("a Secret changed while the list is out is read again at its new version; one deleted is not used", async () => {
    const { reads, lists, cache, paths } = synced();
    await settle();
    cache.sink.upsert(metaOf("s1", "7"));
    cache.sink.remove(metaOf("s2", "5"));
    expect(reads.length).toBe(0); // its namespace's list is out: no GET beside it
    lists[0]!.resolve(page(names.map((n) => fullOf(n, "5", `t-${n}`))));
    await settle();
    expect(reads.map((r) => r.key.name)).toEqual(["s1"]);
    expect(cache.lookup("ns/s2")).toEqual({ kind: "absent" });
    expect(paths().has(webhookPath("t-s2", "r-s2", "ns"))).toBe(false);
    reads[0]!.resolve({ ok: true, value: fullOf("s1", "7", "newer") });
    await settle();
    expect(paths().has(webhookPath("newer", "r-s1", "ns"))).toBe(true);
    expect(paths().has(webhookPath("t-s1", "r-s1", "ns"))).toBe(false);
  });

  test("a list that fails leaves its Secrets to be read one by one", async () => {
    const { reads, lists, cache, paths } = synced();
    await settle();
    lists[0]!.resolve({ ok: false, reason: "Secrets in ns: Kubernetes API answered 500", status: 500 });
    await settle();
    expect(reads.map((r) => r.key.name).sort()).toEqual([...names].sort());
    for (const r of reads) r.resolve({ ok: true, value: fullOf(r.key.name, "5", `t-${r.key.name}`) });
    await settle();
    expect(cache.unread).toBe(0);
    expect(paths().size).toBe(N);
  });

  test("where few of a namespace's Secrets are referenced, or too few to pay, each is read by itself", async () => {
    // N - 1 referenced: fewer than SECRET_LIST_MIN_READS.
    const { reads, lists } = synced(names.slice(1));
    await settle();
    expect(lists.length).toBe(0);
    expect(reads.length).toBe(N - 1);
    // N referenced among many unreferenced ones: under SECRET_LIST_MIN_SHARE of the namespace.
    const r = pagedRig();
    replaceAll(r.receivers.sink, names.map(receiverOf));
    const others = Array.from({ length: Math.ceil(N / SECRET_LIST_MIN_SHARE) }, (_, i) => metaOf(`helm-${i}`, "5"));
    replaceAll(r.cache.sink, [...names.map((n) => metaOf(n, "5")), ...others]);
    await settle();
    expect(r.lists.length).toBe(0);
    expect(r.reads.length).toBe(N);
  });
});
