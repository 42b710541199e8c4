/**
 * A Git server on loopback for the seed's chain: Debian's `git http-backend` (Git's own smart
 * HTTP server, a CGI program) behind Bun.serve, serving the bare repositories under one folder
 * for fetching (git http-backend refuses pushes from anonymous clients). The CGI glue is written
 * here because it is a dozen lines: the request becomes CGI variables and stdin, the program's
 * output its headers and body. Commits are made with the git CLI in a work tree and pushed to the
 * bare repository over the file system.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const HTTP_BACKEND = "/usr/lib/git-core/git-http-backend";

export interface GitServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** A new repository `<name>.git` with one commit of `files` on `main`; returns its URL. */
  createRepository(name: string, files: Record<string, string>): string;
  /** Commits `files` (added or replaced) on main and pushes; returns the new commit's SHA-1. */
  commit(name: string, files: Record<string, string>, message: string): string;
  /** Requests served, for a test that wants to see the controller fetched. */
  readonly requests: string[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function git(args: readonly string[], cwd: string, home: string): string {
  const r = Bun.spawnSync(["git", ...args], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "fluxhook tier",
      GIT_AUTHOR_EMAIL: "tier@fluxhook.invalid",
      GIT_COMMITTER_NAME: "fluxhook tier",
      GIT_COMMITTER_EMAIL: "tier@fluxhook.invalid",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

/** Splits a CGI response: header lines up to the first blank line, then the body. */
function cgiResponse(out: Uint8Array): Response {
  const text = new TextDecoder("latin1").decode(out.subarray(0, Math.min(out.length, 8192)));
  const crlf = text.indexOf("\r\n\r\n");
  const lf = text.indexOf("\n\n");
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
  if (end < 0) return new Response("git http-backend answered no headers", { status: 502 });
  const headers = new Headers();
  let status = 200;
  for (const line of text.slice(0, end).split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers.append(name, value);
  }
  return new Response(out.slice(end).buffer, { status, headers });
}

export function startGitServer(): GitServer {
  const root = mkdtempSync(join(tmpdir(), "fluxhook-git-"));
  const repos = join(root, "repos");
  const work = join(root, "work");
  const home = join(root, "home");
  for (const d of [repos, work, home]) mkdirSync(d, { recursive: true });
  const requests: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      const body = req.method === "POST" ? new Uint8Array(await req.arrayBuffer()) : undefined;
      const child = Bun.spawn([HTTP_BACKEND], {
        env: {
          GIT_PROJECT_ROOT: repos,
          GIT_HTTP_EXPORT_ALL: "1",
          GIT_CONFIG_NOSYSTEM: "1",
          HOME: home,
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.slice(1),
          REQUEST_METHOD: req.method,
          CONTENT_TYPE: req.headers.get("content-type") ?? "",
          CONTENT_LENGTH: String(body?.length ?? 0),
          HTTP_CONTENT_ENCODING: req.headers.get("content-encoding") ?? "",
          GIT_PROTOCOL: req.headers.get("git-protocol") ?? "",
          REMOTE_ADDR: "127.0.0.1",
          SERVER_PROTOCOL: "HTTP/1.1",
        },
        stdin: body ?? "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([
        new Response(child.stdout).arrayBuffer(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      if (code !== 0 && out.byteLength === 0) return new Response(`git http-backend: ${err}`, { status: 500 });
      return cgiResponse(new Uint8Array(out));
    },
  });
  const url = `http://127.0.0.1:${server.port}`;

  const write = (dir: string, files: Record<string, string>) => {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
  };
  const stop = async () => {
    await server.stop(true);
    rmSync(root, { recursive: true, force: true });
  };
  return {
    url,
    requests,
    createRepository(name, files) {
      const bare = join(repos, `${name}.git`);
      git(["init", "--quiet", "--bare", "--initial-branch=main", bare], root, home);
      const tree = join(work, name);
      git(["clone", "--quiet", bare, tree], root, home);
      git(["checkout", "--quiet", "-B", "main"], tree, home);
      write(tree, files);
      git(["add", "--all"], tree, home);
      git(["commit", "--quiet", "-m", "first"], tree, home);
      git(["push", "--quiet", "origin", "main"], tree, home);
      return `${url}/${name}.git`;
    },
    commit(name, files, message) {
      const tree = join(work, name);
      write(tree, files);
      git(["add", "--all"], tree, home);
      git(["commit", "--quiet", "-m", message], tree, home);
      git(["push", "--quiet", "origin", "main"], tree, home);
      return git(["rev-parse", "HEAD"], tree, home);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
