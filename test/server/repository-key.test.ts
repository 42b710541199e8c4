/**
 * The repository keys routing compares (server/api/repository.ts): every spelling of one Git
 * repository is one key, and two repositories never share one; image references likewise, with
 * Docker Hub's aliases. Property-tested with fast-check over generated hosts, ports and paths.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { followsRef, gitRepositoryKey, imageRepositoryKey, type GitFollow } from "../../server/api/repository";
import { gitFollow } from "../../server/api/sources";

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const host = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => [...ls, "example"].join("."));
/** A path segment of a hosted repository: letters of both cases, digits, `.`, `_`, `-`; never `.`, `..` or `*.git`. */
const segment = fc
  .stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}$/)
  .filter((s) => s !== "." && s !== ".." && !s.toLowerCase().endsWith(".git"));
const path = fc.array(segment, { minLength: 1, maxLength: 4 });
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });

/** Random letter case, as users and providers write URLs. */
const recase = (s: string, flips: readonly boolean[]) =>
  [...s].map((c, i) => (flips[i % Math.max(flips.length, 1)] ? c.toUpperCase() : c)).join("");

const DEFAULTS = { https: 443, http: 80, ssh: 22, git: 9418 } as const;
type Scheme = keyof typeof DEFAULTS;

describe("gitRepositoryKey", () => {
  test("every spelling of one repository is one key", () => {
    fc.assert(
      fc.property(
        host,
        port,
        path,
        fc.constantFrom<Scheme | "scp">("https", "http", "ssh", "git", "scp"),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.stringMatching(/^[a-z0-9._-]{1,8}(:[a-zA-Z0-9]{1,8})?$/), { nil: undefined }),
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
        (h, p, segments, scheme, dotGit, slash, user, explicitDefault, flips) => {
          const repoPath = segments.join("/");
          const tail = `${repoPath}${dotGit ? ".git" : ""}${slash && scheme !== "scp" ? "/" : ""}`;
          let url: string;
          let nonDefault: number | undefined;
          if (scheme === "scp") {
            url = `${user ? `${user.split(":")[0]}@` : ""}${recase(h, flips)}:${tail}`;
          } else {
            const chosen = explicitDefault ? DEFAULTS[scheme] : p;
            nonDefault = chosen === DEFAULTS[scheme] ? undefined : chosen;
            url = `${recase(scheme, flips)}://${user ? `${user}@` : ""}${recase(h, flips)}${chosen !== undefined ? `:${chosen}` : ""}/${tail}`;
          }
          const expected = `${h}${nonDefault !== undefined ? `:${nonDefault}` : ""}/${repoPath.toLowerCase()}`;
          expect(gitRepositoryKey(url)).toBe(expected);
          // A key spelled as an https URL is itself: keys are fixed points.
          expect(gitRepositoryKey(`https://${expected}`)).toBe(expected);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test("two repositories never share a key", () => {
    fc.assert(
      fc.property(host, path, host, path, (h1, p1, h2, p2) => {
        const a = gitRepositoryKey(`https://${h1}/${p1.join("/")}`);
        const b = gitRepositoryKey(`git@${h2}:${p2.join("/")}.git`);
        const same = h1 === h2 && p1.join("/").toLowerCase() === p2.join("/").toLowerCase();
        expect(a === b).toBe(same);
      }),
      { numRuns: 2_000 },
    );
  });

  test("any text: a key or undefined, never an exception, never whitespace", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const key = gitRepositoryKey(s);
        if (key !== undefined) expect(key).toMatch(/^[^\s]+\/[^\s]+$/);
      }),
      { numRuns: 5_000 },
    );
  });

  test.each([
    ["the scp form", "git@github.com:Example/App.git", "github.com/example/app"],
    ["ssh with user and default port", "ssh://git@github.com:22/example/app.git", "github.com/example/app"],
    [
      "a non-default port stays",
      "ssh://git@bitbucket.example.com:7999/proj/app.git",
      "bitbucket.example.com:7999/proj/app",
    ],
    [
      "https with a token in user info",
      "https://x-access-token:s3cr3t@github.com/example/app",
      "github.com/example/app",
    ],
    ["git protocol", "git://github.com/example/app.git", "github.com/example/app"],
    ["GitLab subgroups", "https://gitlab.com/group/sub/app.git/", "gitlab.com/group/sub/app"],
    ["an IPv6 host", "ssh://git@[::1]:2222/example/app", "[::1]:2222/example/app"],
    ["leading zeros in a port", "https://git.example.com:0443/app", "git.example.com/app"],
    ["a host alone", "https://github.com", undefined],
    ["a host and a slash", "https://github.com/", undefined],
    ["file://", "file:///srv/git/app.git", undefined],
    ["an S3 bucket", "s3://bucket/app", undefined],
    ["scp with a port-like path (a path)", "git@github.com:2222/app", "github.com/2222/app"],
    ["an ssh URL with scp's colon", "ssh://git@github.com:example/app", undefined],
    ["dot-dot segments", "https://github.com/example/../victim/app", undefined],
    ["slashes before the path (scp's `host:/path` too)", "https://github.com//example/app", "github.com/example/app"],
    ["an empty segment", "https://github.com/example//app", undefined],
    ["a query", "https://github.com/example/app?ref=main", undefined],
    ["a fragment", "https://github.com/example/app#main", undefined],
    ["a local path", "/srv/git/app.git", undefined],
    ["a relative path with a colon after a slash", "./a:b", undefined],
    ["spaces", "https://github.com/example/my app", undefined],
    ["a port out of range", "https://github.com:65536/example/app", undefined],
  ])("%s", (_, url, key) => {
    expect(gitRepositoryKey(url)).toBe(key);
  });
});

describe("imageRepositoryKey", () => {
  const repo = fc.array(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), { minLength: 1, maxLength: 3 });
  test("registry host and path; tag, digest, oci:// and case dropped", () => {
    fc.assert(
      fc.property(
        host,
        port,
        repo,
        fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/), { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
        (h, p, segments, tag, digest, oci) => {
          const name = `${h}${p !== undefined ? `:${p}` : ""}/${segments.join("/")}`;
          const ref = `${oci ? "oci://" : ""}${name}${tag ? `:${tag}` : ""}${digest ? `@sha256:${"a".repeat(64)}` : ""}`;
          expect(imageRepositoryKey(ref)).toBe(name);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test.each([
    ["an official image", "nginx", "docker.io/library/nginx"],
    ["an official image with a tag", "nginx:1.27", "docker.io/library/nginx"],
    ["docker.io's library", "docker.io/library/nginx", "docker.io/library/nginx"],
    ["docker.io without library", "docker.io/nginx", "docker.io/library/nginx"],
    ["index.docker.io", "index.docker.io/library/nginx:latest", "docker.io/library/nginx"],
    ["registry-1.docker.io", "registry-1.docker.io/org/app", "docker.io/org/app"],
    ["a Docker Hub user's image", "org/app", "docker.io/org/app"],
    ["localhost with a port", "localhost:5000/app:dev", "localhost:5000/app"],
    [
      "GHCR, uppercase owner (GitHub's package_url)",
      "ghcr.io/Codertocat/hello-world:",
      "ghcr.io/codertocat/hello-world",
    ],
    ["a digest", "ghcr.io/org/app@sha256:abc", "ghcr.io/org/app"],
    ["an OCI HelmRepository's URL", "oci://ghcr.io/org/charts", "ghcr.io/org/charts"],
    [
      "Artifact Registry",
      "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
      "us-east1-docker.pkg.dev/my-project/my-repo/hello-world",
    ],
    ["empty", "", undefined],
    ["a slash alone", "/", undefined],
    ["an https URL", "https://ghcr.io/org/app", undefined],
    ["invalid path characters", "ghcr.io/org/App$", undefined],
  ])("%s", (_, ref, key) => {
    expect(imageRepositoryKey(ref)).toBe(key);
  });
});

describe("the ref a GitRepository follows", () => {
  test.each<[string, unknown, GitFollow]>([
    ["no ref: source-controller's default branch", undefined, { kind: "branch", branch: "master" }],
    ["an empty ref", {}, { kind: "branch", branch: "master" }],
    ["a branch", { branch: "main" }, { kind: "branch", branch: "main" }],
    ["a tag over a branch", { branch: "main", tag: "v1" }, { kind: "tag", tag: "v1" }],
    ["a tag over semver (fluxcd/pkg's order)", { tag: "v1", semver: ">=1" }, { kind: "tag", tag: "v1" }],
    ["semver over a branch", { branch: "main", semver: ">=1" }, { kind: "semver" }],
    ["a name over a tag", { name: "refs/heads/dev", tag: "v1" }, { kind: "name", name: "refs/heads/dev" }],
    ["a commit over everything", { commit: "abc", name: "refs/heads/dev", branch: "main" }, { kind: "commit" }],
  ])("%s", (_, ref, follow) => {
    expect(gitFollow(ref)).toEqual(follow);
  });

  test.each<[GitFollow, string, boolean]>([
    [{ kind: "branch", branch: "main" }, "refs/heads/main", true],
    [{ kind: "branch", branch: "main" }, "refs/heads/Main", false],
    [{ kind: "branch", branch: "main" }, "refs/tags/main", false],
    [{ kind: "branch", branch: "master" }, "refs/heads/master", true],
    [{ kind: "tag", tag: "v1" }, "refs/tags/v1", true],
    [{ kind: "tag", tag: "v1" }, "refs/tags/v1.1", false],
    [{ kind: "semver" }, "refs/tags/anything", true],
    [{ kind: "semver" }, "refs/heads/main", false],
    [{ kind: "name", name: "refs/heads/dev" }, "refs/heads/dev", true],
    [{ kind: "name", name: "refs/tags/v2" }, "refs/tags/v2", true],
    [{ kind: "name", name: "refs/tags/v2" }, "refs/heads/v2", false],
    [{ kind: "commit" }, "refs/heads/main", false],
  ])("%o follows %s: %p", (follow, ref, follows) => {
    expect(followsRef(follow, ref)).toBe(follows);
  });
});
