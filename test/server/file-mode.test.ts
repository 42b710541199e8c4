/**
 * The embedded default: Receivers and Secrets from YAML files, reloaded on change, deliveries in
 * dry run when there is no cluster, and annotation through the cluster when there is one.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  annotatedTargets,
  encodeStatusQuery,
  signPayload,
  statusQueryKey,
  statusQueryPath,
  webhookPath,
} from "../../shared";
import { collectManifests, parseManifests } from "../../server/sources/files";
import { createLogger } from "../../server/runtime/log";
import { createKubeClient } from "../../server/kube/client";
import { startFluxhook } from "../../server/server";
import { startKubeApiServer } from "../kube";
import { githubExample } from "../support/payloads";
import { TEST_CONFIG, waitFor } from "../support/stack";

const dir = mkdtempSync(join(tmpdir(), "fluxhook-files-"));
const GIT = "source.toolkit.fluxcd.io/v1";

function manifest(token: string, extra = "") {
  return `apiVersion: v1
kind: Secret
metadata:
  name: webhook-token
  namespace: apps
stringData:
  token: ${token}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: github-receiver
  namespace: apps
spec:
  type: github
  secretRef:
    name: webhook-token
  resources:
    - kind: GitRepository
      name: webapp
${extra}`;
}

const push = githubExample("push");
const deliver = (url: string, token: string) =>
  fetch(url, {
    method: "POST",
    body: push,
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": "push",
      "X-Hub-Signature-256": signPayload("sha256", token, push),
    },
  });

describe("manifests", () => {
  test("reads Secrets (data and stringData), Receivers and Lists; ignores other kinds; defaults the namespace", () => {
    const docs = parseManifests(`apiVersion: v1
kind: Secret
metadata: {name: a}
data: {token: dG9rZW4=}
---
apiVersion: v1
kind: List
items:
  - apiVersion: notification.toolkit.fluxcd.io/v1
    kind: Receiver
    metadata: {name: r, namespace: ns}
    spec: {type: generic}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: ignored}
`);
    const objects = collectManifests(docs);
    expect(objects.secrets.map((s: any) => [s.metadata.namespace, s.metadata.name])).toEqual([["default", "a"]]);
    expect(objects.receivers.map((r: any) => [r.metadata.namespace, r.metadata.name])).toEqual([["ns", "r"]]);
  });
});

describe("--receivers-file", () => {
  const logs: Record<string, any>[] = [];
  const log = createLogger({ level: "debug", encoding: "json", write: (l) => logs.push(JSON.parse(l)) });
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  test("serves file Receivers in dry run without a cluster, and follows edits", async () => {
    const file = join(dir, "dry.yaml");
    writeFileSync(file, manifest("first-token"));
    const server = await startFluxhook({ config: { ...TEST_CONFIG, receiversFiles: [file] }, log });
    stops.push(server.stop);
    expect(server.dryRun).toBe(true);
    expect(server.ready()).toBe(true);

    const res = await deliver(
      server.receiverUrl + webhookPath("first-token", "github-receiver", "apps"),
      "first-token",
    );
    expect(res.status).toBe(200);
    expect((await res.clone().json()).reason).toBe("1 of 1 target annotated (dry run: nothing was written)");
    expect(logs.some((l) => l.msg === "would annotate GitRepository apps/webapp")).toBe(true);
    // Without a cluster there is no status to read: the status query says so.
    const query = encodeStatusQuery({ targets: annotatedTargets(await res.clone().json()) ?? [] });
    const status = await fetch(
      server.receiverUrl + statusQueryPath(webhookPath("first-token", "github-receiver", "apps")),
      {
        method: "POST",
        body: query,
        headers: {
          "Content-Type": "application/json",
          "X-Hub-Signature-256": signPayload("sha256", statusQueryKey("first-token"), query),
        },
      },
    );
    expect({ status: status.status, body: await status.json() }).toEqual({
      status: 503,
      body: { status: 503, reason: "status queries need a cluster to read targets from" },
    });

    // An editor replaces the file: the new token moves the path.
    writeFileSync(`${file}.tmp`, manifest("second-token"));
    renameSync(`${file}.tmp`, file);
    const next = server.receiverUrl + webhookPath("second-token", "github-receiver", "apps");
    await waitFor("the edited token to take effect", async () => (await deliver(next, "second-token")).status === 200);
    expect(
      (await deliver(server.receiverUrl + webhookPath("first-token", "github-receiver", "apps"), "first-token")).status,
    ).toBe(404);

    // A broken edit keeps the last good content.
    writeFileSync(file, "apiVersion: v1\nkind: [unclosed\n");
    await waitFor("the parse error to be logged", () =>
      logs.some((l) => l.msg === "cannot read receivers file; keeping its previous content"),
    );
    expect((await deliver(next, "second-token")).status).toBe(200);
  });

  test("a suspended file Receiver answers 503 at its path (files have no status to say it was Ready)", async () => {
    const file = join(dir, "suspended.yaml");
    writeFileSync(file, manifest("suspended-token", "  suspend: true\n"));
    const server = await startFluxhook({ config: { ...TEST_CONFIG, receiversFiles: [file] }, log });
    stops.push(server.stop);
    const res = await deliver(
      server.receiverUrl + webhookPath("suspended-token", "github-receiver", "apps"),
      "suspended-token",
    );
    expect(res.status).toBe(503);
    expect((await res.json()).reason).toBe("receiver is suspended");
  });

  test("annotates through the cluster when one is configured, without watching Receivers there", async () => {
    await using api = await startKubeApiServer();
    api.store.create({
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: "webapp", namespace: "apps" },
      spec: {},
    });
    const file = join(dir, "cluster.yaml");
    writeFileSync(file, manifest("cluster-token"));
    const server = await startFluxhook({
      config: { ...TEST_CONFIG, receiversFiles: [file] },
      log,
      kube: createKubeClient({ kubeConfig: api.kubeConfig(), log }),
    });
    stops.push(server.stop);
    expect(server.dryRun).toBe(false);
    const res = await deliver(
      server.receiverUrl + webhookPath("cluster-token", "github-receiver", "apps"),
      "cluster-token",
    );
    expect(res.status).toBe(200);
    const annotations = (api.store.get(GIT, "GitRepository", "apps", "webapp") as any).metadata.annotations;
    expect(annotations["reconcile.fluxcd.io/requestedAt"]).toBeString();
    expect(api.requests.filter((r) => r.path.includes("receivers") || r.path.includes("secrets"))).toEqual([]);
  });
});

/** `bun server/main.ts` on the example file, with these flags and KUBECONFIG; `line` waits for a stdout line. */
function spawnExample(flags: string[], kubeconfig: string) {
  const proc = Bun.spawn(
    [
      process.execPath,
      "server/main.ts",
      "--receivers-file=examples/receivers.yaml",
      "--receiverAddr=127.0.0.1:0",
      "--health-addr=127.0.0.1:0",
      ...flags,
    ],
    {
      cwd: new URL("../..", import.meta.url).pathname,
      env: { ...process.env, KUBECONFIG: kubeconfig } as Record<string, string>,
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const reader = proc.stdout.getReader();
  let out = "";
  return {
    proc,
    get out() {
      return out;
    },
    line: (what: string, pattern: RegExp) =>
      waitFor(what, async () => {
        const { value } = await reader.read();
        out += new TextDecoder().decode(value);
        return pattern.exec(out) ?? undefined;
      }),
  };
}

describe("printed URLs", () => {
  test("with a cluster to annotate (not a dry run), the URLs' digests are masked: stdout goes to pod logs", async () => {
    await using api = await startKubeApiServer();
    const server = spawnExample(["--metrics-addr=127.0.0.1:0"], api.writeKubeconfig());
    try {
      const [line] = await server.line(
        "the github receiver's line",
        /receiver flux-system\/github-receiver \(github, ready\): .*/,
      );
      expect(line).toContain("/hook/*** (sha256 of token, name and namespace)");
      expect(server.out).not.toContain("7c6d73c61f3fd4055782bb02d122911b62ce8776a306bbd1955a728dbf3d99c6");
    } finally {
      server.proc.kill("SIGTERM");
      expect(await server.proc.exited).toBe(0);
    }
  });
});

describe("npm start's command", () => {
  test("prints each receiver's URL and answers the README's curl in dry run", async () => {
    const server = spawnExample(["--dry-run"], "");
    const { proc } = server;
    try {
      const url = (
        await server.line("the github receiver's URL", /receiver flux-system\/github-receiver \(github, ready\): (\S+)/)
      )[1]!;
      expect(url).toEndWith("/hook/7c6d73c61f3fd4055782bb02d122911b62ce8776a306bbd1955a728dbf3d99c6");
      const body = '{"ref":"refs/heads/main"}';
      const res = await fetch(url, {
        method: "POST",
        body,
        headers: {
          "Content-Type": "application/json",
          "X-GitHub-Event": "push",
          "X-Hub-Signature-256": signPayload("sha256", "example-token-do-not-use", body),
        },
      });
      expect(res.status).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  });
});
