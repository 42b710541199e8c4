/**
 * The container image without a Docker engine: the Dockerfile's promises (non-root, the three
 * ports, the same compile command as `npm run build:server`), and the executable it ships, built
 * the way its build stage builds it, run as a process against the API test server through a real
 * signed GitHub delivery and a SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { chmodSync, chownSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../server/config";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import { REQUESTED_AT_ANNOTATION } from "../../server/api/annotations";
import { startKubeApiServer, type KubeApiServer } from "../kube";
import { githubExample } from "../support/payloads";
import { waitFor } from "../support/stack";
import { LOOPBACK_PORTS, spawnServer } from "../support/process";
import {
  buildLikeTheImage,
  HOST_ARCH,
  readDockerfile,
  shippedArtifact,
  workdir,
  type Arch,
  type BuiltBinary,
} from "./build";
import { argsOf, parseCopy, shellCommands } from "./dockerfile";
import { only, render, REPO, DEPLOY } from "./kustomize";
import { codeBlocks } from "./markdown";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  version: string;
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};
const BUILD_SCRIPT = pkg.scripts["build:server"]!;
const stages = readDockerfile();
const final = stages.at(-1)!;
const artifact = shippedArtifact(stages);

/** The `--outfile` of `npm run build:server`. */
function scriptOutfile(script: string): string {
  const words = script.split(/\s+/);
  const i = words.findIndex((w) => w === "--outfile" || w.startsWith("--outfile="));
  if (i < 0) throw new Error(`build:server has no --outfile: ${script}`);
  return words[i]!.includes("=") ? words[i]!.split("=")[1]! : words[i + 1]!;
}

describe("Dockerfile", () => {
  test("build:server compiles server/main.ts into one executable", () => {
    const words = BUILD_SCRIPT.split(/\s+/);
    // scripts/bun.js is `bun`, found without bun's install script.
    expect(words.slice(0, 4)).toEqual(["node", "scripts/bun.js", "build", "--compile"]);
    expect(words).toContain("--compile");
    expect(words).toContain("server/main.ts");
  });

  test("every base image is pinned by digest; the build stage runs on the builder's platform", () => {
    for (const stage of stages) expect(stage.from).toMatch(/^[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$/);
    expect(artifact.stage.platform).toBe("$BUILDPLATFORM");
    // The final stage is the target platform's, and only copies: nothing in it would need emulation.
    expect(final.platform).toBeUndefined();
    expect(argsOf(final, "RUN")).toEqual([]);
  });

  test("the build stage installs from the lockfile (Bun included) running no install script, then runs `build:server` for TARGETARCH and nothing else to compile", () => {
    const commands = argsOf(artifact.stage, "RUN").flatMap(shellCommands);
    expect(commands).toContainEqual(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]);
    // Bun is the npm package package-lock.json pins, the one the tests run.
    expect(pkg.devDependencies.bun).toMatch(/^\d+\.\d+\.\d+$/);
    expect(commands).toContainEqual(["npm", "run", "build:server", "--", '--target="$target"']);
    // No second compile command that could drift from the script the tests run.
    expect(commands.filter((c) => c.includes("build") && c.includes("--compile"))).toEqual([]);
    expect(argsOf(artifact.stage, "ARG")).toEqual(expect.arrayContaining(["TARGETARCH", "BUILDARCH"]));
  });

  test("the image carries the OCI labels, its licence is package.json's and LICENSE is Apache-2.0", () => {
    const labels = Object.fromEntries(
      [
        ...argsOf(final, "LABEL")
          .join(" ")
          .matchAll(/([\w.]+)="([^"]*)"/g),
      ].map((m) => [m[1], m[2]]),
    );
    expect(Object.keys(labels)).toEqual(
      expect.arrayContaining(
        ["title", "description", "licenses", "version", "revision", "source"].map(
          (k) => `org.opencontainers.image.${k}`,
        ),
      ),
    );
    const license = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { license: string }).license;
    expect(labels["org.opencontainers.image.licenses"]).toBe(license);
    expect(license).toBe("Apache-2.0");
    expect(readFileSync(join(REPO, "LICENSE"), "utf8")).toContain(
      "Apache License\n                           Version 2.0",
    );
  });

  test("the final stage ships the script's output from the build stage", () => {
    expect(artifact.pathInStage).toBe(`${workdir(artifact.stage).replace(/\/$/, "")}/${scriptOutfile(BUILD_SCRIPT)}`);
    const entrypoint = JSON.parse(argsOf(final, "ENTRYPOINT").at(-1)!) as string[];
    expect(entrypoint).toEqual([artifact.pathInImage]);
  });

  test("the final stage is distroless, has no RUN (no shell), and runs as uid 65532", () => {
    expect(final.from).toStartWith("gcr.io/distroless/");
    expect(final.from).toContain(":nonroot@sha256:");
    expect(argsOf(final, "RUN")).toEqual([]);
    const user = argsOf(final, "USER").at(-1)!;
    // Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBe(65532);
  });

  test("EXPOSE lists the receiver, health and metrics ports: the flags' defaults and the Deployment's ports", () => {
    const exposed = argsOf(final, "EXPOSE")
      .flatMap((a) => a.split(/\s+/))
      .map((p) => Number(p.replace(/\/tcp$/, "")));
    expect(exposed.sort()).toEqual([8080, 9292, 9440]);
    const defaults = parseConfig([], {});
    if (defaults.ok !== true) throw new Error("default flags do not parse");
    expect(
      [defaults.config.metricsAddr?.port, defaults.config.receiverAddr.port, defaults.config.healthAddr?.port].sort(),
    ).toEqual(exposed);
    const container = only(render(join(DEPLOY, "base")).objects, "Deployment", "fluxhook").spec.template.spec
      .containers[0];
    expect((container.ports as { containerPort: number }[]).map((p) => p.containerPort).sort()).toEqual(exposed);
  });

  test(".dockerignore lets through exactly what the build stage copies", () => {
    const allowed = readFileSync(join(REPO, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    expect(allowed[0]).toBe("*");
    const copied = argsOf(artifact.stage, "COPY")
      .map(parseCopy)
      .flatMap((c) => c.sources.map((s) => s.replace(/\/$/, "")));
    expect(
      allowed
        .slice(1)
        .map((l) => l.replace(/^!/, "").replace(/\/$/, ""))
        .sort(),
    ).toEqual(copied.sort());
  });
});

// ---- `docker run` as the documents show it ----

/** The image's user: USER uid[:gid] of the final stage. */
const imageUser = Number(argsOf(final, "USER").at(-1)!.split(":")[0]);

/** Every `docker run` command (continuation lines joined) in the documents and the Dockerfile's comments. */
function dockerRuns(): { file: string; words: string[] }[] {
  const sources: [string, string][] = ["README.md", "deploy/README.md", "action/README.md"].map((file) => [
    file,
    codeBlocks(readFileSync(join(REPO, file), "utf8"))
      .map((b) => b.text)
      .join("\n"),
  ]);
  sources.push([
    "Dockerfile",
    readFileSync(join(REPO, "Dockerfile"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("#"))
      .map((l) => l.replace(/^#\s?/, ""))
      .join("\n"),
  ]);
  return sources.flatMap(([file, text]) =>
    [...text.replace(/\\\n\s*/g, " ").matchAll(/^\s*(docker run .*)$/gm)].map((m) => ({
      file,
      // Shell words, with "double-quoted" parts kept whole.
      words: [...m[1]!.matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((w) => w[0].replace(/^"(.*)"$/, "$1")),
    })),
  );
}

describe("`docker run` with a kubeconfig", () => {
  const withKubeconfig = dockerRuns().filter((r) => r.words.some((w) => w.includes(".kube/config")));

  test("the documents show one, and the image runs as a non-root user they name", () => {
    expect(withKubeconfig.map((r) => r.file)).toContain("deploy/README.md");
    expect(imageUser).toBeGreaterThan(0);
    expect(readFileSync(join(REPO, "deploy/README.md"), "utf8")).toContain(`the image's own user (${imageUser})`);
  });

  test.each(withKubeconfig.map((r) => [r.file, r.words] as const))(
    "%s: runs as the kubeconfig's owner, mounts it read-only at KUBECONFIG, and its flags parse",
    (_file, words) => {
      // The image's user cannot read a 0600 kubeconfig; --user runs as the user who owns it.
      expect(words.slice(words.indexOf("--user"), words.indexOf("--user") + 2)).toEqual([
        "--user",
        "$(id -u):$(id -g)",
      ]);
      const volume = words[words.indexOf("-v") + 1]!.split(":");
      expect(volume).toHaveLength(3);
      expect(volume[2]).toBe("ro");
      expect(words[words.indexOf("-e") + 1]).toBe(`KUBECONFIG=${volume[1]}`);
      // The release's image, then the server's flags.
      const image = only(render(join(DEPLOY, "base")).objects, "Deployment", "fluxhook").spec.template.spec
        .containers[0].image as string;
      const at = words.indexOf(image);
      expect(at).toBeGreaterThan(0);
      const parsed = parseConfig(words.slice(at + 1), {});
      if (parsed.ok !== true) throw new Error(`the flags do not parse: ${JSON.stringify(parsed)}`);
      // Published on loopback only, to the ports the image listens on.
      const published = words.flatMap((w, i) => (w === "-p" ? [words[i + 1]!] : []));
      expect(published).toEqual([
        `127.0.0.1:${parsed.config.receiverAddr.port}:${parsed.config.receiverAddr.port}`,
        `127.0.0.1:${parsed.config.healthAddr!.port}:${parsed.config.healthAddr!.port}`,
      ]);
    },
  );
});

/**
 * The build's budget. Compiling takes about 1 s on an idle 2-core machine (the CI machine's size)
 * but several seconds when other work shares the cores; it runs once per file, so it gets its own
 * bound rather than the runner's per-test one.
 */
const BUILD_BUDGET_MS = 60_000;

/** ELF e_machine of each architecture the image ships (x86-64 and AArch64). */
const ELF_MACHINE: Record<Arch, number> = { amd64: 62, arm64: 183 };

/** The ELF header's class, byte order and machine: what a kernel checks before running a file. */
function elfHeader(path: string): { elf: boolean; bits: number; littleEndian: boolean; machine: number } {
  const head = Buffer.from(readFileSync(path).subarray(0, 20));
  return {
    elf: head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])),
    bits: head[4] === 2 ? 64 : 32,
    littleEndian: head[5] === 1,
    machine: head.readUInt16LE(18),
  };
}

describe("the build stage cross-compiles", () => {
  test("an architecture the image does not ship stops the build with the reason", () => {
    expect(() => buildLikeTheImage("s390x" as Arch)).toThrow("unsupported TARGETARCH: s390x");
  });

  const other: Arch = HOST_ARCH === "amd64" ? "arm64" : "amd64";
  let binary: BuiltBinary | undefined;
  afterAll(() => binary?.[Symbol.dispose]());

  test(
    `for TARGETARCH=${other} on this ${HOST_ARCH} machine, without running what it built`,
    () => {
      binary = buildLikeTheImage(other);
      console.log(
        `cross-compiled ${other}: ${(binary.bytes / 1e6).toFixed(1)} MB in ${(binary.buildMs / 1000).toFixed(2)} s`,
      );
      expect(elfHeader(binary.path)).toEqual({ elf: true, bits: 64, littleEndian: true, machine: ELF_MACHINE[other] });
    },
    BUILD_BUDGET_MS,
  );
});

describe("the compiled executable", () => {
  let binary: BuiltBinary;
  let api: KubeApiServer;
  /** Processes still running when the file ends (a failed or timed-out test) are killed. */
  const running = new Set<Subprocess>();

  beforeAll(async () => {
    binary = buildLikeTheImage();
    console.log(
      `compiled ${binary.path}: ${(binary.bytes / 1e6).toFixed(1)} MB in ${(binary.buildMs / 1000).toFixed(2)} s`,
    );
    api = await startKubeApiServer();
  }, BUILD_BUDGET_MS);
  afterAll(async () => {
    for (const proc of running) proc.kill("SIGKILL");
    await api?.close();
    binary?.[Symbol.dispose]();
  });

  test(`is an ELF executable for this machine (${HOST_ARCH})`, () => {
    expect(elfHeader(binary.path)).toEqual({
      elf: true,
      bits: 64,
      littleEndian: true,
      machine: ELF_MACHINE[HOST_ARCH],
    });
  });

  test("`fluxhook send --help`: the sender's CLI is in the executable (action/cli.ts)", () => {
    const r = Bun.spawnSync([binary.path, "send", "--help"], { stdout: "pipe", stderr: "pipe" });
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toMatchObject({
      exitCode: 0,
      stdout: expect.stringContaining("--oidc-token-env"),
    });
  });

  test("--version prints package.json's version (`docker run <image> --version`)", () => {
    const r = Bun.spawnSync([binary.path, "--version"], { stdout: "pipe", stderr: "pipe" });
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toEqual({
      exitCode: 0,
      stdout: `fluxhook ${pkg.version}\n`,
    });
  });

  test("--help exits 0 and lists the flags", () => {
    const r = Bun.spawnSync([binary.path, "--help"], { stdout: "pipe", stderr: "pipe" });
    expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toMatchObject({
      exitCode: 0,
      stdout: expect.stringContaining("--receiverAddr"),
    });
  });

  test("a bad flag exits 2 with the reason", () => {
    const r = Bun.spawnSync([binary.path, "--nope"], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("unknown flag --nope");
  });

  // What `docker run --user` changes, without Docker: the executable run as the image's user and as
  // the kubeconfig's owner, on a kubeconfig readable by its owner only (as kubectl writes it).
  // Switching users needs root, which CI has.
  test.if(process.getuid?.() === 0)(
    "a 0600 kubeconfig: the image's user cannot read it, its owner (--user) can and is served",
    async () => {
      const OWNER_ID = 4242;
      const dir = mkdtempSync(join(tmpdir(), "fluxhook-user-"));
      try {
        chmodSync(dir, 0o755);
        const executable = join(dir, "fluxhook");
        linkSync(binary.path, executable);
        const kubeconfig = join(dir, "kubeconfig");
        writeFileSync(kubeconfig, readFileSync(api.writeKubeconfig()), { mode: 0o600 });
        chownSync(kubeconfig, OWNER_ID, OWNER_ID);
        const run = (uid: number) =>
          Bun.spawn([executable, ...LOOPBACK_PORTS, "--status-updates=false"], {
            cwd: dir,
            env: { PATH: "/usr/bin:/bin", HOME: "/", KUBECONFIG: kubeconfig },
            uid,
            gid: uid,
            stdout: "pipe",
            stderr: "pipe",
          });

        const asImage = run(imageUser);
        running.add(asImage);
        expect(await asImage.exited).toBe(1);
        const refused = await new Response(asImage.stderr).text();
        expect(refused).toContain("cannot load the Kubernetes configuration");
        expect(refused).toContain("EACCES");

        const asOwner = run(OWNER_ID);
        running.add(asOwner);
        let log = "";
        const reader = (async () => {
          for await (const chunk of asOwner.stderr as unknown as AsyncIterable<Uint8Array>)
            log += new TextDecoder().decode(chunk);
        })();
        const health = await waitFor("the start line", () => /"healthAddr":"([^"]+)"/.exec(log)?.[1]);
        await waitFor("/readyz 200", async () => (await fetch(`${health}/readyz`)).status === 200);
        asOwner.kill("SIGTERM");
        expect(await asOwner.exited).toBe(0);
        await reader;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("delivers a signed GitHub push: 200, the GitRepository annotated, then exits 0 on SIGTERM", async () => {
    const NS = "apps";
    const TOKEN = "image-test-token";
    api.store.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "webhook-token", namespace: NS },
      data: { token: Buffer.from(TOKEN).toString("base64") },
    });
    api.store.create({
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: "webapp", namespace: NS, annotations: { [REQUESTED_AT_ANNOTATION]: "before" } },
      spec: {},
    });
    api.store.create({
      apiVersion: RECEIVER_API_VERSION,
      kind: "Receiver",
      metadata: { name: "github-receiver", namespace: NS },
      spec: {
        type: "github",
        events: ["ping", "push"],
        secretRef: { name: "webhook-token" },
        resources: [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }],
      },
    });

    const server = spawnServer([...LOOPBACK_PORTS, "--log-level=debug"], {
      command: [binary.path],
      cleanEnv: true,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/",
        KUBECONFIG: api.writeKubeconfig(),
      },
    });
    const { proc, lines, other } = server;
    running.add(proc);
    void proc.exited.then(() => running.delete(proc));

    try {
      const started = await server.started();
      await waitFor("/readyz 200", async () => (await fetch(`${started.healthAddr}/readyz`)).status === 200);
      expect((await fetch(`${started.healthAddr}/healthz`)).status).toBe(200);

      const path = await waitFor("the Receiver to be Ready", () => {
        const status = (
          api.store.get(RECEIVER_API_VERSION, "Receiver", NS, "github-receiver") as Record<string, any> | undefined
        )?.status;
        const ready = status?.conditions?.find((c: { type: string }) => c.type === "Ready");
        return ready?.status === "True" ? (status.webhookPath as string) : undefined;
      });

      const body = githubExample("push");
      const res = await fetch(started.receiverAddr + path, {
        method: "POST",
        headers: githubHeaders(TOKEN, body, { delivery: crypto.randomUUID() }),
        body,
      });
      expect({ status: res.status, body: await res.json() }).toMatchObject({
        status: 200,
        body: { reason: "1 of 1 target annotated" },
      });
      const annotations = (api.store.get(GIT, "GitRepository", NS, "webapp") as Record<string, any>).metadata
        .annotations;
      expect(annotations[REQUESTED_AT_ANNOTATION]).not.toBe("before");
      expect(annotations[REQUESTED_AT_ANNOTATION]).toBeString();

      // The metrics listener (prom-client, bundled like everything else) counted the delivery.
      const metrics = await fetch(`${started.metricsAddr}/metrics`);
      expect({ status: metrics.status, body: await metrics.text() }).toMatchObject({
        status: 200,
        body: expect.stringContaining("gotk_receiver_http_request_duration_seconds_count{"),
      });

      // The Deployment's memory limit must hold the process after a delivery, with room to spare.
      const limit = only(render(join(DEPLOY, "base")).objects, "Deployment", "fluxhook").spec.template.spec
        .containers[0].resources.limits.memory as string;
      const peakKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1]);
      console.log(`peak RSS after a delivery: ${(peakKiB / 1024).toFixed(0)} MiB (limit ${limit})`);
      expect(peakKiB * 1024 * 2).toBeLessThan(Number(/^(\d+)Mi$/.exec(limit)![1]) * 1024 * 1024);
    } catch (error) {
      // What the executable said is the first thing to read when this fails.
      const tail = [...lines.slice(-10).map((l) => JSON.stringify(l)), ...other.slice(-10)].join("\n");
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n--- fluxhook's last log lines ---\n${tail}`,
        { cause: error },
      );
    } finally {
      proc.kill("SIGTERM");
    }
    expect(await proc.exited).toBe(0);
    await server.stderrDone; // the last lines are written at exit: read them all first
    expect(lines.some((l) => l.msg === "shutting down")).toBe(true);
    expect(other.filter((l) => l.trim() !== "")).toEqual([]);
  });
});
