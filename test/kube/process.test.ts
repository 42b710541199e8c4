import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { startKubeApiServer } from "./index";
import { GIT } from "../support/kinds";

const REPO_ROOT = join(import.meta.dir, "..", "..");

/** Read a child's stdout one line at a time. */
function lines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return async (): Promise<string> => {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`stdout ended; partial line: ${JSON.stringify(buffered)}`);
      buffered += decoder.decode(value, { stream: true });
    }
  };
}

describe("client configuration", () => {
  test("kubeConfig(): one cluster at api.url, no credentials, the context's namespace", async () => {
    await using api = await startKubeApiServer();
    const kc = api.kubeConfig("flux-system");
    expect(kc.getCurrentCluster()).toMatchObject({ server: api.url, skipTLSVerify: true });
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe("flux-system");
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await objects.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } });
    expect(api.store.get("v1", "Secret", "flux-system", "s")).toBeDefined();
  });

  test("writeKubeconfig(): a file client-node loads, also in a subprocess via KUBECONFIG", async () => {
    await using api = await startKubeApiServer();
    api.store.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "from-file", namespace: "default" } });
    const dir = mkdtempSync(join(tmpdir(), "kubeconfig-test-"));
    try {
      const path = api.writeKubeconfig(dir);
      expect(path).toBe(join(dir, "kubeconfig"));
      expect(readFileSync(path, "utf8")).toContain(`server: "${api.url}"`);
      const kc = new KubeConfig();
      kc.loadFromFile(path);
      expect(
        (await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: "from-file", namespace: "default" })).metadata
          ?.name,
      ).toBe("from-file");

      const script = `
        import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
        const kc = new KubeConfig();
        kc.loadFromDefault();
        const s = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: "from-file", namespace: "default" });
        console.log(s.metadata.name);
      `;
      const child = Bun.spawn([process.execPath, "-e", script], {
        cwd: REPO_ROOT,
        env: { ...process.env, KUBECONFIG: path },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect({
        code: await child.exited,
        out: (await new Response(child.stdout).text()).trim(),
        err: await new Response(child.stderr).text(),
      }).toEqual({ code: 0, out: "from-file", err: "" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("request log", () => {
  test("records method, path, query, content type, accept and status; count() filters; resetRequests() empties", async () => {
    await using api = await startKubeApiServer();
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "s" } } });
    await core.listNamespacedSecret({ namespace: "default", labelSelector: "a=b" });
    await core.readNamespacedSecret({ name: "missing", namespace: "default" }).catch(() => {});
    expect(
      api.requests.map(({ time: _, accept, ...r }) => ({ ...r, acceptsJson: accept?.includes("application/json") })),
    ).toEqual([
      {
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        query: {},
        contentType: "application/json",
        status: 201,
        watch: false,
        acceptsJson: true,
      },
      {
        method: "GET",
        path: "/api/v1/namespaces/default/secrets",
        query: { labelSelector: "a=b" },
        contentType: undefined,
        status: 200,
        watch: false,
        acceptsJson: true,
      },
      {
        method: "GET",
        path: "/api/v1/namespaces/default/secrets/missing",
        query: {},
        contentType: undefined,
        status: 404,
        watch: false,
        acceptsJson: true,
      },
    ]);
    expect(api.requests.every((r) => r.time > 0 && r.time <= Date.now())).toBe(true);
    expect(api.count()).toBe(3);
    expect(api.count({ method: "get" })).toBe(2);
    expect(api.count({ path: /\/secrets$/ })).toBe(2);
    expect(api.count({ status: 404 })).toBe(1);
    api.resetRequests();
    expect(api.count()).toBe(0);
  });

  test("the log is bounded", async () => {
    await using api = await startKubeApiServer({ requestLogLimit: 4 });
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    for (let i = 0; i < 5; i++) await core.listNamespacedSecret({ namespace: `ns${i}` });
    expect(api.requests.map((r) => r.path)).toEqual([
      "/api/v1/namespaces/ns2/secrets",
      "/api/v1/namespaces/ns3/secrets",
      "/api/v1/namespaces/ns4/secrets",
    ]);
  });
});

describe("serve-fixture", () => {
  test("prints its URL and kubeconfig, loads objects, answers commands, exits on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "serve-fixture-test-"));
    try {
      const file = join(dir, "objects.json");
      writeFileSync(
        file,
        JSON.stringify({
          kinds: [{ group: "example.com", version: "v1", kind: "Widget", plural: "widgets" }],
          items: [
            {
              apiVersion: GIT,
              kind: "GitRepository",
              metadata: { name: "app", namespace: "flux-system" },
              spec: {},
            },
            { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", namespace: "default" } },
          ],
        }),
      );
      const child = Bun.spawn([process.execPath, join(import.meta.dir, "serve-fixture.ts"), file], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "inherit",
        env: { ...process.env, KUBE_FIXTURE_REQUEST_LOG: "1000" },
      });
      const next = lines(child.stdout);
      const hello = JSON.parse(await next()) as { url: string; kubeconfig: string };
      expect(hello.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const kc = new KubeConfig();
      kc.loadFromFile(hello.kubeconfig);
      const custom = kc.makeApiClient(CustomObjectsApi);
      const repo = await custom.getNamespacedCustomObject({
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        plural: "gitrepositories",
        namespace: "flux-system",
        name: "app",
      });
      expect(repo.metadata.resourceVersion).toBe("1");
      const widgets = await custom.listNamespacedCustomObject({
        group: "example.com",
        version: "v1",
        plural: "widgets",
        namespace: "default",
      });
      expect(widgets.items).toHaveLength(1);

      const command = async (c: object) => {
        child.stdin.write(`${JSON.stringify(c)}\n`);
        await child.stdin.flush();
        return JSON.parse(await next());
      };
      expect(await command({ cmd: "count", method: "GET" })).toEqual({ ok: true, count: 2 });
      expect(
        await command({
          cmd: "patch",
          apiVersion: "example.com/v1",
          kind: "Widget",
          namespace: "default",
          name: "w",
          patch: { spec: { n: 1 } },
        }),
      ).toMatchObject({ ok: true, object: { spec: { n: 1 } } });
      expect(await command({ cmd: "nonsense" })).toEqual({ ok: false, error: 'unknown command "nonsense"' });

      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      expect(existsSync(hello.kubeconfig)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
