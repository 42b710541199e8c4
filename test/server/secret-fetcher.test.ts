/**
 * The Secret fetcher (server/receivers/secret-fetcher.ts) between a metadata watch and the
 * controller, with reads the test answers by hand: the orderings a real cluster produces (reads
 * ahead of or behind the watch, a Secret re-created while it is read, failures).
 */
import { describe, expect, test } from "bun:test";
import { replaceAll, type KubeResult } from "../../server/kube/port";
import type { ObjectKey } from "../../server/receivers/api";
import { ReceiverController } from "../../server/receivers/controller";
import { ReceiverIndex } from "../../server/receivers/index";
import { SecretFetcher } from "../../server/receivers/secret-fetcher";
import { silentLogger } from "../../server/log";
import { webhookPath } from "../../shared";
import { waitFor } from "../support/stack";

const spec = { type: "generic", secretRef: { name: "s" }, resources: [{ kind: "GitRepository", name: "app" }] };
const receiver = { metadata: { name: "r", namespace: "ns", generation: 1, uid: "u", resourceVersion: "1" }, spec };
const meta = (rv: string) => ({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: { name: "s", namespace: "ns", resourceVersion: rv } });
const full = (rv: string, token: string) => ({ kind: "Secret", apiVersion: "v1", metadata: { name: "s", namespace: "ns", resourceVersion: rv }, data: { token: Buffer.from(token).toString("base64") } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A controller and a fetcher whose reads wait for the test to answer them. */
function rig() {
  const reads: { resolve: (v: KubeResult<unknown>) => void }[] = [];
  let fetcher!: SecretFetcher;
  const index = new ReceiverIndex();
  const controller = new ReceiverController({ index, statusWriter: undefined, log: silentLogger, wantSecret: (k) => fetcher.want(k) });
  fetcher = new SecretFetcher({
    get: (_key: ObjectKey) => new Promise((resolve) => reads.push({ resolve })),
    sink: controller.secretSink,
    isReferenced: (s) => controller.isReferenced(s),
    log: silentLogger,
    retryMinMs: 1,
  });
  const path = () => [...index.entries()].map((e) => e.path)[0];
  return { reads, fetcher, controller, path };
}

/** The rig with the Receiver listed and its Secret's metadata at version 5: one read in flight. */
function listed() {
  const r = rig();
  replaceAll(r.controller.receiverSink, [receiver]);
  replaceAll(r.fetcher.sink, [meta("5")]);
  return r;
}

describe("SecretFetcher", () => {
  test("only a referenced Secret is read, and the Receiver is decided once it is", async () => {
    const { reads, fetcher, controller, path } = rig();
    replaceAll(fetcher.sink, [meta("5"), { ...meta("6"), metadata: { ...meta("6").metadata, name: "unrelated" } }]);
    replaceAll(controller.receiverSink, [receiver]);
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

  test("a re-list of versions already read reads nothing and changes nothing", async () => {
    const { reads, fetcher, path } = listed();
    reads[0]!.resolve({ ok: true, value: full("5", "t") });
    await settle();
    replaceAll(fetcher.sink, [meta("5")]);
    await settle();
    expect(reads.length).toBe(1);
    expect(path()).toBe(webhookPath("t", "r", "ns"));
  });
});
