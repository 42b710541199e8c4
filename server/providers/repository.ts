/**
 * @module server/providers/repository
 * Where each receiver type's deliveries name their repository, for routing (the annotation
 * `fluxhook.io/route-by: repository`): one extractor per type (the `repository` of its record in
 * providers/index.ts), from a validated delivery to the repository event (api/repository.ts) or the
 * reason it names none.
 *
 *   - github: push, ping, create, delete, release (`repository`'s `clone_url`, `ssh_url`,
 *     `html_url`, `git_url`; `ref`, or `ref_type` and `ref`, or the release's `tag_name`); package
 *     and registry_package (the container package's `package_url`);
 *   - gitlab: `project`'s `git_http_url`, `git_ssh_url`, `web_url`, and `ref`;
 *   - bitbucket: Bitbucket Cloud (`repository.links.html`, `push.changes[].new`) and Bitbucket
 *     Server and Data Center (`repository.links.clone`, `changes[].ref.id`);
 *   - dockerhub (`repository.repo_name`), harbor (`event_data.repository.repo_full_name` on the
 *     host of each resource's `resource_url`), quay (`docker_url`), acr (`request.host` and
 *     `target.repository`), gcr (the message's `tag`, else its `digest`);
 *   - generic-oidc: the verified token's `repository` and `ref` claims, on GitHub's host (the
 *     issuer's), never the body, which the token does not cover;
 *   - generic and generic-hmac: a body shaped as GitHub's push (what the fluxhook sender delivers).
 *
 * nexus and cdevents name no repository routing can match: a Receiver of those types with the
 * annotation is not Ready (receivers/decide.ts). Extractors run after validation, so for every type
 * with a credential the body is the authenticated sender's; for URL-only types (generic,
 * dockerhub, quay, acr) the repository is whatever whoever has the URL says, as the body was
 * before: routing only narrows which of the Receiver's own targets are annotated.
 */
import { gitRepositoryKey, imageRepositoryKey, type RepositoryEvent } from "../api/repository";
import { formPayload, mediaType } from "./github";
import { firstJsonValue } from "./json-decode";
import { MAX_REPOSITORY_DISPLAY_CHARS } from "../limits";
import type { Validation } from "./types";

/** What an extractor reads: a validated delivery's event name, payload and (generic-oidc) claims. */
export type RepositoryInput = Pick<Extract<Validation, { ok: true }>, "event" | "payload" | "payloadType" | "claims">;

export type Extracted =
  | { readonly ok: true; readonly event: RepositoryEvent }
  | { readonly ok: false; readonly reason: string };

export type RepositoryExtractor = (input: RepositoryInput) => Extracted;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const at = (v: unknown, ...path: string[]): unknown => path.reduce((o, k) => (isObject(o) ? o[k] : undefined), v);

/** Sender text as an answer may quote it: printable ASCII only, bounded. */
const shown = (s: string) => s.replace(/[^\x20-\x7e]/g, "?").slice(0, MAX_REPOSITORY_DISPLAY_CHARS);

const none = (reason: string): Extracted => ({ ok: false, reason });

/**
 * The payload as a JSON object, or the reason it is not one. github's and bitbucket's validators
 * hand on a form body's `payload` field already (the payload CEL's `req` is made from); generic's
 * hand on the body as it came, so `fromForm` takes that field out of a form body.
 */
function body(input: RepositoryInput, fromForm = false): Json | string {
  const form = fromForm && mediaType(input.payloadType) === "application/x-www-form-urlencoded";
  const bytes = form ? formPayload(input.payload) : input.payload;
  const decoded = firstJsonValue(bytes);
  if (!decoded.ok) return `the body is not JSON (${decoded.error})`;
  return isObject(decoded.value) ? decoded.value : "the body is not a JSON object";
}

/**
 * A Git event: the keys of the URLs that parse, deduplicated (none is no repository), and its
 * refs: undefined for an event about no ref (a ping: the repository alone matches), and empty for
 * one whose refs name nothing a source follows (a push that only deleted a branch: nothing does).
 */
function git(urls: readonly unknown[], refs: readonly string[] | undefined, name: string | undefined): Extracted {
  const keys = [...new Set(urls.flatMap((u) => (typeof u === "string" ? (gitRepositoryKey(u) ?? []) : [])))];
  if (keys.length === 0) return none("the event names no Git repository URL");
  const who = shown(name ?? keys[0]!);
  const display = refs === undefined || refs.length === 0 ? who : `${who}@${shown(refs.join(","))}`;
  return { ok: true, event: { kind: "git", keys, refs, display } };
}

const defined = <T>(xs: readonly (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined);

/** An image event: the keys of the references that parse. */
function image(references: readonly unknown[]): Extracted {
  const keys = [...new Set(references.flatMap((r) => (typeof r === "string" ? (imageRepositoryKey(r) ?? []) : [])))];
  if (keys.length === 0) return none("the event names no image repository");
  return { ok: true, event: { kind: "image", keys, display: shown(keys.join(",")) } };
}

/** `refs/…` as it stands, or a short name made into one (`main` with `branch` is `refs/heads/main`). */
function fullRef(ref: unknown, type?: unknown): string | undefined {
  const r = text(ref);
  if (!r) return undefined;
  if (r.startsWith("refs/")) return r;
  if (type === "branch") return `refs/heads/${r}`;
  if (type === "tag") return `refs/tags/${r}`;
  return undefined;
}

const GITHUB_PACKAGE_TYPES = new Set(["container", "docker"]);

/** A GitHub package event's image: a container package's `package_url` (npm and the like name no image). */
function githubPackage(b: Json): Extracted {
  const pkg = isObject(b.package) ? b.package : isObject(b.registry_package) ? b.registry_package : undefined;
  if (!pkg) return none("the package event names no package");
  // `ecosystem` is not read: GitHub's own examples give npm packages the ecosystem "docker".
  const types = [pkg.package_type, at(pkg, "registry", "type")].map((t) => String(t).toLowerCase());
  if (!types.some((t) => GITHUB_PACKAGE_TYPES.has(t))) return none("the package is not a container image");
  return image([at(pkg, "package_version", "package_url")]);
}

/** A GitHub event about a repository: its URLs, and the ref it changed, if it names one. */
function githubRepository(event: string | undefined, b: Json): Extracted {
  const repo = isObject(b.repository) ? b.repository : undefined;
  if (!repo) return none(event ? `the ${shown(event)} event names no repository` : "the event names no repository");
  // The events about a ref name it; the others (ping, issues, pull requests) match on the repository alone.
  let refs: string[] | undefined;
  if (event === "release") refs = defined([fullRef(at(b, "release", "tag_name"), "tag")]);
  else if (event === "create" || event === "delete") refs = defined([fullRef(b.ref, b.ref_type)]);
  else if (b.ref !== undefined) refs = defined([fullRef(b.ref)]);
  return git([repo.clone_url, repo.ssh_url, repo.html_url, repo.git_url], refs, text(repo.full_name));
}

const github: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  if (input.event === "package" || input.event === "registry_package") return githubPackage(b);
  return githubRepository(input.event, b);
};

/** A generic body read as GitHub's push: `ref` and `repository` with its URLs (JSON, or GitHub's form). */
const githubShaped: RepositoryExtractor = (input) => {
  const b = body(input, true);
  if (typeof b === "string") return none(b);
  if (!isObject(b.repository) || !fullRef(b.ref))
    return none("the body is not shaped as GitHub's push (a ref and a repository with its URLs)");
  return githubRepository("push", b);
};

const gitlab: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  const project = isObject(b.project) ? b.project : {};
  const repository = isObject(b.repository) ? b.repository : {};
  return git(
    [project.git_http_url, project.git_ssh_url, project.web_url, repository.git_http_url, repository.git_ssh_url],
    b.ref === undefined ? undefined : defined([fullRef(b.ref)]),
    text(project.path_with_namespace),
  );
};

/** Bitbucket Cloud (`push.changes`) or Bitbucket Server and Data Center (`changes`), told apart by their shape. */
const bitbucket: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  const repo = isObject(b.repository) ? b.repository : {};
  const links = isObject(repo.links) ? repo.links : {};
  if (Array.isArray(b.changes) || Array.isArray(links.clone)) {
    const clone = Array.isArray(links.clone) ? links.clone.map((l) => at(l, "href")) : [];
    if (clone.length === 0) return none("the Bitbucket Server event carries no clone links of its repository");
    const refs = Array.isArray(b.changes)
      ? b.changes.flatMap((c) => fullRef(at(c, "ref", "id")) ?? fullRef(at(c, "refId")) ?? [])
      : undefined;
    const project = text(at(repo, "project", "key"));
    const slug = text(repo.slug);
    return git(clone, refs, project && slug ? `${project}/${slug}` : undefined);
  }
  const changes = at(b, "push", "changes");
  const refs = Array.isArray(changes)
    ? changes.flatMap((c) => {
        const type = at(c, "new", "type");
        return fullRef(at(c, "new", "name"), type === "named_branch" ? "branch" : type) ?? [];
      })
    : undefined;
  return git([at(links, "html", "href")], refs, text(repo.full_name));
};

const dockerhub: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  const name = text(at(b, "repository", "repo_name"));
  return name ? image([`docker.io/${name}`]) : none("the event names no repository.repo_name");
};

const harbor: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  const name = text(at(b, "event_data", "repository", "repo_full_name"));
  const resources = at(b, "event_data", "resources");
  if (!name || !Array.isArray(resources)) return none("the event names no event_data.repository.repo_full_name");
  const hosts = resources.flatMap((r) => {
    const url = text(at(r, "resource_url"));
    return url ? [url.split("/", 1)[0]!] : [];
  });
  return image(hosts.map((host) => `${host}/${name}`));
};

const quay: RepositoryExtractor = (input) => {
  const b = body(input);
  return typeof b === "string" ? none(b) : image([b.docker_url]);
};

const acr: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  const host = text(at(b, "request", "host"));
  const repository = text(at(b, "target", "repository"));
  return host && repository
    ? image([`${host}/${repository}`])
    : none("the event names no request.host and target.repository");
};

/** gcr's payload is the unwrapped `{action, digest, tag}` (providers/gcr.ts). */
const gcr: RepositoryExtractor = (input) => {
  const b = body(input);
  if (typeof b === "string") return none(b);
  return image([text(b.tag) ?? text(b.digest)]);
};

/** GitHub Actions' issuers: github.com's, and GitHub Enterprise Server's (`https://HOST/_services/token`). */
function githubHost(issuer: unknown): string | undefined {
  const iss = text(issuer);
  if (!iss) return undefined;
  let url: URL;
  try {
    url = new URL(iss);
  } catch {
    return undefined;
  }
  if (url.hostname === "token.actions.githubusercontent.com") return "github.com";
  return url.pathname.replace(/\/+$/, "") === "/_services/token" ? url.host : undefined;
}

/** The verified token's claims only: the body is not covered by the token. */
const genericOidc: RepositoryExtractor = (input) => {
  const claims = input.claims ?? {};
  const host = githubHost(claims.iss);
  const repository = text(claims.repository);
  if (!host || !repository)
    return none("the token is not a GitHub Actions ID token with a repository claim (routing reads GitHub's claims)");
  return git(
    [`https://${host}/${repository}`],
    claims.ref === undefined ? undefined : defined([fullRef(claims.ref)]),
    repository,
  );
};

// Each type's extractor, the `repository` of its record in providers/index.ts; nexus and cdevents
// have none: their deliveries name no repository routing can match.
export {
  acr as acrRepository,
  bitbucket as bitbucketRepository,
  dockerhub as dockerhubRepository,
  gcr as gcrRepository,
  genericOidc as oidcRepository,
  github as githubRepository,
  githubShaped as githubShapedRepository,
  gitlab as gitlabRepository,
  harbor as harborRepository,
  quay as quayRepository,
};
