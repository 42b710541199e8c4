/**
 * The bundled action, as the runner runs it, with `wait-for: ready` against fluxhook's real
 * server and the Kubernetes API test server. A stand-in for
 * source-controller and kustomize-controller works the objects as they do: on a new
 * `requestedAt` the source sets `lastHandledReconcileAt` and a new artifact revision; each
 * Kustomization whose sourceRef names it then sets its applied revision and Ready (or fails, or
 * never gets there). Also: Flux's own receiver (no status query) fails the wait at once, a query
 * with a bad signature and one naming a foreign object are refused without a read.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { REQUESTED_AT_ANNOTATION } from "../../server/api/annotations";
import { MAX_STATUS_ANSWER_CONSUMERS } from "../../server/limits";
import { buildRequest, buildStatusQuery, type RequestSettings } from "../../action/request";
import { encodeStatusQuery, statusQueryKey, statusQueryPath, webhookPath } from "../../shared";
import { signature } from "../support/signer";
import { waitFor, type ReceiverFixture, type Stack } from "../support/stack";
import type { TokenIssuer } from "../support/tokens";
import { startFluxhook, type FluxhookFixture } from "./fluxhook-fixture";
import { GIT, KS } from "../support/kinds";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, events, leaks, runAction, startIdTokenEndpoint, startReceiver } from "./harness";
import { nodeFor } from "./node-versions";

const NS = "flux-system";
const TOKEN = "wait-e2e-token";

/** What each Kustomization does once its source has a new revision. */
type Behaviour = "apply" | "fail" | "stuck";
const FAILURE = "kustomize build failed: accumulating resources: apps/missing.yaml: no such file or directory";

let fixture: FluxhookFixture;
let stack: Stack;
let issuer: TokenIssuer;
let controllers: { stop(): Promise<void> };

const condition = (status: "True" | "False", reason: string, message: string) => [
  { type: "Ready", status, reason, message, lastTransitionTime: new Date().toISOString() },
];

/**
 * The stand-in controllers: a loop over the store, as a controller's informer would see it. Each
 * source answers a new requestedAt with a new revision; each Kustomization then acts per its
 * `behaviour` label.
 */
function startControllers(): { stop(): Promise<void> } {
  let running = true;
  let revisions = 0;
  const loop = (async () => {
    while (running) {
      for (const src of stack.api.store.list(GIT, "GitRepository", NS) as any[]) {
        const requested = src.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
        if (requested === undefined || requested === src.status?.lastHandledReconcileAt) continue;
        const revision = `main@sha1:${(++revisions).toString(16).padStart(40, "0")}`;
        stack.api.store.patch(
          GIT,
          "GitRepository",
          NS,
          src.metadata.name,
          {
            status: {
              lastHandledReconcileAt: requested,
              artifact: { revision, digest: "sha256:0", path: "p", url: "http://source-controller/p" },
              conditions: condition("True", "Succeeded", `stored artifact for revision '${revision}'`),
            },
          },
          { subresource: "status" },
        );
      }
      for (const ks of stack.api.store.list(KS, "Kustomization", NS) as any[]) {
        const src = stack.api.store.get(GIT, "GitRepository", NS, ks.spec.sourceRef.name) as any;
        const revision = src?.status?.artifact?.revision;
        const behaviour = ks.metadata.labels?.behaviour as Behaviour;
        if (!revision || behaviour === "stuck" || ks.status?.lastAttemptedRevision === revision) continue;
        const status =
          behaviour === "apply"
            ? {
                lastAppliedRevision: revision,
                lastAttemptedRevision: revision,
                conditions: condition("True", "ReconciliationSucceeded", `Applied revision: ${revision}`),
              }
            : { lastAttemptedRevision: revision, conditions: condition("False", "BuildFailed", FAILURE) };
        stack.api.store.patch(KS, "Kustomization", NS, ks.metadata.name, { status }, { subresource: "status" });
      }
      await Bun.sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** A Kustomization using GitRepository `source` that behaves as told. */
function kustomization(source: string, name: string, behaviour: Behaviour) {
  stack.api.store.create({
    apiVersion: KS,
    kind: "Kustomization",
    metadata: { name, namespace: NS, labels: { behaviour } },
    spec: { sourceRef: { kind: "GitRepository", name: source }, path: "./apps", prune: true },
    status: { lastAppliedRevision: "main@sha1:old", conditions: condition("True", "ReconciliationSucceeded", "old") },
  });
}

/** A Receiver for one GitRepository, and a Kustomization using it that behaves as told; resolves once it is Ready. */
function pipeline(name: string, behaviour: Behaviour, auth: Omit<ReceiverFixture, "targets"> = githubAuth) {
  kustomization(name, `${name}-apps`, behaviour);
  return stack.readyReceiver(NS, name, { ...auth, targets: [{ apiVersion: GIT, kind: "GitRepository", name }] });
}
const githubAuth = { type: "github", token: TOKEN, events: ["push"] };

const run = (receiver: string, inputs: Record<string, string> = {}) =>
  runAction({
    inputs: { token: TOKEN, address: stack.fluxhook.receiverUrl, receiver, "wait-for": "ready", ...inputs },
  });

beforeAll(async () => {
  fixture = await startFluxhook();
  ({ stack, issuer } = fixture);
  const ready = [
    pipeline("ok", "apply"),
    // No Secret: the runner's ID token, checked by CEL.
    pipeline("oidc", "apply", {
      type: "generic-oidc",
      oidcProviders: [
        {
          issuerURL: issuer.url,
          validations: [{ expression: "claims.repository == 'octo-org/fluxhook-test'", message: "wrong repository" }],
        },
      ],
    }),
    pipeline("broken", "fail"),
    // More users of one source than an answer lists (MAX_STATUS_ANSWER_CONSUMERS), the failing one last.
    pipeline("crowded", "apply"),
    pipeline("slow", "stuck"),
    // The types whose deliveries carry the token in clear, in their own header.
    pipeline("gitlab", "apply", { type: "gitlab", token: TOKEN }),
    pipeline("harbor", "apply", { type: "harbor", token: TOKEN }),
  ];
  for (let i = 0; i < MAX_STATUS_ANSWER_CONSUMERS + 5; i++) kustomization("crowded", `crowded-ok-${i}`, "apply");
  kustomization("crowded", "crowded-zz-failing", "fail");
  stack.target(GIT, "GitRepository", NS, "foreign");
  await Promise.all(ready);
  controllers = startControllers();
});
afterAll(async () => {
  await controllers.stop();
  await fixture.stop();
});

describe("the action waits for Flux through fluxhook", () => {
  test("success: the revision in the output and the chain in the summary", async () => {
    const result = await run("ok");
    expect(result.exitCode).toBe(0);
    const revision = (stack.api.store.get(GIT, "GitRepository", NS, "ok") as any).status.artifact.revision;
    expect(result.outputs.revision).toBe(revision);
    expect(result.summary).toContain("GitRepository flux-system/ok");
    expect(result.summary).toContain("→ Kustomization flux-system/ok-apps");
    expect(result.summary).toContain(`Applied revision: ${revision}`);
    expect(result.stdout).toContain(`Flux is Ready at ${revision}`);
    const digest = webhookPath(TOKEN, "ok", NS).slice("/hook/".length);
    expect(leaks(result, [TOKEN, digest])).toEqual([]);
  });

  test("generic-oidc: the delivery's ID token is reused by the queries, checked as the delivery's", async () => {
    const minted: string[] = [];
    await using endpoint = startIdTokenEndpoint(async (audience) => {
      const token = await issuer.sign({
        iss: issuer.url,
        aud: audience,
        sub: "s",
        repository: "octo-org/fluxhook-test",
      });
      minted.push(token);
      return token;
    });
    const result = await runAction({
      inputs: {
        address: stack.fluxhook.receiverUrl,
        receiver: "oidc",
        "receiver-type": "generic-oidc",
        "wait-for": "ready",
      },
      env: endpoint.env,
    });
    expect(result.exitCode).toBe(0);
    const revision = (stack.api.store.get(GIT, "GitRepository", NS, "oidc") as any).status.artifact.revision;
    expect(result.outputs.revision).toBe(revision);
    // One token (valid five minutes) for the delivery and every query after it.
    expect(minted).toHaveLength(1);
    expect(leaks(result, [...minted, endpoint.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN])).toEqual([]);
  });

  test.each(["gitlab", "harbor"])(
    "%s: the queries carry their own HMAC in the token's header, and the wait succeeds",
    async (type) => {
      const result = await run(type, { "receiver-type": type });
      expect(result.exitCode).toBe(0);
      const revision = (stack.api.store.get(GIT, "GitRepository", NS, type) as any).status.artifact.revision;
      expect(result.outputs.revision).toBe(revision);
    },
  );

  test("the CLI (outside Actions, on Node 20) waits the same way and prints the chain", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fluxhook-wait-cli-"));
    try {
      const payload = join(dir, "push.json");
      writeFileSync(payload, JSON.stringify(events().push));
      const args = ["--address", stack.fluxhook.receiverUrl, "--receiver", "ok", "--event", "push"];
      const child = Bun.spawn([nodeFor(20).path, CLI, ...args, "--payload-file", payload, "--wait-for", "ready"], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, FLUXHOOK_TOKEN: TOKEN },
        stderr: "pipe",
        stdout: "pipe",
      });
      const [stderr, exitCode] = await Promise.all([new Response(child.stderr).text(), child.exited]);
      expect(exitCode).toBe(0);
      const revision = (stack.api.store.get(GIT, "GitRepository", NS, "ok") as any).status.artifact.revision;
      expect(stderr).toContain(
        `Kustomization flux-system/ok-apps: ${revision}; Ready True: Applied revision: ${revision}`,
      );
      expect(stderr).toContain(`Flux is Ready at ${revision}`);
      expect(stderr).not.toContain(TOKEN);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("failure: the Kustomization's own message when it turns Ready=False", async () => {
    const result = await run("broken");
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`::error::Kustomization flux-system/broken-apps failed to apply main@sha1:`);
    expect(result.stdout).toContain(`BuildFailed: ${FAILURE}`);
    expect(result.summary).toContain(`False: ${FAILURE}`);
  });

  test("more users than the answer lists: never Ready, and the timeout names what it could not see", async () => {
    // Two polls at least (2 s apart), so the last judgement is made once the stand-in for Flux applied.
    const result = await run("crowded", { "wait-timeout-seconds": "5" });
    expect(result.stdout).not.toContain("Flux is Ready");
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(
      "::error::Timed out after 5 s waiting for Flux (wait-for: ready): GitRepository flux-system/crowded: the status query could not see every Kustomization and HelmRelease that uses it (it uses more of them than the answer lists)",
    );
  });

  test("timeout: names the object still behind", async () => {
    const result = await run("slow", { "wait-timeout-seconds": "2" });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(
      /::error::Timed out after 2 s waiting for Flux \(wait-for: ready\): Kustomization flux-system\/slow-apps has not applied main@sha1:[0-9a-f]{40} yet \(applied: main@sha1:old/,
    );
    // The source got there: only the Kustomization is behind.
    expect(result.summary).toContain("GitRepository flux-system/slow");
  });

  test("against Flux's notification-controller (no status query) it fails at once", async () => {
    await using flux = startReceiver({ respond: () => new Response(null, { status: 200 }) });
    const result = await runAction({
      inputs: { token: TOKEN, address: flux.url, receiver: "ok", "wait-for": "reconciled" },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain("::error::wait-for: reconciled needs fluxhook's status query");
    expect(flux.requests.length).toBe(1); // the delivery, and no poll
    // wait-for: none keeps working unchanged.
    const plain = await runAction({ inputs: { token: TOKEN, address: flux.url, receiver: "ok" } });
    expect(plain.exitCode).toBe(0);
    expect(plain.outputs.revision).toBeUndefined();
  });
});

describe("the status query refuses", () => {
  const reads = async (send: () => Promise<{ status: number; body: any }>) => {
    const before = stack.api.requests.length;
    const res = await send();
    const after = stack.api.requests.slice(before).filter((r) => !r.watch && r.method === "GET");
    return { status: res.status, reason: res.body.reason, reads: after.length };
  };
  const query = (name: string, target: string, token: string) => {
    const body = encodeStatusQuery({
      targets: [{ kind: "GitRepository", namespace: NS, name: target, requestedAt: "2026-12-01T00:00:00.000000000Z" }],
    });
    return stack.post(statusQueryPath(webhookPath(TOKEN, name, NS))!, {
      headers: {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature(statusQueryKey(token), body),
      },
      body,
    });
  };

  test("a bad signature, without reading the cluster", async () => {
    expect(await reads(() => query("ok", "ok", "not-the-token"))).toEqual({
      status: 401,
      reason: "signature mismatch (X-Hub-Signature-256)",
      reads: 0,
    });
  });

  test("an object that is not the Receiver's resource, without reading it", async () => {
    expect(await reads(() => query("ok", "foreign", TOKEN))).toEqual({
      status: 403,
      reason: "GitRepository flux-system/foreign is not one of this Receiver's resources",
      reads: 0,
    });
    // The same query about its own target is answered.
    await waitFor("the query about ok to be answered", async () => (await query("ok", "ok", TOKEN)).status === 200);
  });

  /** The sender's own requests to Receiver `ok`: a delivery and a query, each sent where the other belongs. */
  const settings = (): RequestSettings => ({
    url: `${stack.fluxhook.receiverUrl}${webhookPath(TOKEN, "ok", NS)}`,
    credential: TOKEN,
    receiverType: "github",
    event: "push",
    contentType: "json",
    repositoryId: "1",
    hookId: "1",
    userAgent: "GitHub-Hookshot/test",
    enterprise: undefined,
    extraHeaders: [],
  });
  const target = { kind: "GitRepository", namespace: NS, name: "ok", requestedAt: "2026-12-01T00:00:00.000000000Z" };
  const post = async (url: string, req: { headers: Readonly<Record<string, string>>; body: Uint8Array }) => {
    const res = await fetch(url, { method: "POST", headers: { ...req.headers }, body: Buffer.from(req.body) });
    return { status: res.status, reason: ((await res.json()) as { reason: string }).reason };
  };

  test("the sender's query, posted as a delivery, is refused: its signature is no delivery's", async () => {
    const before = stack.requestedAt(GIT, "GitRepository", NS, "ok");
    const query = buildStatusQuery(settings(), [target], "d-1");
    // With the delivery's own headers (event, delivery id), so only the signature tells the two apart.
    const delivery = buildRequest(settings(), new TextEncoder().encode("{}"), "d-1");
    const headers = { ...delivery.headers, "X-Hub-Signature-256": query.headers["X-Hub-Signature-256"]! };
    expect(await post(settings().url, { headers, body: query.body })).toEqual({
      status: 400,
      reason: "signature mismatch (X-Hub-Signature-256)",
    });
    expect(stack.requestedAt(GIT, "GitRepository", NS, "ok")).toBe(before);
  });

  // gitlab and harbor send the token itself in a delivery; a query carries its HMAC in that header instead.
  test.each([
    { type: "gitlab", header: "X-Gitlab-Token" },
    { type: "harbor", header: "Authorization" },
  ] as const)(
    "a captured $type query, posted as a delivery, is refused: $header carries no token",
    async ({ type, header }) => {
      const sender: RequestSettings = {
        ...settings(),
        url: `${stack.fluxhook.receiverUrl}${webhookPath(TOKEN, type, NS)}`,
        receiverType: type,
      };
      const own = { ...target, name: type };
      const before = stack.requestedAt(GIT, "GitRepository", NS, type);
      const query = buildStatusQuery(sender, [own], "d-3");
      expect((await post(query.url, query)).status).toBe(200);
      // Replayed at the delivery's path with every header a delivery of the type carries.
      const delivery = buildRequest(sender, query.body, "d-3");
      expect(
        await post(sender.url, {
          headers: { ...delivery.headers, [header]: query.headers[header]! },
          body: query.body,
        }),
      ).toEqual({
        status: 400,
        reason: `${header} does not match the receiver's token`,
      });
      expect(stack.requestedAt(GIT, "GitRepository", NS, type)).toBe(before);
      // And the delivery, posted as a query: the token is no query's credential.
      expect(await post(query.url, delivery)).toEqual({
        status: 401,
        reason: `malformed signature header (${header})`,
      });
    },
  );

  test("the sender's delivery, posted as a query, is refused: its signature is no query's", async () => {
    const query = buildStatusQuery(settings(), [target], "d-2");
    const delivery = buildRequest(settings(), query.body, "d-2");
    expect(await post(query.url, delivery)).toEqual({
      status: 401,
      reason: "signature mismatch (X-Hub-Signature-256)",
    });
    expect((await post(query.url, query)).status).toBe(200);
  });
});
