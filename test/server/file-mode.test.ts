/**
 * The embedded default: Receivers and Secrets from YAML files, reloaded on change, deliveries in
 * dry run when there is no cluster, and annotation through the cluster when there is one.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { annotatedTargets, encodeStatusQuery, statusQueryKey, statusQueryPath, webhookPath } from "../../shared";
import { ManifestSyntaxError, readManifests, specFieldOf } from "../../server/sources/files";
import { createLogger } from "../../server/runtime/log";
import { createKubeClient } from "../../server/kube/client";
import { startFluxhook } from "../../server/server";
import { startKubeApiServer } from "../kube";
import { githubExample } from "../support/payloads";
import { TEST_CONFIG, waitFor } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders, signature } from "../support/signer";

const dir = mkdtempSync(join(tmpdir(), "fluxhook-files-"));

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
    headers: githubHeaders(token, push),
  });

describe("manifests", () => {
  test("reads Secrets (data and stringData), Receivers and Lists; ignores other kinds; defaults the namespace", () => {
    const objects = readManifests(`apiVersion: v1
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
    // The List's Receiver has no secretRef: a problem at its spec's line, the Receiver still read.
    expect(objects.problems).toEqual([
      { line: 12, receiver: "ns/r", message: "secretRef is required when type is not generic-oidc" },
    ]);
    expect(objects.secrets.map((s: any) => [s.metadata.namespace, s.metadata.name])).toEqual([["default", "a"]]);
    expect(objects.receivers.map((r: any) => [r.metadata.namespace, r.metadata.name])).toEqual([["ns", "r"]]);
    // The GitRepository is left out, and said so at its kind's line (logged at info, not an error).
    expect(objects.leftOut).toEqual([
      { line: 15, message: "GitRepository: a receivers file serves Receivers and their Secrets; this one is left out" },
    ]);
  });
});

/** A receivers file with one Receiver whose spec is `spec` (indented as in the file). */
const withSpec = (spec: string) => `apiVersion: v1
kind: Secret
metadata: {name: webhook-token, namespace: apps}
stringData: {token: t}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: r
  namespace: apps
spec:
${spec}`;

describe("problems in a receivers file name their line", () => {
  test("a YAML error: the line the parser stopped at", () => {
    const read = () => readManifests("apiVersion: v1\nkind: Secret\nmetadata:\n  name: [unclosed\n");
    expect(read).toThrow(ManifestSyntaxError);
    try {
      read();
    } catch (err) {
      // The flow sequence opened on line 4 is still open when the text ends, on line 5.
      expect((err as ManifestSyntaxError).line).toBe(5);
    }
  });

  test.each<[string, string, number, string]>([
    [
      "an unknown type (generic-hamc for generic-hmac)",
      "  type: generic-hamc\n  secretRef: {name: webhook-token}\n  resources:\n    - {kind: GitRepository, name: webapp}\n",
      12,
      'receiver type "generic-hamc" is not supported',
    ],
    [
      "a resource without its name",
      "  type: github\n  secretRef: {name: webhook-token}\n  resources:\n    - kind: GitRepository\n      namespace: apps\n",
      15,
      "resources[0].name is required",
    ],
    [
      "a filter that does not compile",
      "  type: github\n  secretRef: {name: webhook-token}\n  resources:\n    - kind: GitRepository\n      name: webapp\n    - kind: GitRepository\n      name: other\n      filter: 'res.metadata.name =='\n",
      19,
      "invalid filter expression for resources[1]",
    ],
    [
      "no secretRef",
      "  type: github\n  resources:\n    - {kind: GitRepository, name: webapp}\n",
      11,
      "secretRef is required when type is not generic-oidc",
    ],
  ])("%s", (_what, spec, line, message) => {
    const { problems, receivers } = readManifests(withSpec(spec));
    expect(problems).toEqual([{ line, receiver: "apps/r", message: expect.stringContaining(message) }]);
    // Still handed to the controller, which serves it as Flux would (503, Stalled): the file is not refused.
    expect(receivers).toHaveLength(1);
  });

  test("a YAML error's message does not repeat the position the line field gives", () => {
    try {
      readManifests("a: 1\nb: [1, 2\nc: 3\n");
      throw new Error("no ManifestSyntaxError");
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestSyntaxError);
      expect((err as Error).message).not.toMatch(/ at line \d+, column \d+/);
      expect((err as Error).message).not.toEndWith(":");
      expect((err as Error).message).toStartWith(`line ${(err as ManifestSyntaxError).line}: `);
    }
  });

  test("routing by repository needs a cluster's sources: a problem at the annotation's line", () => {
    const text = withSpec(
      "  type: github\n  secretRef: {name: webhook-token}\n  resources:\n    - {kind: GitRepository, name: webapp}\n",
    ).replace("  name: r\n", "  name: r\n  annotations:\n    fluxhook.io/route-by: repository\n");
    const { problems, receivers } = readManifests(text, { withoutSources: true });
    expect(problems).toEqual([
      { line: 11, receiver: "apps/r", message: expect.stringContaining("no cluster is configured (--kubeconfig)") },
    ]);
    expect(receivers).toHaveLength(1);
    // With a cluster to annotate through, its sources are indexed there: no problem.
    expect(readManifests(text).problems).toEqual([]);
  });

  test("fluxhook's own refusals are problems too: route-by's value, namespace \"*\" under --no-cross-namespace-refs", () => {
    const everywhere = withSpec(
      '  type: github\n  secretRef: {name: webhook-token}\n  resources:\n    - {kind: GitRepository, name: "*", namespace: "*", matchLabels: {a: b}}\n',
    );
    expect(readManifests(everywhere, { noCrossNamespaceRefs: true }).problems).toEqual([
      { line: 15, receiver: "apps/r", message: expect.stringContaining("cross-namespace references are not allowed") },
    ]);
    expect(readManifests(everywhere).problems).toEqual([]);
    const misspelt = withSpec(
      "  type: github\n  secretRef: {name: webhook-token}\n  resources:\n    - {kind: GitRepository, name: webapp}\n",
    ).replace("  name: r\n", "  name: r\n  annotations:\n    fluxhook.io/route-by: repo\n");
    expect(readManifests(misspelt).problems).toEqual([
      {
        line: 11,
        receiver: "apps/r",
        message: expect.stringContaining('is not supported; its one value is "repository"'),
      },
    ]);
  });

  test("a Receiver of another apiVersion is left out, at its apiVersion's line", () => {
    const text = withSpec("  type: github\n").replace(
      "notification.toolkit.fluxcd.io/v1\n",
      "notification.toolkit.fluxcd.io/v1beta2\n",
    );
    const { problems, receivers } = readManifests(text);
    expect(receivers).toEqual([]);
    expect(problems).toEqual([{ line: 6, message: expect.stringContaining("v1beta2") }]);
  });

  test.each<[string, (string | number)[]]>([
    ['receiver type "x" is not supported', ["type"]],
    ["spec.type is required", ["type"]],
    ["resources[2].matchLabels.team must be a string", ["resources", 2, "matchLabels", "team"]],
    ["invalid resourceFilter expression: ERROR: <input>:1:1", ["resourceFilter"]],
    [
      'oidcProviders[1] (issuerURL="https://x"): validations[3]: message is required',
      ["oidcProviders", 1, "validations", 3],
    ],
    ["events[0] must be a string", ["events", 0]],
    ["spec is missing", []],
  ])("specFieldOf(%j)", (message, path) => {
    expect(specFieldOf(message)).toEqual(path);
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
          "X-Hub-Signature-256": signature(statusQueryKey("first-token"), query),
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

    // A broken edit keeps the last good content, and says where it broke.
    writeFileSync(file, "apiVersion: v1\nkind: [unclosed\n");
    const parseError = await waitFor("the parse error to be logged", () =>
      logs.find((l) => l.msg === "cannot read receivers file; keeping its previous content"),
    );
    expect(parseError).toMatchObject({ level: "error", file, line: 3 });
    expect((await deliver(next, "second-token")).status).toBe(200);

    // An edit that breaks a Receiver's spec is an error naming the line, not "loaded".
    const loadedBefore = logs.filter((l) => l.msg === "receivers file loaded").length;
    writeFileSync(file, manifest("second-token").replace("type: github", "type: generic-hamc"));
    const broken = await waitFor("the broken Receiver to be logged", () =>
      logs.find((l) => typeof l.msg === "string" && l.msg.startsWith(`${file}:`)),
    );
    expect(broken).toMatchObject({
      level: "error",
      msg: `${file}:15: receiver type "generic-hamc" is not supported`,
      file,
      line: 15,
      receiver: "apps/github-receiver",
    });
    expect(logs.at(-1)).toMatchObject({ level: "error", msg: "receivers file loaded with errors", errors: 1 });
    expect(logs.filter((l) => l.msg === "receivers file loaded").length).toBe(loadedBefore);
  });

  test("a Receiver that routes by repository is not served from a file, and the log says why at its line", async () => {
    const file = join(dir, "routed.yaml");
    writeFileSync(
      file,
      manifest("routed-token").replace(
        "  namespace: apps\nspec:",
        "  namespace: apps\n  annotations:\n    fluxhook.io/route-by: repository\nspec:",
      ),
    );
    const server = await startFluxhook({ config: { ...TEST_CONFIG, receiversFiles: [file] }, log });
    stops.push(server.stop);
    expect(logs.find((l) => l.msg?.startsWith?.(`${file}:15: annotation fluxhook.io/route-by`))).toMatchObject({
      level: "error",
      line: 15,
      receiver: "apps/github-receiver",
    });
    // Not Ready, so 503 with the reason, for a push and for a ping alike (not a 500 per target).
    const url = server.receiverUrl + webhookPath("routed-token", "github-receiver", "apps");
    const res = await deliver(url, "routed-token");
    expect(res.status).toBe(503);
    expect((await res.json()).reason).toContain("no cluster is configured (--kubeconfig)");
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
        headers: githubHeaders("example-token-do-not-use", body),
      });
      expect(res.status).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  });
});
