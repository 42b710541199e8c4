/**
 * @module server/api/repository
 * The one spelling of a repository that routing compares: what a Flux source follows (a
 * GitRepository's `spec.url`, an OCIRepository's `spec.url`, an ImageRepository's `spec.image`, an
 * OCI HelmRepository's `spec.url`) and what a webhook event is about are both reduced to a key,
 * and a source follows the event's repository when the keys are equal.
 *
 * Git (`gitRepositoryKey`): scheme (https, http, ssh, git), user info, the scheme's default port, a
 * trailing `.git` or `/`, and letter case are ignored; the scp form `git@host:org/repo.git` is
 * `ssh://git@host/org/repo`. The key is `host[:port]/path`, lowercased.
 *
 * Images and OCI artifacts (`imageRepositoryKey`): registry host and repository path, tag and
 * digest dropped, `oci://` dropped, Docker Hub's aliases (`docker.io`, `index.docker.io`,
 * `registry-1.docker.io`, none at all) one host, and its implicit `library/` made explicit.
 *
 * Written here rather than taken from git-url-parse or a docker-reference package: those guess at
 * providers and rewrite paths their own ways, and routing needs exactly these rules (a loose
 * match reconciles a source of another repository), which test/server/repository-key.test.ts
 * property-tests. Anything that does not parse is undefined, and matches nothing.
 */

/** Default port of each Git URL scheme, dropped from keys (a non-default port is part of the key). */
const GIT_DEFAULT_PORTS: Readonly<Record<string, string>> = { https: "443", http: "80", ssh: "22", git: "9418" };

/**
 * Characters a host may have: DNS names (with `_`, which some internal resolvers allow) and IPv4.
 * IPv6 literals are bracketed and checked apart.
 */
const HOST = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;
/** A path segment: printable, no space, no character a URL would escape or end at. */
const SEGMENT = /^[A-Za-z0-9._~%+!$&'()*,;=@-]+$/;

/** What no repository URL or reference holds: whitespace, control characters, a query, a fragment, a backslash. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const UNFIT = /[\s\x00-\x1f\x7f?#\\]/;

/** The length a repository key may have: far above any real host and path (GitLab caps paths at 255). */
export const MAX_REPOSITORY_KEY_CHARS = 512;

function hostPort(authority: string, scheme: string): string | undefined {
  const at = authority.lastIndexOf("@");
  const hostport = (at < 0 ? authority : authority.slice(at + 1)).toLowerCase();
  let host: string;
  let port: string;
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) return undefined;
    host = hostport.slice(0, end + 1);
    const rest = hostport.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return undefined;
    port = rest.slice(1);
    if (!IPV6.test(host)) return undefined;
  } else {
    const colon = hostport.indexOf(":");
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    port = colon < 0 ? "" : hostport.slice(colon + 1);
    if (!HOST.test(host)) return undefined;
  }
  if (port !== "") {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
    port = String(Number(port));
    if (port === GIT_DEFAULT_PORTS[scheme]) port = "";
  }
  return port === "" ? host : `${host}:${port}`;
}

/** `org/repo` from a path: slashes at both ends and one trailing `.git` dropped; undefined when not a repository path. */
function repositoryPath(path: string): string | undefined {
  let p = path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (p.toLowerCase().endsWith(".git")) p = p.slice(0, -4).replace(/\/+$/, "");
  if (p === "") return undefined;
  const segments = p.split("/");
  // `.` and `..` would name another repository than the text seems to; empty segments are `//`.
  if (segments.some((s) => s === "" || s === "." || s === ".." || !SEGMENT.test(s))) return undefined;
  return p.toLowerCase();
}

/**
 * The key of a Git repository URL (`github.com/org/repo`), or undefined when the text is not a URL
 * of the schemes Git fetches over the network (https, http, ssh, git) nor the scp form.
 */
export function gitRepositoryKey(url: string): string | undefined {
  if (url.length > MAX_REPOSITORY_KEY_CHARS || UNFIT.test(url)) return undefined;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  let host: string | undefined;
  let path: string | undefined;
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (!(name in GIT_DEFAULT_PORTS)) return undefined;
    const rest = url.slice(scheme[0].length);
    const slash = rest.indexOf("/");
    if (slash < 0) return undefined;
    host = hostPort(rest.slice(0, slash), name);
    path = repositoryPath(rest.slice(slash));
  } else {
    // Git's scp-like syntax: a colon before any slash, `[user@]host:path`. A colon after a slash
    // is a local path, which no event names.
    const colon = url.indexOf(":");
    const slash = url.indexOf("/");
    if (colon <= 0 || (slash >= 0 && slash < colon)) return undefined;
    host = hostPort(url.slice(0, colon), "ssh");
    path = repositoryPath(url.slice(colon + 1));
  }
  if (host === undefined || path === undefined) return undefined;
  return `${host}/${path}`;
}

/** Docker Hub, whatever a reference calls it: the one host its keys have. */
export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/**
 * The key of an image or OCI artifact reference (`ghcr.io/org/app`, `docker.io/library/nginx`),
 * tag and digest dropped, or undefined when it is not one. The first component is a registry host
 * when it has a `.` or a `:` or is `localhost`, as Docker's reference grammar reads it; otherwise
 * the reference is Docker Hub's.
 */
export function imageRepositoryKey(reference: string): string | undefined {
  if (reference.length > MAX_REPOSITORY_KEY_CHARS || UNFIT.test(reference)) return undefined;
  let ref = reference.replace(/^oci:\/\//i, "");
  const at = ref.indexOf("@");
  if (at >= 0) ref = ref.slice(0, at);
  // A tag is after the last colon that follows the last slash (a port's colon precedes a slash).
  const lastSlash = ref.lastIndexOf("/");
  const tagColon = ref.indexOf(":", lastSlash + 1);
  if (tagColon >= 0) ref = ref.slice(0, tagColon);
  ref = ref.replace(/\/+$/, "");
  const parts = ref.split("/");
  if (parts.some((p) => p === "")) return undefined;
  const first = parts[0]!;
  const explicitHost = parts.length > 1 && (/[.:]/.test(first) || first.toLowerCase() === "localhost");
  let host = explicitHost ? hostPort(first, "") : DOCKER_HUB;
  if (host === undefined) return undefined;
  const path = (explicitHost ? parts.slice(1) : parts).map((p) => p.toLowerCase());
  if (path.some((p) => !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(p))) return undefined;
  if (DOCKER_HUB_ALIASES.has(host)) host = DOCKER_HUB;
  if (host === DOCKER_HUB && path.length === 1) path.unshift("library");
  return `${host}/${path.join("/")}`;
}

/**
 * A Git ref an event is about, as Git names it (`refs/heads/main`, `refs/tags/v1.2.0`), or the
 * event names no ref (a ping), and then a source matches on its repository alone.
 */
export type GitRefs = readonly string[] | undefined;

/**
 * What a webhook event is about, reduced for routing: the keys of its repository (an event may
 * name it several ways: clone, SSH and web URLs), the refs it changed (Git), and how the answer
 * names it (`example/app@refs/heads/main`).
 */
export type RepositoryEvent =
  | { readonly kind: "git"; readonly keys: readonly string[]; readonly refs: GitRefs; readonly display: string }
  | { readonly kind: "image"; readonly keys: readonly string[]; readonly display: string };

/**
 * What a source follows in Git, in the precedence source-controller's checkout gives the fields of
 * `spec.ref` (fluxcd/pkg git/gogit Clone: commit, name, tag, semver, branch; no ref is the branch
 * `master`, git.DefaultBranch).
 */
export type GitFollow =
  | { readonly kind: "commit" }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "tag"; readonly tag: string }
  | { readonly kind: "semver" }
  | { readonly kind: "branch"; readonly branch: string };

/** The branch source-controller checks out when a GitRepository names no ref (fluxcd/pkg git.DefaultBranch). */
export const DEFAULT_GIT_BRANCH = "master";

/** Whether a source that follows `follow` is changed by a push of `ref`. */
export function followsRef(follow: GitFollow, ref: string): boolean {
  switch (follow.kind) {
    case "commit":
      // A pinned commit: no push changes what it checks out.
      return false;
    case "name":
      return ref === follow.name;
    case "tag":
      return ref === `refs/tags/${follow.tag}`;
    case "semver":
      return ref.startsWith("refs/tags/");
    case "branch":
      return ref === `refs/heads/${follow.branch}`;
  }
}
