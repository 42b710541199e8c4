/**
 * @module test/deploy/build
 * Builds the executable the container image ships, the way the Dockerfile's build stage does, on
 * a machine with no Docker engine: the files the stage COPYs from the build context are copied
 * into a scratch directory (so an import from outside them fails here as it would in the image),
 * the repository's node_modules (installed by `npm ci` from the same package-lock.json) stands in
 * for the stage's `npm ci`, and every other RUN line is run as written with this test's bun first on
 * PATH and the platform ARGs the stage declares (TARGETARCH, BUILDARCH, ...) in its environment, as
 * BuildKit sets them for a `docker buildx build --platform linux/<arch>` on this machine.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { argsOf, parseCopy, parseDockerfile, shellCommands, type Stage } from "./dockerfile";
import { REPO } from "./kustomize";

export const DOCKERFILE = join(REPO, "Dockerfile");

export function readDockerfile(): Stage[] {
  return parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
}

/** The stage the final stage copies the executable from, and where in it the executable is. */
export function shippedArtifact(stages: readonly Stage[]): { stage: Stage; pathInStage: string; pathInImage: string } {
  const final = stages.at(-1)!;
  const copies = argsOf(final, "COPY")
    .map(parseCopy)
    .filter((c) => c.from !== undefined);
  if (copies.length !== 1 || copies[0]!.sources.length !== 1)
    throw new Error("the final stage should COPY exactly one file from the build stage");
  const copy = copies[0]!;
  const stage = stages.find((s) => s.name === copy.from);
  if (!stage) throw new Error(`no stage named ${copy.from}`);
  return { stage, pathInStage: copy.sources[0]!, pathInImage: copy.dest };
}

/** The stage's WORKDIR (the last one), which relative COPY destinations and RUN lines use. */
export function workdir(stage: Stage): string {
  return argsOf(stage, "WORKDIR").at(-1) ?? "/";
}

export interface BuiltBinary extends Disposable {
  /** The executable, at the path the build stage leaves it (relative to its WORKDIR). */
  readonly path: string;
  readonly bytes: number;
  /** Wall time of the RUN lines (the compile, and the stage's own smoke run). */
  readonly buildMs: number;
}

/** A path of the build stage relative to its WORKDIR (the scratch directory stands for it). */
function inStage(path: string, root: string): string {
  if (!path.startsWith("/")) return path;
  const prefix = root.endsWith("/") ? root : `${root}/`;
  if (!path.startsWith(prefix)) throw new Error(`${path} is outside the build stage's WORKDIR ${root}`);
  return path.slice(prefix.length);
}

const isInstall = (words: string[]) =>
  (words[0] === "bun" || words[0] === "npm") && (words[1] === "install" || words[1] === "i" || words[1] === "ci");

/** Docker's names for the architectures the image ships. */
export type Arch = "amd64" | "arm64";

/** This machine's architecture in Docker's words (BUILDARCH). */
export const HOST_ARCH: Arch = process.arch === "arm64" ? "arm64" : "amd64";

/** The automatic platform ARGs BuildKit defines for a build on this machine for `target`. */
function platformArgs(target: Arch): Record<string, string> {
  return {
    BUILDPLATFORM: `linux/${HOST_ARCH}`,
    BUILDOS: "linux",
    BUILDARCH: HOST_ARCH,
    TARGETPLATFORM: `linux/${target}`,
    TARGETOS: "linux",
    TARGETARCH: target,
  };
}

/**
 * Runs the Dockerfile's build stage in a scratch directory for `target` (default: this machine's
 * architecture); see the module comment.
 */
export function buildLikeTheImage(target: Arch = HOST_ARCH): BuiltBinary {
  const stages = readDockerfile();
  const { stage, pathInStage } = shippedArtifact(stages);
  const root = workdir(stage);
  const scratch = mkdtempSync(join(tmpdir(), "fluxhook-image-"));
  const dispose = () => rmSync(scratch, { recursive: true, force: true });
  try {
    // `dir` stands for the stage's WORKDIR; `tools` puts this test's bun on PATH as `bun`
    // (the npm package installs it as bun.exe).
    const dir = join(scratch, "context");
    const tools = join(scratch, "tools");
    mkdirSync(dir);
    mkdirSync(tools);
    symlinkSync(process.execPath, join(tools, "bun"));
    let buildMs = 0;
    // As in Docker, a RUN line sees an automatic platform ARG only after the stage declares it.
    const args: Record<string, string> = {};
    for (const ins of stage.instructions) {
      if (ins.keyword === "ARG") {
        const [name, value] = ins.args.split("=", 2) as [string, string | undefined];
        const automatic = platformArgs(target)[name];
        args[name] = automatic ?? value ?? "";
      } else if (ins.keyword === "COPY") {
        const { from, sources, dest } = parseCopy(ins.args);
        if (from !== undefined)
          throw new Error(
            `line ${ins.line}: the build stage copies from another stage, which this test does not emulate`,
          );
        const into = join(dir, inStage(dest, root));
        for (const source of sources) {
          const from = join(REPO, source);
          // Docker copies a directory's contents into the destination, and a file into it when
          // the destination ends with a slash (or there are several sources).
          const target =
            statSync(from).isDirectory() || !(dest.endsWith("/") || sources.length > 1)
              ? into
              : join(into, basename(source));
          cpSync(from, target, { recursive: true });
        }
      } else if (ins.keyword === "RUN") {
        const commands = shellCommands(ins.args);
        if (commands.every(isInstall)) {
          symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
          continue;
        }
        if (commands.some(isInstall)) throw new Error(`line ${ins.line}: keep the install in a RUN line of its own`);
        const started = performance.now();
        const r = Bun.spawnSync(["sh", "-c", ins.args], {
          cwd: dir,
          env: { ...process.env, ...args, PATH: `${tools}:${process.env.PATH}` },
          stdout: "pipe",
          stderr: "pipe",
        });
        buildMs += performance.now() - started;
        if (r.exitCode !== 0)
          throw new Error(
            `Dockerfile line ${ins.line} (RUN ${ins.args}) exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`,
          );
      }
    }
    const path = join(dir, inStage(pathInStage, root));
    return { path, bytes: statSync(path).size, buildMs, [Symbol.dispose]: dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}
