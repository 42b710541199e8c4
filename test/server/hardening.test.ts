/**
 * The receiver under abuse and faults: duplicates and replays, rate limits and concurrency caps
 * under load, timeouts and header caps, Kubernetes API faults (PATCH failures and hangs, dropped
 * watches, the API server down for a while), and a token rotated under load.
 */
import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { webhookPath } from "../../shared";
import { githubExample } from "../support/payloads";
import { githubHeaders } from "../support/signer";
import { stalledBody } from "../support/stalled-body";
import { startStack, waitFor, type Stack } from "../support/stack";
import { TEST_CONFIG } from "../support/stack";
import { createKubeClient } from "../../server/kube/client";
import { startFluxhook } from "../../server/server";
import { silentLogger } from "../../server/runtime/log";
import { GIT, RECEIVER } from "../support/kinds";

const push = githubExample("push");
const ping = githubExample("ping");

const signed = (token: string, body = push, extra: Record<string, string> = {}) => ({
  ...githubHeaders(token, body),
  ...extra,
});

/** A github Receiver `ns/name` for the GitRepository `name`: its path once Ready. */
const github = (stack: Stack, ns: string, name: string, token: string, spec: Record<string, unknown> = {}) =>
  stack.readyReceiver(ns, name, {
    type: "github",
    token,
    targets: [{ apiVersion: GIT, kind: "GitRepository", name }],
    spec,
  });

/** The statuses of the stalled connections that were answered. */
const answered = (conns: readonly { status: number | undefined }[]) =>
  conns.flatMap((c) => (c.status === undefined ? [] : [c.status]));

/** Runs `count` requests with at most `concurrency` in flight; returns the status counts. */
async function load(
  count: number,
  concurrency: number,
  send: (i: number) => Promise<Response>,
): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const res = await send(i);
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

describe("duplicate deliveries and replays", () => {
  test("a delivery id sent ahead cannot make the genuine delivery a duplicate", async () => {
    await using stack = await startStack();
    // cdevents: the URL is the only credential, so its Ce-Id is not used for duplicates at all.
    const cdPath = await stack.readyReceiver("ahead", "cd", {
      type: "cdevents",
      token: "ahead-token",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const cdevent = (id: string) =>
      JSON.stringify({
        context: {
          version: "0.4.1",
          id,
          source: "/ci",
          type: "dev.cdevents.change.merged.0.2.0",
          timestamp: "2026-01-01T00:00:00Z",
        },
        subject: { id: "change-1", source: "/ci", type: "change", content: { repository: { id: "org/app" } } },
      });
    const headers = { "Content-Type": "application/json", "Ce-Id": "build-42" };
    const ahead = await stack.post(cdPath, { headers, body: cdevent("forged") });
    expect(ahead.status).toBe(200);
    const genuine = await stack.post(cdPath, { headers, body: cdevent("genuine") });
    expect({ status: genuine.status, reason: genuine.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target annotated",
    });
    // Nor its exact repeat: without a credential an id proves nothing (Flux has no duplicates either).
    expect((await stack.post(cdPath, { headers, body: cdevent("genuine") })).body.reason).toBe(
      "1 of 1 target annotated",
    );

    // github: an id is a duplicate only with the same body, so a replayed old body under the
    // id of the coming delivery does not suppress it.
    const path = await github(stack, "ahead", "gh", "gh-token");
    const id = { "X-GitHub-Delivery": "predicted-id" };
    const old = JSON.stringify({ ref: "refs/heads/old" });
    expect((await stack.post(path, { headers: signed("gh-token", old, id), body: old })).status).toBe(200);
    const real = await stack.post(path, { headers: signed("gh-token", push, id), body: push });
    expect(real.body.reason).toBe("1 of 1 target annotated");
    const redelivered = await stack.post(path, { headers: signed("gh-token", push, id), body: push });
    expect(redelivered.body.reason).toBe('duplicate delivery "predicted-id": already handled, nothing annotated');
  });

  test("a delivery id already handled is 200 'duplicate' without annotating; a failed attempt can be redelivered", async () => {
    await using stack = await startStack({}, { patchBudgetMs: 200 });
    const path = await github(stack, "dup", "app", "t");
    const id = crypto.randomUUID();
    const first = await stack.post(path, { headers: signed("t", push, { "X-GitHub-Delivery": id }), body: push });
    expect(first.status).toBe(200);
    const annotated = stack.requestedAt(GIT, "GitRepository", "dup", "app");

    const again = await stack.post(path, { headers: signed("t", push, { "X-GitHub-Delivery": id }), body: push });
    expect({ status: again.status, reason: again.body.reason, targets: again.body.targets }).toEqual({
      status: 200,
      reason: `duplicate delivery "${id}": already handled, nothing annotated`,
      targets: [],
    });
    expect(stack.requestedAt(GIT, "GitRepository", "dup", "app")).toBe(annotated);

    // Without an id, every request re-annotates, as in Flux.
    expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
    expect(stack.requestedAt(GIT, "GitRepository", "dup", "app")).not.toBe(annotated);

    // A failed attempt is not recorded: its redelivery goes through.
    const failing = crypto.randomUUID();
    const fault = stack.api.faults.add({
      method: "PATCH",
      path: /gitrepositories/,
      times: Infinity,
      respond: { status: 500 },
    });
    expect(
      (await stack.post(path, { headers: signed("t", push, { "X-GitHub-Delivery": failing }), body: push })).status,
    ).toBe(500);
    fault.remove();
    const redelivered = await stack.post(path, {
      headers: signed("t", push, { "X-GitHub-Delivery": failing }),
      body: push,
    });
    expect({ status: redelivered.status, reason: redelivered.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target annotated",
    });
  });

  test("with two replicas, each remembers its own ids: a redelivery reaching the other annotates once more", async () => {
    // What holds behind a Service: state is per replica (see server/delivery/protect/guards.ts). The extra
    // annotation is one more reconcile request, which Flux's controllers collapse anyway.
    await using stack = await startStack();
    const path = await github(stack, "replicas", "app", "t");
    const other = await startFluxhook({
      config: TEST_CONFIG,
      log: silentLogger,
      kube: createKubeClient({ kubeConfig: stack.api.kubeConfig(), log: silentLogger }),
    });
    try {
      await waitFor("the second replica", () => other.ready() && other.receivers().some((r) => r.path === path));
      const headers = signed("t", push, { "X-GitHub-Delivery": "same-id" });
      const replicaA = (await stack.post(path, { headers, body: push })).body.reason;
      const replicaADuplicate = (await stack.post(path, { headers, body: push })).body.reason;
      const replicaB = (await (await fetch(other.receiverUrl + path, { method: "POST", headers, body: push })).json())
        .reason;
      const replicaBDuplicate = (
        await (await fetch(other.receiverUrl + path, { method: "POST", headers, body: push })).json()
      ).reason;
      expect([replicaA, replicaADuplicate, replicaB, replicaBDuplicate]).toEqual([
        "1 of 1 target annotated",
        'duplicate delivery "same-id": already handled, nothing annotated',
        "1 of 1 target annotated",
        'duplicate delivery "same-id": already handled, nothing annotated',
      ]);
    } finally {
      await other.stop();
    }
  });

  test("GitLab, Bitbucket and CloudEvents ids count too", async () => {
    await using stack = await startStack();
    const path = await stack.readyReceiver("ids", "gitlab", {
      type: "gitlab",
      token: "t",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    const headers = { "X-Gitlab-Token": "t", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "uuid-1" };
    expect((await stack.post(path, { headers, body: "{}" })).body.reason).toBe("1 of 1 target annotated");
    expect((await stack.post(path, { headers, body: "{}" })).body.reason).toStartWith("duplicate delivery");
  });

  test("--replay-window refuses the same signed body under a fresh id; other bodies and unsigned types pass", async () => {
    await using stack = await startStack({ limits: { ...TEST_CONFIG.limits, replayWindowMs: 60_000 } });
    const path = await github(stack, "replay", "app", "t");
    expect(
      (await stack.post(path, { headers: signed("t", push, { "X-GitHub-Delivery": "a" }), body: push })).status,
    ).toBe(200);
    const replayed = await stack.post(path, { headers: signed("t", push, { "X-GitHub-Delivery": "b" }), body: push });
    expect({ status: replayed.status, reason: replayed.body.reason }).toEqual({
      status: 409,
      reason: "this signed body was already delivered within the replay window",
    });
    expect(
      (await stack.post(path, { headers: signed("t", ping, { "X-GitHub-Delivery": "c" }), body: ping })).status,
    ).toBe(200);

    const generic = await stack.readyReceiver("replay", "generic", {
      type: "generic",
      token: "g",
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
    expect((await stack.post(generic, { body: "{}" })).status).toBe(200);
    expect((await stack.post(generic, { body: "{}" })).status).toBe(200);
  });

  test("off by default: a CI job posting the same body twice keeps working, as with Flux", async () => {
    await using stack = await startStack();
    const path = await github(stack, "same", "app", "t");
    for (let i = 0; i < 3; i++) expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
  });
});

describe("rate limits under load", () => {
  // A refill slow enough (one per 1,000 s) that how long the flood takes cannot change the counts.
  const limits = { ...TEST_CONFIG.limits, failedRate: 0.001, failedBurst: 5 };

  test("a forged flood gets 429 without locking out the receiver's valid deliveries or starving another receiver", async () => {
    await using stack = await startStack({ limits });
    const victim = await github(stack, "flood", "victim", "v");
    const bystander = await github(stack, "flood", "bystander", "b");
    const forged = load(400, 20, () =>
      fetch(stack.fluxhook.receiverUrl + victim, { method: "POST", body: push, headers: signed("forged") }),
    );
    const valid = load(20, 2, (i) =>
      fetch(stack.fluxhook.receiverUrl + (i % 2 ? victim : bystander), {
        method: "POST",
        body: push,
        headers: signed(i % 2 ? "v" : "b"),
      }),
    );
    const [forgedStatuses, validStatuses] = await Promise.all([forged, valid]);
    expect(validStatuses).toEqual({ 200: 20 });
    expect(forgedStatuses[400]).toBeGreaterThanOrEqual(5);
    expect(forgedStatuses[429]).toBeGreaterThan(300);
    expect(Object.keys(forgedStatuses).sort()).toEqual(["400", "429"]);
    // Only the refusals within the failure budget are error lines: the flood is not a log flood.
    const errorLines = stack.logs.filter((l) => l.level === "error" && l.msg === "delivery refused").length;
    expect(errorLines).toBe(forgedStatuses[400]!);

    const refused = await stack.post(victim, { headers: signed("forged"), body: push });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused.body.reason).toBe(
      "too many failed deliveries for this receiver (signature mismatch (X-Hub-Signature-256)); retry later",
    );
  });

  test("bodies that never finish cannot lock out the receiver's real sender, nor starve another receiver", async () => {
    // Long timeouts: on a slow machine only eviction, never a timeout, answers the stalled bodies.
    await using stack = await startStack({}, { bodyTimeoutMs: 60_000, idleTimeoutSeconds: 60 });
    const victim = await github(stack, "trickle", "victim", "v");
    const bystander = await github(stack, "trickle", "bystander", "b");
    // More unfinished bodies than the receiver's 256 slots: each newcomer evicts the oldest.
    const slow = Array.from({ length: 300 }, () => stalledBody(stack.fluxhook.receiverUrl, victim, 1024));
    try {
      await waitFor("the 44 oldest to be evicted", () => answered(slow).length >= 44, 15_000);
      for (let i = 0; i < 3; i++)
        expect((await stack.post(victim, { headers: signed("v"), body: push })).status).toBe(200);
      expect((await stack.post(bystander, { headers: signed("b"), body: push })).status).toBe(200);
      expect(new Set(answered(slow))).toEqual(new Set([408]));
    } finally {
      for (const s of slow) s.close();
    }
  }, 30_000);

  test("the body bytes in flight are bounded: the oldest unfinished bodies make room", async () => {
    await using stack = await startStack({}, { bodyBytesInFlight: 64 * 1024 });
    const path = await github(stack, "bytes", "app", "t");
    // Ten declared 20 KiB bodies, never finished: three fit in 64 KiB.
    const slow = Array.from({ length: 10 }, () => stalledBody(stack.fluxhook.receiverUrl, path, 20 * 1024));
    try {
      await waitFor("seven evicted", () => answered(slow).length >= 7);
      expect(answered(slow)).toEqual([408, 408, 408, 408, 408, 408, 408]);
      expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
    } finally {
      for (const s of slow) s.close();
    }
  });

  test("a flood of unknown digests costs a 404 and no Kubernetes call", async () => {
    await using stack = await startStack();
    await github(stack, "unknown", "app", "t");
    // The writes that follow Ready (the finalizer, the Succeeded Event) are done before counting.
    await waitFor(
      "the Receiver's writes",
      () =>
        stack.api.requests.some((r) => r.method === "POST" && r.path.endsWith("/events")) &&
        stack.receiverObject("unknown", "app")?.metadata.finalizers?.length === 1,
    );
    const before = stack.api.requests.filter((r) => !r.watch).length;
    const statuses = await load(2000, 50, (i) =>
      fetch(`${stack.fluxhook.receiverUrl}/hook/${i.toString(16).padStart(64, "0")}`, {
        method: "POST",
        body: push,
        headers: signed("t"),
      }),
    );
    expect(statuses).toEqual({ 404: 2000 });
    expect(stack.api.requests.filter((r) => !r.watch).length).toBe(before);
  });

  test("at default flags valid deliveries are not rate limited: a 10,000-delivery burst from 100 clients is all 200", async () => {
    // With the old default (50/s, burst 500) 9,477 of these were 429: lost reconciles.
    await using stack = await startStack();
    const path = await github(stack, "burst", "app", "burst-token");
    const headers = signed("burst-token");
    const statuses = await load(10_000, 100, () =>
      fetch(stack.fluxhook.receiverUrl + path, { method: "POST", body: push, headers }),
    );
    expect(statuses).toEqual({ 200: 10_000 });
  }, 60_000);

  test("the valid-delivery budget, opted into, answers 429 with Retry-After beyond its burst", async () => {
    // One token per 100 s: a slow machine cannot refill one during the test.
    await using stack = await startStack({ limits: { ...TEST_CONFIG.limits, validRate: 0.01, validBurst: 2 } });
    const path = await github(stack, "valid-limit", "app", "t");
    const statuses = await load(5, 1, () =>
      fetch(stack.fluxhook.receiverUrl + path, { method: "POST", body: push, headers: signed("t") }),
    );
    expect(statuses).toEqual({ 200: 2, 429: 3 });
    const res = await stack.post(path, { headers: signed("t"), body: push });
    expect(res.status).toBe(429);
    // The time to the next token, rounded up: just under 100 s.
    expect(Number(res.headers.get("retry-after"))).toBeWithin(95, 101);
  });

  test("the global concurrency cap answers 429 while deliveries are held", async () => {
    await using stack = await startStack({ limits: { ...TEST_CONFIG.limits, maxConcurrent: 2 } });
    const a = await github(stack, "cap", "a", "t");
    const b = await github(stack, "cap", "b", "t");
    const hold = stack.api.faults.add({ method: "PATCH", path: /gitrepositories/, times: Infinity, respond: "hang" });
    const held = [
      fetch(stack.fluxhook.receiverUrl + a, { method: "POST", body: push, headers: signed("t") }),
      fetch(stack.fluxhook.receiverUrl + b, { method: "POST", body: push, headers: signed("t") }),
    ];
    await waitFor("two held PATCHes", () => stack.api.faults.hung >= 2);
    const third = await stack.post(a, { headers: signed("t"), body: push });
    expect({ status: third.status, reason: third.body.reason }).toEqual({
      status: 429,
      reason: "too many deliveries in flight; retry later",
    });
    hold.remove();
    stack.api.faults.clear();
    for (const res of await Promise.all(held)) expect([200, 500]).toContain(res.status);
  });
});

describe("timeouts and caps", () => {
  test("a body that stops arriving is answered 408", async () => {
    await using stack = await startStack({}, { bodyTimeoutMs: 200 });
    const path = await github(stack, "slow", "app", "t");
    let pull = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (pull++ === 0) controller.enqueue(new TextEncoder().encode("{"));
        // then never more: the sender holds the socket
        else await new Promise(() => {});
      },
    });
    const res = await fetch(stack.fluxhook.receiverUrl + path, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json" },
    });
    expect(res.status).toBe(408);
    expect((await res.json()).reason).toBe("request body not received within 0 s");
  });

  test("headers over Bun's 16 KiB cap are refused with 431", async () => {
    await using stack = await startStack();
    const res = await fetch(`${stack.fluxhook.receiverUrl}/hook/abc`, {
      method: "POST",
      body: "{}",
      headers: { "X-Padding": "a".repeat(64 * 1024) },
    });
    expect(res.status).toBe(431);
  });

  test("a connection that never finishes its headers is closed (header timeout)", async () => {
    await using stack = await startStack();
    const { port } = new URL(stack.fluxhook.receiverUrl);
    const socket = connect(Number(port), "127.0.0.1");
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => (closed = true));
    socket.write("POST /hook/abc HTTP/1.1\r\nHost: x\r\n");
    // Bun's own header timeout, whatever idleTimeout says: 8 to 12 s, at a tick of its 4 s sweep.
    await waitFor("the server to close the socket", () => closed, 25_000);
  }, 30_000);
});

describe("Kubernetes API faults", () => {
  test("PATCH 500 twice then success: retried, 200", async () => {
    await using stack = await startStack();
    const path = await github(stack, "retry", "app", "t");
    stack.api.faults.add({ method: "PATCH", path: /gitrepositories/, times: 2, respond: { status: 500 } });
    stack.api.resetRequests();
    expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
    expect(stack.api.count({ method: "PATCH", path: /gitrepositories/ })).toBe(3);
  });

  test("409 and 429 (honouring Retry-After) are retried", async () => {
    await using stack = await startStack();
    const path = await github(stack, "retry-429", "app", "t");
    stack.api.faults.add({ method: "PATCH", path: /gitrepositories/, times: 1, respond: { status: 409 } });
    stack.api.faults.add({
      method: "PATCH",
      path: /gitrepositories/,
      times: 1,
      respond: { status: 429, retryAfterSeconds: 0 },
    });
    expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
  });

  test("a PATCH that always fails: bounded retries, then 500 with the reason; the server stays healthy", async () => {
    await using stack = await startStack({}, { patchBudgetMs: 2_000 });
    const path = await github(stack, "down", "app", "t");
    const fault = stack.api.faults.add({
      method: "PATCH",
      path: /gitrepositories/,
      times: Infinity,
      respond: { status: 500, message: "etcd is sad" },
    });
    stack.api.resetRequests();
    const res = await stack.post(path, { headers: signed("t"), body: push });
    expect(res.status).toBe(500);
    expect(res.body.targets[0].reason).toMatch(/^GitRepository down\/app: etcd is sad \(after [2-5] attempts\)$/);
    expect(stack.api.count({ method: "PATCH", path: /gitrepositories/ })).toBeLessThanOrEqual(5);
    fault.remove();
    expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
    expect((await fetch(`${stack.fluxhook.healthUrl}/healthz`)).status).toBe(200);
  });

  test("a PATCH that hangs times out: 500 'timed out', and the next delivery works", async () => {
    await using stack = await startStack({}, { callTimeoutMs: 300, patchBudgetMs: 500 });
    const path = await github(stack, "hang", "app", "t");
    const fault = stack.api.faults.add({ method: "PATCH", path: /gitrepositories/, times: 1, respond: "hang" });
    const res = await stack.post(path, { headers: signed("t"), body: push });
    expect(res.status).toBe(500);
    expect(res.body.targets[0].reason).toContain("Kubernetes API timed out");
    fault.remove();
    stack.api.faults.clear();
    expect((await stack.post(path, { headers: signed("t"), body: push })).status).toBe(200);
  });

  test("dropped watches resume, and changes made while the API server was down are not missed", async () => {
    await using stack = await startStack();
    const kept = await github(stack, "outage", "kept", "k");
    const doomed = await github(stack, "outage", "doomed", "d");
    const rotated = await github(stack, "outage", "rotated", "old");

    expect(stack.api.dropWatches()).toBeGreaterThan(0);
    await waitFor(
      "watches to reconnect",
      async () => (await (await fetch(`${stack.fluxhook.healthUrl}/readyz`)).json()).watches.receivers === "connected",
    );

    await stack.api.stop();
    await waitFor("readyz to report the outage", async () => {
      const body = await (await fetch(`${stack.fluxhook.healthUrl}/readyz`)).json();
      return body.watches.receivers === "reconnecting" && body.status === "ready";
    });
    // Webhooks are still served from the index meanwhile (the PATCH fails: the API is down).
    expect((await stack.post(kept, { headers: signed("k"), body: push })).status).toBe(500);

    stack.api.store.delete(RECEIVER, "Receiver", "outage", "doomed");
    stack.api.store.patch("v1", "Secret", "outage", "rotated-token", {
      data: { token: Buffer.from("new").toString("base64") },
    });
    stack.target(GIT, "GitRepository", "outage", "fresh");
    stack.secret("outage", "fresh-token", { token: "f" });
    stack.receiver("outage", "fresh", {
      type: "github",
      secretRef: { name: "fresh-token" },
      resources: [{ kind: "GitRepository", name: "fresh" }],
    });
    stack.api.compact();
    await stack.api.restart();

    const fresh = await stack.readyPath("outage", "fresh");
    await waitFor(
      "the deleted receiver to stop answering",
      async () => (await stack.post(doomed, { headers: signed("d"), body: push })).status === 404,
    );
    const moved = webhookPath("new", "rotated", "outage");
    await waitFor(
      "the rotated token to move the path",
      async () => (await stack.post(moved, { headers: signed("new"), body: push })).status === 200,
    );
    expect((await stack.post(rotated, { headers: signed("old"), body: push })).status).toBe(404);
    expect((await stack.post(fresh, { headers: signed("f"), body: push })).status).toBe(200);
    expect((await stack.post(kept, { headers: signed("k"), body: push })).status).toBe(200);
  });

  test("lists come in pages; a continue token that expired mid-list starts the list again, and nothing is missed", async () => {
    await using stack = await startStack({}, { listPageSize: 2 });
    const paths = new Map<string, string>();
    for (const name of ["r1", "r2", "r3", "r4", "r5"]) paths.set(name, await github(stack, "paged", name, name));
    // While the API server is down: r4 goes, r6 comes, and the history is compacted, so fluxhook
    // must list again; the second page of that list meets an expired continue token.
    await stack.api.stop();
    stack.api.store.delete(RECEIVER, "Receiver", "paged", "r4");
    stack.target(GIT, "GitRepository", "paged", "r6");
    stack.secret("paged", "r6-token", { token: "r6" });
    stack.receiver("paged", "r6", {
      type: "github",
      secretRef: { name: "r6-token" },
      resources: [{ kind: "GitRepository", name: "r6" }],
    });
    stack.api.compact();
    stack.api.faults.add({
      method: "GET",
      path: /\/receivers$/,
      param: "continue",
      watch: false,
      times: 1,
      respond: { status: 410, message: "continue token too old" },
    });
    stack.api.resetRequests();
    await stack.api.restart();
    paths.set("r6", await stack.readyPath("paged", "r6"));
    await waitFor(
      "r4 to stop answering",
      async () => (await stack.post(paths.get("r4")!, { headers: signed("r4"), body: push })).status === 404,
    );
    for (const name of ["r1", "r2", "r3", "r5", "r6"])
      expect((await stack.post(paths.get(name)!, { headers: signed(name), body: push })).status).toBe(200);
    const lists = stack.api.requests.filter((r) => r.method === "GET" && !r.watch && /\/receivers$/.test(r.path));
    // The failed list (a first page, then a 410), then a whole one: 5 receivers in pages of 2.
    expect(lists.map((r) => `${r.query.continue ? "next" : "first"} ${r.status}`)).toEqual([
      "first 200",
      "next 410",
      "first 200",
      "next 200",
      "next 200",
    ]);
    expect(lists.every((r) => r.query.limit === "2")).toBe(true);
  });

  test("a token rotated under load: every answer is 200 or 404, never a signature mismatch", async () => {
    await using stack = await startStack({ limits: { ...TEST_CONFIG.limits, validRate: 0 } });
    await github(stack, "rotation", "app", "token-0");
    let generation = 0;
    const rotate = (async () => {
      for (let g = 1; g <= 20; g++) {
        stack.api.store.patch("v1", "Secret", "rotation", "app-token", {
          data: { token: Buffer.from(`token-${g}`).toString("base64") },
        });
        generation = g;
        await Bun.sleep(5);
      }
    })();
    const statuses = await load(600, 20, () => {
      const token = `token-${generation}`;
      return fetch(stack.fluxhook.receiverUrl + webhookPath(token, "app", "rotation"), {
        method: "POST",
        body: push,
        headers: signed(token),
      });
    });
    await rotate;
    expect(Object.keys(statuses).filter((s) => s !== "200" && s !== "404")).toEqual([]);
    // The last rotation is served once it is read (the load may have ended before).
    const last = webhookPath("token-20", "app", "rotation");
    await waitFor(
      "the last token to be served",
      async () => (await stack.post(last, { headers: signed("token-20"), body: push })).status === 200,
    );
  });
});
