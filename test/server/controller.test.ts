/**
 * The Receiver reconciler through the real client and the test API server: the status Flux
 * writes, the index following Secrets and Receivers within moments, and --status-updates=false.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, waitFor, type Stack } from "../support/stack";
import { webhookPath } from "../../shared";
import { githubExample } from "../support/payloads";
import { replaceAll, type KubeResult } from "../../server/kube/port";
import { RECEIVER_FINALIZER, type ObjectKey, type ReceiverStatus } from "../../server/api/receiver";
import { PATH_COLLISION } from "../../server/receivers/paths";
import { atLeastVersion, olderVersion } from "../../server/kube/resource-version";
import { desiredStatus, terminalMessage } from "../../server/api/status";
import { reconcilerRig } from "../support/reconciler";
import { MAX_TOKEN_BYTES } from "../../server/limits";
import { CONDITION_MESSAGE_MAX_CHARS } from "../../server/api/status";
import { GIT, RECEIVER } from "../support/kinds";
import { signature } from "../support/signer";

const spec = {
  type: "generic",
  secretRef: { name: "webhook-token" },
  resources: [{ kind: "GitRepository", name: "app" }],
};

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

/** The Secret "webhook-token" and a Receiver `name` of `spec` in `ns`, once Ready: its path. */
const readyReceiver = (ns: string, token = "t", name = "receiver") =>
  stack.readyReceiver(ns, name, {
    type: spec.type,
    token,
    secretName: "webhook-token",
    spec: { resources: spec.resources },
  });

const conditions = (ns: string, name: string) =>
  (stack.receiverObject(ns, name)?.status?.conditions ?? []).map((c: any) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
  }));

describe("receiver status", () => {
  test("Ready with Flux's exact path and message, and observedGeneration", async () => {
    const path = await readyReceiver("ready", "test-token", "github-receiver");
    expect(path).toBe(webhookPath("test-token", "github-receiver", "ready"));
    const obj = stack.receiverObject("ready", "github-receiver")!;
    expect(obj.status.observedGeneration).toBe(obj.metadata.generation);
    expect(conditions("ready", "github-receiver")).toEqual([
      { type: "Ready", status: "True", reason: "Succeeded", message: `Receiver initialized for path: ${path}` },
    ]);
  });

  test("TokenNotFound until the Secret appears, then Ready", async () => {
    stack.receiver("late-secret", "receiver", spec);
    await waitFor("TokenNotFound", () =>
      conditions("late-secret", "receiver").some((c: any) => c.reason === "TokenNotFound"),
    );
    // Flux's webhookPath is omitempty: no path is no field, never "".
    expect(stack.receiverObject("late-secret", "receiver")!.status).not.toHaveProperty("webhookPath");
    expect(conditions("late-secret", "receiver")).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "TokenNotFound",
        message: `unable to read token from secret 'late-secret/webhook-token' error: secrets "webhook-token" not found`,
      },
      { type: "Reconciling", status: "True", reason: "ProgressingWithRetry", message: "Reconciliation in progress" },
    ]);
    stack.secret("late-secret", "webhook-token", { token: "now-here" });
    expect(await stack.readyPath("late-secret", "receiver")).toBe(webhookPath("now-here", "receiver", "late-secret"));
  });

  test("a Secret without a token key is TokenNotFound", async () => {
    stack.secret("no-key", "webhook-token", { password: "x" });
    stack.receiver("no-key", "receiver", spec);
    await waitFor("TokenNotFound", () =>
      conditions("no-key", "receiver").some((c: any) => c.reason === "TokenNotFound"),
    );
    expect(conditions("no-key", "receiver")[0].message).toBe(
      "invalid 'no-key/webhook-token' secret data: required fields 'token'",
    );
  });

  test("an empty token is TokenNotFound for every type that has one: its path and HMAC key would be public", async () => {
    stack.secret("empty-token", "webhook-token", { token: "" });
    for (const type of ["github", "generic", "gitlab", "generic-hmac"])
      stack.receiver("empty-token", type, { ...spec, type });
    for (const type of ["github", "generic", "gitlab", "generic-hmac"]) {
      await waitFor(`${type} TokenNotFound`, () =>
        conditions("empty-token", type).some((c: any) => c.reason === "TokenNotFound"),
      );
      expect(conditions("empty-token", type)[0].message).toBe(
        "invalid 'empty-token/webhook-token' secret data: field 'token' is empty",
      );
      // Flux would serve sha256(name + namespace), signed with an empty key: here it names nothing.
      const body = githubExample("push");
      const res = await stack.post(webhookPath("", type, "empty-token"), {
        headers: {
          "Content-Type": "application/json",
          "X-GitHub-Event": "push",
          "X-Hub-Signature-256": signature("", body),
          "X-Gitlab-Token": "",
          "X-Signature": signature("", body),
        },
        body,
      });
      expect(res.status).toBe(404);
    }
  });

  test(`a condition message past the CRD's ${CONDITION_MESSAGE_MAX_CHARS} characters is cut, so the Stalled status is written`, async () => {
    // The CEL error quotes the whole expression: a filter of 33,000 characters.
    stack.secret("long-message", "webhook-token", { token: "long-message-token" });
    stack.receiver("long-message", "r", {
      type: "generic",
      secretRef: { name: "webhook-token" },
      resources: [{ kind: "GitRepository", name: "app" }],
      resourceFilter: `${"a ".repeat(16_500)})`,
    });
    const stalled = await waitFor("a Stalled status", () =>
      stack
        .receiverObject("long-message", "r")
        ?.status?.conditions?.find((c: { type: string }) => c.type === "Stalled"),
    );
    expect(stalled.message.length).toBe(CONDITION_MESSAGE_MAX_CHARS);
    expect(stalled.message).toEndWith("…");
  });

  test(`a token longer than ${MAX_TOKEN_BYTES} bytes is TokenNotFound and never served; one of ${MAX_TOKEN_BYTES} is Ready`, async () => {
    const long = "k".repeat(MAX_TOKEN_BYTES + 1);
    stack.secret("long-token", "webhook-token", { token: long });
    stack.receiver("long-token", "receiver", spec);
    await waitFor("TokenNotFound", () =>
      conditions("long-token", "receiver").some((c: any) => c.reason === "TokenNotFound"),
    );
    expect(conditions("long-token", "receiver")[0]).toEqual({
      type: "Ready",
      status: "False",
      reason: "TokenNotFound",
      message: `invalid 'long-token/webhook-token' secret data: field 'token' is longer than ${MAX_TOKEN_BYTES} bytes`,
    });
    const body = githubExample("push");
    const forged = { "Content-Type": "application/json", "X-Hub-Signature-256": signature("x", body) };
    expect((await stack.post(webhookPath(long, "receiver", "long-token"), { headers: forged, body })).status).toBe(404);

    const longest = "k".repeat(MAX_TOKEN_BYTES);
    stack.api.store.patch("v1", "Secret", "long-token", "webhook-token", {
      data: { token: Buffer.from(longest).toString("base64") },
    });
    expect(await stack.readyPath("long-token", "receiver")).toBe(webhookPath(longest, "receiver", "long-token"));
  });

  test("an invalid spec is Stalled with ValidationFailed, and, never Ready, answers 404", async () => {
    stack.secret("invalid", "webhook-token", { token: "t" });
    stack.receiver("invalid", "receiver", { ...spec, type: "generic-oidc" });
    await waitFor("ValidationFailed", () => conditions("invalid", "receiver").some((c: any) => c.type === "Stalled"));
    const message =
      "Reconciliation failed terminally due to configuration error: generic-oidc receiver requires at least one oidcProvider";
    expect(conditions("invalid", "receiver")).toEqual([
      { type: "Ready", status: "False", reason: "ValidationFailed", message },
      { type: "Stalled", status: "True", reason: "ValidationFailed", message },
    ]);
    const res = await stack.post(webhookPath("t", "receiver", "invalid"), { body: "{}" });
    expect(res.status).toBe(404);
  });
});

describe("the index follows the cluster", () => {
  test("a rotated token moves the path", async () => {
    stack.target(GIT, "GitRepository", "rotate", "app");
    const oldPath = await readyReceiver("rotate", "old");
    expect((await stack.post(oldPath, { body: "{}" })).status).toBe(200);

    stack.api.store.patch("v1", "Secret", "rotate", "webhook-token", {
      data: { token: Buffer.from("new").toString("base64") },
    });
    const newPath = webhookPath("new", "receiver", "rotate");
    await waitFor("the new path to answer", async () => (await stack.post(newPath, { body: "{}" })).status === 200);
    expect((await stack.post(oldPath, { body: "{}" })).status).toBe(404);
    // The index moves first; the status follows with its write.
    await waitFor(
      "the status to show the new path",
      () => stack.receiverObject("rotate", "receiver")?.status?.webhookPath === newPath,
    );
  });

  test("a deleted Receiver stops answering", async () => {
    stack.target(GIT, "GitRepository", "delete", "app");
    const path = await readyReceiver("delete");
    expect((await stack.post(path, { body: "{}" })).status).toBe(200);
    stack.api.store.delete(RECEIVER, "Receiver", "delete", "receiver");
    await waitFor("404", async () => (await stack.post(path, { body: "{}" })).status === 404);
  });

  test("a deleted Secret stops the receiver and marks it TokenNotFound, its webhookPath removed as Flux removes it", async () => {
    const path = await readyReceiver("secret-gone");
    stack.api.store.delete("v1", "Secret", "secret-gone", "webhook-token");
    await waitFor("TokenNotFound", () =>
      conditions("secret-gone", "receiver").some((c: any) => c.reason === "TokenNotFound"),
    );
    expect(stack.receiverObject("secret-gone", "receiver")!.status).not.toHaveProperty("webhookPath");
    expect((await stack.post(path, { body: "{}" })).status).toBe(404);
  });

  test("suspend answers 503 and resume serves again, the conditions untouched", async () => {
    stack.target(GIT, "GitRepository", "suspend", "app");
    const path = await readyReceiver("suspend");
    const before = stack.receiverObject("suspend", "receiver")!.status;

    stack.api.store.patch(RECEIVER, "Receiver", "suspend", "receiver", {
      spec: { suspend: true },
    });
    await waitFor("503", async () => (await stack.post(path, { body: "{}" })).status === 503);
    expect(stack.receiverObject("suspend", "receiver")!.status.conditions).toEqual(before.conditions);

    stack.api.store.patch(RECEIVER, "Receiver", "suspend", "receiver", {
      spec: { suspend: false },
    });
    await waitFor("200", async () => (await stack.post(path, { body: "{}" })).status === 200);
  });

  test("`flux reconcile receiver`: the requestedAt annotation is answered in lastHandledReconcileAt", async () => {
    await readyReceiver("reconcile");
    const ready = stack.receiverObject("reconcile", "receiver")!.status.conditions[0];
    for (const requestedAt of ["2026-11-27T12:00:00.123456789Z", "2026-11-27T12:05:00.5Z"]) {
      stack.api.store.patch(RECEIVER, "Receiver", "reconcile", "receiver", {
        metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": requestedAt } },
      });
      await waitFor(
        `lastHandledReconcileAt ${requestedAt}`,
        () => stack.receiverObject("reconcile", "receiver")!.status.lastHandledReconcileAt === requestedAt,
      );
    }
    // Still Ready, and the condition did not transition.
    expect(stack.receiverObject("reconcile", "receiver")!.status.conditions[0]).toEqual(ready);
  });

  test("suspended, then its Secret deleted: status left alone and 503 at its path, as Flux", async () => {
    const path = await readyReceiver("suspend-gone");
    const before = stack.receiverObject("suspend-gone", "receiver")!.status;
    stack.api.store.patch(RECEIVER, "Receiver", "suspend-gone", "receiver", {
      spec: { suspend: true },
    });
    await waitFor("503", async () => (await stack.post(path, { body: "{}" })).status === 503);
    stack.api.store.delete("v1", "Secret", "suspend-gone", "webhook-token");
    await waitFor(
      "the deletion seen",
      () =>
        stack.logs.some(
          (l) =>
            l.msg === "receiver status updated" &&
            l.receiver === "suspend-gone/receiver" &&
            l.reason === "TokenNotFound",
        ) ||
        // Logged once its Receivers were decided without it.
        stack.logs.some(
          (l) => l.msg === "a Receiver's Secret was deleted" && l.secret === "suspend-gone/webhook-token",
        ),
    );
    const res = await stack.post(path, { body: "{}" });
    expect(res).toMatchObject({ status: 503, body: { reason: "receiver is suspended" } });
    // Conditions untouched; observedGeneration follows the suspend (Ready is True), as in Flux.
    const after = stack.receiverObject("suspend-gone", "receiver")!;
    expect(after.status).toEqual({ ...before, observedGeneration: after.metadata.generation });
  });

  test("a spec change keeps the path and advances observedGeneration", async () => {
    const path = await readyReceiver("generation");
    stack.api.store.patch(RECEIVER, "Receiver", "generation", "receiver", {
      spec: { events: ["push"] },
    });
    await waitFor(
      "observedGeneration 2",
      () => stack.receiverObject("generation", "receiver")!.status.observedGeneration === 2,
    );
    expect(stack.receiverObject("generation", "receiver")!.status.webhookPath).toBe(path);
  });
});

describe("only the Secrets that Receivers reference are read", () => {
  const secretReads = (ns: string) =>
    stack.api.requests
      .filter((r) => r.method === "GET" && r.path.startsWith(`/api/v1/namespaces/${ns}/secrets/`))
      .map((r) => r.path.split("/").pop());
  const statusReasons = (ns: string) =>
    stack.logs
      .filter((l) => l.msg === "receiver status updated" && l.receiver === `${ns}/receiver`)
      .map((l) => l.reason);
  /** The status writes logged so far, once there are `n` (the log line follows the write's answer). */
  const loggedStatus = (ns: string, n: number) =>
    waitFor(`${n} status writes of ${ns} logged`, () => statusReasons(ns).length >= n && statusReasons(ns));

  test("Secrets are watched as metadata; the referenced one is read, the others never", async () => {
    stack.secret("only-ref", "helm-release", { release: "x".repeat(10_000) });
    stack.secret("only-ref", "tls", { "tls.key": "private" });
    expect(await readyReceiver("only-ref")).toBe(webhookPath("t", "receiver", "only-ref"));
    expect(secretReads("only-ref")).toEqual(["webhook-token"]);
    const collection = stack.api.requests.filter((r) => r.path === "/api/v1/secrets");
    expect(collection.length).toBeGreaterThanOrEqual(2); // the list and the watch
    for (const r of collection) expect(r.accept).toContain("as=PartialObjectMetadata");
    // Its Secret existed: the Receiver went straight to Ready, never TokenNotFound on the way.
    expect(await loggedStatus("only-ref", 1)).toEqual(["Succeeded"]);
  });

  test("a Secret that comes to be referenced later is read then; a rotation is read again", async () => {
    stack.secret("later-ref", "webhook-token", { token: "first" });
    expect(secretReads("later-ref")).toEqual([]);
    stack.receiver("later-ref", "receiver", spec);
    expect(await stack.readyPath("later-ref", "receiver")).toBe(webhookPath("first", "receiver", "later-ref"));
    stack.api.store.patch("v1", "Secret", "later-ref", "webhook-token", {
      data: { token: Buffer.from("second").toString("base64") },
    });
    await waitFor(
      "the rotated path",
      async () => (await stack.post(webhookPath("second", "receiver", "later-ref"), { body: "{}" })).status !== 404,
    );
    expect(secretReads("later-ref")).toEqual(["webhook-token", "webhook-token"]);
    expect(await loggedStatus("later-ref", 2)).toEqual(["Succeeded", "Succeeded"]);
  });

  test("a Receiver whose Secret's watch event is late goes straight to Ready: the Secret is read, not assumed absent", async () => {
    // The Receivers and the Secrets come in two streams; here the Secrets' is held back.
    const hold = stack.api.faults.add({ path: "/api/v1/secrets", watch: true, times: Infinity, respond: "hang" });
    try {
      stack.api.dropWatches("clean");
      await waitFor("the Secret watch to be held", () => stack.api.faults.hung >= 1);
      expect(await readyReceiver("late-watch")).toBe(webhookPath("t", "receiver", "late-watch"));
      expect(secretReads("late-watch")).toEqual(["webhook-token"]);
      expect(await loggedStatus("late-watch", 1)).toEqual(["Succeeded"]);
    } finally {
      hold.remove();
    }
  });

  test("a running replica stays ready while a newly referenced Secret is being read", async () => {
    const hang = stack.api.faults.add({
      method: "GET",
      path: "/api/v1/namespaces/slow-read/secrets/webhook-token",
      times: 1,
      respond: "hang",
    });
    stack.secret("slow-read", "webhook-token", { token: "t" });
    stack.receiver("slow-read", "receiver", spec);
    await waitFor("the read to hang", () => stack.api.faults.hung === 1);
    expect((await fetch(`${stack.fluxhook.healthUrl}/readyz`)).status).toBe(200);
    hang.remove();
    expect(await stack.readyPath("slow-read", "receiver")).toBe(webhookPath("t", "receiver", "slow-read"));
  });

  test("a Secret fluxhook may not read: TokenNotFound with the API's message, as Flux words it; Ready once it may", async () => {
    const message = `secrets "webhook-token" is forbidden: User "system:serviceaccount:flux-system:fluxhook" cannot get resource "secrets" in API group "" in the namespace "forbidden"`;
    const forbidden = stack.api.faults.add({
      method: "GET",
      path: "/api/v1/namespaces/forbidden/secrets/webhook-token",
      times: Infinity,
      respond: { status: 403, message },
    });
    try {
      stack.secret("forbidden", "webhook-token", { token: "t" });
      stack.receiver("forbidden", "receiver", spec);
      await waitFor("TokenNotFound", () =>
        conditions("forbidden", "receiver").some((c: any) => c.reason === "TokenNotFound"),
      );
      expect(conditions("forbidden", "receiver")[0].message).toBe(
        `unable to read token from secret 'forbidden/webhook-token' error: ${message}`,
      );
    } finally {
      forbidden.remove();
    }
    expect(await stack.readyPath("forbidden", "receiver")).toBe(webhookPath("t", "receiver", "forbidden"));
  });

  test("a Secret that cannot be read is retried; the Receiver is decided once it is", async () => {
    const fault = stack.api.faults.add({
      method: "GET",
      path: "/api/v1/namespaces/unreadable/secrets/webhook-token",
      times: 2,
      respond: { status: 500, message: "etcd is sad" },
    });
    expect(await readyReceiver("unreadable")).toBe(webhookPath("t", "receiver", "unreadable"));
    expect(fault.hits).toBe(2);
    expect(await loggedStatus("unreadable", 1)).toEqual(["Succeeded"]);
    expect(
      stack.logs.filter((l) => l.msg === "cannot read a Receiver's Secret" && l.secret === "unreadable/webhook-token")
        .length,
    ).toBe(2);
  });
});

describe("two Receivers with one webhook path", () => {
  // The path is sha256(token + name + namespace): "p" in "athx" and "pa" in "thx" give "pathx".
  test("the older keeps it; the younger is refused with a reason, and takes the path once the older is gone", async () => {
    stack.target(GIT, "GitRepository", "athx", "app");
    stack.target(GIT, "GitRepository", "thx", "app");
    const path = await readyReceiver("athx", "same", "p");
    stack.secret("thx", "webhook-token", { token: "same" });
    stack.receiver("thx", "pa", spec);
    expect(webhookPath("same", "pa", "thx")).toBe(path);
    await waitFor("the younger refused", () => conditions("thx", "pa").some((c: any) => c.type === "Stalled"));
    const message = terminalMessage(PATH_COLLISION);
    expect(conditions("thx", "pa")).toEqual([
      { type: "Ready", status: "False", reason: "ValidationFailed", message },
      { type: "Stalled", status: "True", reason: "ValidationFailed", message },
    ]);
    expect(conditions("athx", "p")[0]).toMatchObject({ type: "Ready", status: "True" });
    expect(
      stack.logs.some(
        (l) =>
          l.msg === "webhook path collision: an older Receiver has the same path" &&
          l.receiver === "thx/pa" &&
          l.servedBy === "athx/p",
      ),
    ).toBe(true);
    // The path still serves the older one.
    expect((await stack.post(path, { body: "{}" })).status).toBe(200);
    expect(stack.requestedAt(GIT, "GitRepository", "athx", "app")).toBeDefined();
    expect(stack.requestedAt(GIT, "GitRepository", "thx", "app")).toBeUndefined();

    stack.api.store.delete(RECEIVER, "Receiver", "athx", "p");
    expect(await stack.readyPath("thx", "pa")).toBe(path);
    expect((await stack.post(path, { body: "{}" })).status).toBe(200);
    expect(stack.requestedAt(GIT, "GitRepository", "thx", "app")).toBeDefined();
  });
});

describe("a path collision is decided by age, whatever the list order", () => {
  const secretIn = (namespace: string) => ({
    metadata: { name: "webhook-token", namespace, resourceVersion: "1" },
    data: { token: Buffer.from("same").toString("base64") },
  });
  const receiverAt = (namespace: string, name: string, creationTimestamp: string) => ({
    metadata: { name, namespace, generation: 1, uid: `${namespace}-${name}`, resourceVersion: "1", creationTimestamp },
    spec,
  });
  // "bc/a" sorts before "c/ab", but "c/ab" is older.
  const younger = receiverAt("bc", "a", "2026-02-01T00:00:00Z");
  const older = receiverAt("c", "ab", "2026-01-01T00:00:00Z");
  const path = webhookPath("same", "ab", "c");

  for (const [order, receivers] of [
    ["older listed first", [older, younger]],
    ["younger listed first", [younger, older]],
  ] as const) {
    test(order, () => {
      const { index, secrets, receivers: cache } = reconcilerRig();
      replaceAll(secrets.sink, [secretIn("bc"), secretIn("c")]);
      replaceAll(cache.sink, receivers);
      expect(webhookPath("same", "a", "bc")).toBe(path);
      expect(index.lookup(path)?.key).toEqual({ namespace: "c", name: "ab" });
      expect(index.get({ namespace: "bc", name: "a" })).toBeUndefined();
      expect(index.size).toBe(1);
      cache.sink.remove(older);
      expect(index.lookup(path)?.key).toEqual({ namespace: "bc", name: "a" });
    });
  }
});

describe("--status-updates=false", () => {
  test("serves the path but never writes status", async () => {
    await using quiet = await startStack({ statusUpdates: false });
    quiet.target(GIT, "GitRepository", "quiet", "app");
    quiet.secret("quiet", "webhook-token", { token: "t" });
    quiet.receiver("quiet", "receiver", spec);
    const path = webhookPath("t", "receiver", "quiet");
    await waitFor("the path to answer", async () => (await quiet.post(path, { body: "{}" })).status === 200);
    expect(quiet.receiverObject("quiet", "receiver")!.status).toBeUndefined();
    expect(quiet.api.requests.filter((r: any) => r.path.endsWith("/status"))).toEqual([]);
  });
});

describe("status writes in order", () => {
  /** A status writer whose writes land when the test says, each producing the next resourceVersion. */
  function heldWriter() {
    let version = 100;
    const writes: { reason: string | undefined; land: () => string }[] = [];
    const writer = {
      patchReceiverFinalizers: async (): Promise<KubeResult<string>> => {
        throw new Error("the Receivers of this test carry Flux's finalizer already");
      },
      patchReceiverStatus: (_key: ObjectKey, status: ReceiverStatus) =>
        new Promise<KubeResult<string>>((resolve) => {
          writes.push({
            reason: status.conditions?.[0]?.reason,
            land: () => {
              const resourceVersion = String(++version);
              resolve({ ok: true, value: resourceVersion });
              return resourceVersion;
            },
          });
        }),
    };
    return { writer, writes };
  }
  const receiver = (resourceVersion: string, status?: ReceiverStatus) => ({
    metadata: {
      name: "r",
      namespace: "ns",
      generation: 1,
      uid: "u1",
      resourceVersion,
      finalizers: [RECEIVER_FINALIZER],
    },
    spec,
    ...(status ? { status } : {}),
  });
  const secret = {
    metadata: { name: "webhook-token", namespace: "ns" },
    data: { token: Buffer.from("t").toString("base64") },
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  test("the Secret arriving while TokenNotFound is being written: one write at a time, and stale watch events write nothing", async () => {
    const { writer, writes } = heldWriter();
    const { secrets, receivers } = reconcilerRig({
      writer: { kube: writer, canWrite: () => true, backoff: { baseMs: 1, capMs: 1 } },
      now: () => "2026-01-01T00:00:00Z",
    });
    replaceAll(secrets.sink, []);
    replaceAll(receivers.sink, [receiver("10")]);
    await waitFor("the TokenNotFound write", () => writes.length === 1);
    expect(writes.map((w) => w.reason)).toEqual(["TokenNotFound"]);

    secrets.sink.upsert(secret);
    await settle();
    expect(writes.length).toBe(1); // the Ready write waits for the TokenNotFound write to land

    const first = writes[0]!.land();
    await waitFor("the Ready write", () => writes.length === 2);
    expect(writes[1]!.reason).toBe("Succeeded");

    // The watch now shows the first write (TokenNotFound), older than the Ready write in flight.
    const notFound = {
      conditions: [{ type: "Ready", status: "False" as const, reason: "TokenNotFound", message: "m" }],
    };
    receivers.sink.upsert(receiver(first, notFound));
    const second = writes[1]!.land();
    await settle();
    receivers.sink.upsert(receiver(first, notFound)); // still stale: our Ready write is newer
    await settle();
    expect(writes.length).toBe(2);

    // The watch catches up; from then on the watched status is the truth again.
    const path = webhookPath("t", "r", "ns");
    const ready = desiredStatus({ kind: "ready", path }, 1, undefined, "2026-01-01T00:00:00Z");
    receivers.sink.upsert(receiver(second, ready));
    await settle();
    expect(writes.length).toBe(2);
    receivers.sink.upsert(receiver(String(Number(second) + 1), notFound)); // someone else overwrote it
    await settle();
    expect(writes.map((w) => w.reason)).toEqual(["TokenNotFound", "Succeeded", "Succeeded"]);
  });

  test("resourceVersions compare as integers; anything else is never older", () => {
    expect([
      olderVersion("9", "10"),
      olderVersion("10", "9"),
      olderVersion("10", "10"),
      olderVersion("abc", "10"),
      olderVersion("", "1"),
    ]).toEqual([true, false, false, false, false]);
    expect([
      atLeastVersion("10", "9"),
      atLeastVersion("10", "10"),
      atLeastVersion("9", "10"),
      atLeastVersion("abc", "abc"),
      atLeastVersion("abc", "abd"),
    ]).toEqual([true, true, false, true, false]);
  });
});
