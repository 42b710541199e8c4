/**
 * The upstream handler cases (notification-controller receiver_handler_test.go Test_handlePayload,
 * as listed in shared/reference/flux-receiver.md section 6) for the receiver types and target
 * features fluxhook has so far, ported as one table. Each case runs in its own namespace of one
 * stack: a Secret with token "token", a Receiver, its targets, then one real HTTP delivery.
 *
 * Upstream asserts the status code and the number of annotated objects; so does this table, and
 * it also checks fluxhook's reason. The upstream harness gives every receiver the path "/hook/";
 * here each Receiver gets its real path from fluxhook's own status.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, waitFor, type Stack } from "../support/stack";
import { webhookPath } from "../../shared";

const GIT = "source.toolkit.fluxcd.io/v1";
const PUSH = '{"action":"push"}';
const SHA256_PUSH = "sha256=83eee066cf716dd10bc327e341a581ae657bf26d8815c9334434f470c12d3079";
const SHA256_NULL = "sha256=f1a29da1cd8d6993f4462ecc1de5317dd8955e14b9c39c2ab56d6e042e58b163";
const JSON_CT = { "Content-Type": "application/json" };

interface Target {
  name: string;
  labels?: Record<string, string>;
  namespace?: string;
}

interface Case {
  n: number;
  name: string;
  /** Receiver spec; `resources` default to GitRepository "app" in the case's namespace. */
  spec: Record<string, unknown>;
  secret?: Record<string, string> | null;
  targets?: Target[];
  headers?: Record<string, string>;
  body?: string;
  /** "ready" waits for Ready; "path" computes the path without waiting (not-Ready receivers). */
  await?: "ready" | "path" | "none";
  status: number;
  annotated: number;
  reason?: string;
}

const app = [{ kind: "GitRepository", name: "app" }];

const CASES: Case[] = [
  { n: 1, name: "generic receiver", spec: { type: "generic", resources: app }, body: "null", status: 200, annotated: 1 },
  { n: 2, name: "gitlab receiver", spec: { type: "gitlab", resources: app }, headers: { "X-Gitlab-Token": "token" }, status: 200, annotated: 1 },
  { n: 6, name: "github receiver", spec: { type: "github", resources: app }, headers: { ...JSON_CT, "X-Hub-Signature-256": SHA256_PUSH }, body: PUSH, status: 200, annotated: 1 },
  { n: 7, name: "generic hmac receiver", spec: { type: "generic-hmac", resources: app }, headers: { "X-Signature": SHA256_NULL }, body: "null", status: 200, annotated: 1 },
  {
    n: 8,
    name: "bitbucket receiver",
    spec: { type: "bitbucket", events: ["push"], resources: app },
    headers: { ...JSON_CT, "X-Event-Key": "push", "X-Hub-Signature-256": SHA256_NULL },
    body: "null",
    status: 200,
    annotated: 1,
  },
  { n: 10, name: "harbor receiver", spec: { type: "harbor", resources: app }, headers: { Authorization: "token" }, status: 200, annotated: 1 },
  // Upstream answers 400: its index still held the path while the handler could not read the
  // Secret. fluxhook's index follows the Secret, so without it there is no path at all: 404, and
  // the status says TokenNotFound (checked in the controller tests).
  { n: 11, name: "missing secret", spec: { type: "generic", resources: app }, secret: null, await: "path", status: 404, annotated: 0 },
  // No Receiver at all.
  { n: 12, name: "no receiver", spec: {}, await: "none", status: 404, annotated: 0 },
  { n: 13, name: "not ready", spec: { resources: app }, await: "path", status: 503, annotated: 0, reason: "receiver is not ready: spec.type is required" },
  { n: 14, name: "suspended", spec: { type: "generic", suspend: true, resources: app }, await: "path", status: 503, annotated: 0, reason: "receiver is suspended" },
  {
    n: 15,
    name: "missing apiVersion",
    spec: { type: "generic", resources: [{ kind: "Receiver", name: "dummy" }] },
    status: 500,
    annotated: 0,
    reason: '1 target failed; 0 of 1 target annotated',
  },
  { n: 16, name: "resource by name not found", spec: { type: "generic", resources: [{ kind: "GitRepository", name: "does-not-exists" }] }, status: 500, annotated: 0 },
  {
    n: 17,
    name: "label match",
    spec: { type: "generic", resources: [{ kind: "GitRepository", name: "*", matchLabels: { label: "match" } }] },
    targets: [
      { name: "matching", labels: { label: "match" } },
      { name: "other", labels: { label: "does-not-match" } },
    ],
    status: 200,
    annotated: 1,
  },
  { n: 18, name: "by name", spec: { type: "generic", resources: app }, status: 200, annotated: 1 },
  { n: 19, name: "wildcard without labels", spec: { type: "generic", resources: [{ kind: "GitRepository", name: "*" }] }, status: 500, annotated: 0 },
  { n: 21, name: "large payload", spec: { type: "generic", resources: app }, body: "a".repeat(3 * 1024 * 1024 + 1), status: 413, annotated: 0 },
  {
    n: 22,
    name: "matchLabels ignored when name is not *",
    spec: { type: "generic", resources: [{ kind: "GitRepository", name: "app", matchLabels: { label: "does-not-match" } }] },
    status: 200,
    annotated: 1,
  },
];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

function countAnnotated(namespace: string): number {
  return stack.api.store.list(GIT, "GitRepository", namespace).filter((o: any) => o.metadata?.annotations?.["reconcile.fluxcd.io/requestedAt"]).length;
}

describe("upstream Test_handlePayload cases", () => {
  test.each(CASES.map((c) => [`#${c.n} ${c.name}`, c] as const))("%s", async (_title, c) => {
    const ns = `case-${c.n}`;
    const targets = c.targets ?? [{ name: "app" }];
    for (const t of targets) stack.target(GIT, "GitRepository", t.namespace ?? ns, t.name, t.labels);
    if (c.secret !== null) stack.secret(ns, "token", c.secret ?? { token: "token" });
    if (c.await !== "none") stack.receiver(ns, "receiver", { secretRef: { name: "token" }, ...c.spec });

    let path = webhookPath("token", "receiver", ns);
    if ((c.await ?? "ready") === "ready") {
      path = await stack.readyPath(ns, "receiver");
    } else if (c.await === "path") {
      // Not Ready by design: wait until fluxhook has decided, which shows either in the status
      // (TokenNotFound, ValidationFailed) or, for a suspended receiver, only in the index.
      await waitFor(`a decision on ${ns}/receiver`, () =>
        stack.fluxhook.controller.index.lookup(path) !== undefined ||
        stack.receiverObject(ns, "receiver")?.status?.conditions?.some((c: any) => c.type === "Ready"),
      );
    }
    const res = await stack.post(path, { headers: c.headers, body: c.body ?? "null" });
    expect({ status: res.status, annotated: countAnnotated(ns) }).toEqual({ status: c.status, annotated: c.annotated });
    expect(typeof res.body.reason).toBe("string");
    if (c.reason) expect(res.body.reason).toBe(c.reason);
  });

  test("#20 cross-namespace refs refused with --no-cross-namespace-refs", async () => {
    await using strict = await startStack({ noCrossNamespaceRefs: true });
    strict.target(GIT, "GitRepository", "another-namespace", "app");
    strict.secret("default", "token", { token: "token" });
    strict.receiver("default", "receiver", { type: "generic", secretRef: { name: "token" }, resources: [{ kind: "GitRepository", name: "app", namespace: "another-namespace" }] });
    const res = await strict.post(await strict.readyPath("default", "receiver"), { body: "null" });
    expect(res.status).toBe(500);
    expect(res.body.targets).toEqual([
      { kind: "GitRepository", namespace: "another-namespace", name: "app", outcome: "failed", reason: "GitRepository another-namespace/app: cross-namespace references are not allowed" },
    ]);
    expect(strict.requestedAt(GIT, "GitRepository", "another-namespace", "app")).toBeUndefined();
  });
});
