/**
 * One webhook for a whole organisation (issue 24), end to end through the test API server: forty
 * sources in three namespaces (GitRepositories, OCIRepositories, ImageRepositories and
 * HelmRepositories, their URLs spelled every way Flux's CRDs let users spell them (a
 * GitRepository's url is http, https or ssh; events add the scp form and git://), following branches, tags,
 * semver ranges, ref names and pinned commits), one routing Receiver per receiver type selecting
 * them all with `namespace: "*"` and the tenants' opt-in label, and real deliveries signed at test
 * time: exactly the sources that follow the event's repository (and ref) are annotated.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import type { KubeObject } from "../kube";
import { githubExample } from "../support/payloads";
import {
  acrPush,
  bitbucketCloudPush,
  bitbucketServerRefsChanged,
  dockerHubPush,
  gcrMessage,
  githubPayloadFor,
  gitlabPush,
  gitlabTagPush,
  harborPushArtifact,
  quayPush,
} from "../support/provider-payloads";
import { startStack, waitFor, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { GIT, IMAGE } from "../support/kinds";
import { signature } from "../support/signer";

const TOKEN = "routing-token";
const FLUX = "flux-system";
const OPT_IN = { "fluxhook.io/webhook": "org" };
const GCR_EMAIL = "pusher@my-project.iam.gserviceaccount.com";
const GCR_AUDIENCE = "https://fluxhook.example/hook";

type Kind = "GitRepository" | "OCIRepository" | "ImageRepository" | "HelmRepository";
interface Source {
  readonly ns: string;
  readonly kind: Kind;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** Without the tenants' opt-in label: never selected. */
  readonly optOut?: true;
}

const git = (ns: string, name: string, url: string, ref?: Record<string, string>, optOut?: true): Source => ({
  ns,
  kind: "GitRepository",
  name,
  spec: { url, interval: "10m", ...(ref ? { ref } : {}) },
  ...(optOut ? { optOut } : {}),
});
const oci = (ns: string, name: string, url: string): Source => ({
  ns,
  kind: "OCIRepository",
  name,
  spec: { url, interval: "10m", ref: { tag: "latest" } },
});
const image = (ns: string, name: string, ref: string): Source => ({
  ns,
  kind: "ImageRepository",
  name,
  spec: { image: ref, interval: "10m" },
});
const helm = (ns: string, name: string, url: string, type?: "oci"): Source => ({
  ns,
  kind: "HelmRepository",
  name,
  spec: { url, interval: "10m", ...(type ? { type } : {}) },
});

/** The forty sources; `ghes` is the GitHub Enterprise Server host of the generic-oidc issuer. */
function sources(ghes: string): Source[] {
  const hello = "Codertocat/Hello-World";
  return [
    git("team-a", "hello-https", `https://github.com/${hello}.git`, { branch: "master" }),
    git("team-a", "hello-ssh", "ssh://git@github.com/codertocat/hello-world.git"),
    git("team-a", "hello-dev", `ssh://git@github.com:22/${hello}`, { branch: "dev" }),
    git("team-a", "hello-tag", "https://github.com/codertocat/hello-world/", { tag: "simple-tag" }),
    git("team-a", "hello-unlabelled", `https://github.com/${hello}`, { branch: "master" }, true),
    git("team-a", "octo-ping", "https://github.com/Octocoders/Hello-World.git", { branch: "main" }),
    oci("team-a", "hello-oci", "oci://ghcr.io/Codertocat/hello-world"),
    image("team-a", "hello-image", "ghcr.io/codertocat/hello-world"),
    git("team-a", "diaspora-master", "http://example.com/mike/diaspora.git", { branch: "master" }),
    git("team-a", "diaspora-semver", "ssh://git@example.com/mike/diaspora.git", { semver: ">=1.0.0" }),
    image("team-a", "testhook", "svendowideit/testhook"),
    image("team-a", "debian-harbor", "hub.harbor.com/test-webhook/debian"),
    git("team-a", "app-main", "https://github.com/example/app", { branch: "main" }),
    git("team-a", "ghes-main", `https://${ghes}/octo-org/octo-repo.git`, { branch: "main" }),
    git("team-b", "hello-semver", `http://github.com/${hello}`, { semver: ">=0.0.0" }),
    git("team-b", "hello-name", `ssh://github.com/${hello}.git/`, { name: "refs/heads/master" }),
    git("team-b", "hello-commit", `https://github.com/${hello}`, { branch: "master", commit: "6113728f27ae82c7b1a1" }),
    git("team-b", "hello-other-host", `https://github.example.com/${hello}`, { branch: "master" }),
    git("team-b", "hello-fork", `https://github.com/${hello}-fork`, { branch: "master" }),
    oci("team-b", "testhook-oci", "oci://docker.io/svendowideit/testhook"),
    image("team-b", "nginx", "nginx"),
    helm("team-b", "charts-oci", "oci://quay.io/mynamespace/repository", "oci"),
    helm("team-b", "charts-https", "https://charts.example.com"),
    image("team-b", "quay-image", "quay.io/mynamespace/repository:latest"),
    git("team-b", "bb-cloud", "https://bitbucket.org/team_name/repo_name.git", { branch: "master" }),
    git("team-b", "bb-cloud-tag", "ssh://git@bitbucket.org/team_name/repo_name.git", { tag: "v1" }),
    git("team-b", "bb-server-ssh", "ssh://git@bitbucket.example.com:7999/PROJ/repository.git", { branch: "master" }),
    git("team-b", "bb-server-https", "https://bitbucket.example.com/scm/proj/repository.git"),
    git("team-b", "app-dev", "ssh://git@github.com/example/app.git", { branch: "dev" }),
    image("team-c", "acr-image", "myregistry.azurecr.io/hello-world"),
    oci("team-c", "acr-oci", "oci://myregistry.azurecr.io/hello-world"),
    image("team-c", "gcr-image", "us-east1-docker.pkg.dev/my-project/my-repo/hello-world"),
    image("team-c", "gcr-other", "us-east1-docker.pkg.dev/my-project/my-repo/other"),
    git("team-c", "hello-upper", "https://GITHUB.COM/CODERTOCAT/HELLO-WORLD.GIT", { branch: "master" }),
    git("team-c", "hello-userinfo", `https://x-access-token:t0ken@github.com:443/${hello}`, { branch: "master" }),
    image("team-c", "testhook-alias", "index.docker.io/svendowideit/testhook:1.0"),
    git("team-c", "octo-ping-tag", "ssh://git@github.com:22/octocoders/hello-world.git", { tag: "v1" }),
    git("team-c", "diaspora-dev", "http://example.com/mike/diaspora", { branch: "dev" }),
    oci("team-c", "debian-harbor-oci", "oci://hub.harbor.com/test-webhook/debian"),
    git("team-c", "ghes-dev", `https://${ghes}/octo-org/octo-repo`, { branch: "dev" }),
  ];
}

const API_VERSION: Record<Kind, string> = {
  GitRepository: GIT,
  OCIRepository: GIT,
  ImageRepository: IMAGE,
  HelmRepository: GIT,
};

const sourceObject = (s: Source): KubeObject => ({
  apiVersion: API_VERSION[s.kind],
  kind: s.kind,
  metadata: { name: s.name, namespace: s.ns, ...(s.optOut ? {} : { labels: OPT_IN }) },
  spec: s.spec,
});

/** Every routed kind, in every namespace, with the opt-in label. */
const EVERY_SOURCE = (["GitRepository", "OCIRepository", "ImageRepository", "HelmRepository"] as const).map((kind) => ({
  kind,
  name: "*",
  namespace: "*",
  matchLabels: OPT_IN,
}));

function routingReceiver(name: string, spec: Record<string, unknown>, namespace = FLUX): KubeObject {
  return {
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name, namespace, annotations: { "fluxhook.io/route-by": "repository" } },
    spec: { resources: EVERY_SOURCE, ...spec },
  };
}

const secretOf = (name: string, data: Record<string, string>, namespace = FLUX): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
});

const TYPES = ["github", "gitlab", "bitbucket", "harbor", "dockerhub", "quay", "acr", "gcr", "generic", "generic-hmac"];

let stack: Stack;
let google: TokenIssuer;
let ghes: TokenIssuer;
let all: Source[];
const paths: Record<string, string> = {};

beforeAll(async () => {
  google = await startTokenIssuer();
  ghes = await startTokenIssuer({ path: "/_services/token" });
  all = sources(new URL(ghes.url).host);
  const objects: KubeObject[] = [
    ...all.map(sourceObject),
    secretOf("token", { token: TOKEN }),
    secretOf("gcr", { token: TOKEN, email: GCR_EMAIL, audience: GCR_AUDIENCE }),
    ...TYPES.map((type) => routingReceiver(type, { type, secretRef: { name: type === "gcr" ? "gcr" : "token" } })),
    routingReceiver("generic-oidc", {
      type: "generic-oidc",
      oidcProviders: [
        {
          issuerURL: ghes.url,
          audience: "fluxhook",
          validations: [{ expression: "claims.repository_owner == 'octo-org'", message: "not octo-org" }],
        },
      ],
    }),
  ];
  stack = await startStack({ gcrJwksUrl: google.jwksUrl }, {}, objects);
  for (const type of [...TYPES, "generic-oidc"]) paths[type] = await stack.readyPath(FLUX, type);
  await waitFor("the forty sources indexed", () => stack.fluxhook.sourcesIndexed() === 40);
});

afterAll(async () => {
  await stack?.stop();
  await google?.stop();
  await ghes?.stop();
});

/** Every source's requestedAt, by `namespace/name`. */
function annotations(): Map<string, string | undefined> {
  return new Map(all.map((s) => [`${s.ns}/${s.name}`, stack.requestedAt(API_VERSION[s.kind], s.kind, s.ns, s.name)]));
}

/** Posts a delivery and returns the answer and the sources whose requestedAt it changed. */
async function deliver(type: string, request: { headers: Record<string, string>; body: string }) {
  const before = annotations();
  const res = await stack.post(paths[type]!, request);
  const after = annotations();
  const changed = [...after].filter(([k, v]) => v !== before.get(k)).map(([k]) => k);
  return { status: res.status, reason: res.body.reason as string, changed: changed.sort(), body: res.body };
}

const json = { "Content-Type": "application/json" };
const github = (event: string, body: string) => ({
  headers: {
    ...json,
    "X-GitHub-Event": event,
    "X-GitHub-Delivery": crypto.randomUUID(),
    "X-Hub-Signature-256": signature(TOKEN, body),
  },
  body,
});
const gitlab = (event: string, payload: object) => ({
  headers: { ...json, "X-Gitlab-Event": event, "X-Gitlab-Token": TOKEN },
  body: JSON.stringify(payload),
});
const bitbucket = (event: string, payload: object) => {
  const body = JSON.stringify(payload);
  return { headers: { ...json, "X-Event-Key": event, "X-Hub-Signature": signature(TOKEN, body) }, body };
};
const plain = (payload: object | string, headers: Record<string, string> = {}) => ({
  headers: { ...json, ...headers },
  body: typeof payload === "string" ? payload : JSON.stringify(payload),
});

/** The total every routing Receiver resolves to: the 39 sources with the opt-in label. */
const TOTAL = 39;

describe("one webhook for an organisation: exactly the sources that follow the event", () => {
  test.each([
    {
      what: "github push to master",
      type: "github",
      request: () => github("push", githubExample("push", 4)),
      annotated: [
        "team-a/hello-https",
        "team-a/hello-ssh",
        "team-b/hello-name",
        "team-c/hello-upper",
        "team-c/hello-userinfo",
      ],
      reason: `5 of ${TOTAL} targets follow Codertocat/Hello-World@refs/heads/master`,
    },
    {
      what: "github tag push",
      type: "github",
      request: () => github("push", githubExample("push", 0)),
      annotated: ["team-a/hello-tag", "team-b/hello-semver"],
      reason: `2 of ${TOTAL} targets follow Codertocat/Hello-World@refs/tags/simple-tag`,
    },
    {
      what: "github create (a tag)",
      type: "github",
      request: () => github("create", githubExample("create", 0)),
      annotated: ["team-a/hello-tag", "team-b/hello-semver"],
    },
    {
      what: "github release",
      type: "github",
      request: () => github("release", githubExample("release", 0)),
      annotated: ["team-b/hello-semver"],
      reason: `1 of ${TOTAL} targets follows Codertocat/Hello-World@refs/tags/0.0.1`,
    },
    {
      what: "github ping: the repository alone",
      type: "github",
      request: () => github("ping", githubExample("ping", 0)),
      annotated: ["team-a/octo-ping", "team-c/octo-ping-tag"],
      reason: `2 of ${TOTAL} targets follow Octocoders/Hello-World`,
    },
    {
      what: "github package (a container)",
      type: "github",
      request: () => github("package", githubExample("package", 1)),
      annotated: ["team-a/hello-image", "team-a/hello-oci"],
      reason: `2 of ${TOTAL} targets follow ghcr.io/codertocat/hello-world`,
    },
    {
      what: "github package (npm): no image",
      type: "github",
      request: () => github("package", githubExample("package", 0)),
      annotated: [],
      reason: `the package is not a container image: 0 of ${TOTAL} targets annotated`,
    },
    {
      what: "github push of a repository nothing follows",
      type: "github",
      request: () => github("push", githubPayloadFor("push", 4, "example", "unknown", "refs/heads/main")),
      annotated: [],
      reason: `0 of ${TOTAL} targets follow example/unknown@refs/heads/main`,
    },
    {
      what: "gitlab push",
      type: "gitlab",
      request: () => gitlab("Push Hook", gitlabPush()),
      annotated: ["team-a/diaspora-master"],
      reason: `1 of ${TOTAL} targets follows mike/diaspora@refs/heads/master`,
    },
    {
      what: "gitlab tag push",
      type: "gitlab",
      request: () => gitlab("Tag Push Hook", gitlabTagPush()),
      annotated: ["team-a/diaspora-semver"],
    },
    {
      what: "bitbucket cloud push",
      type: "bitbucket",
      request: () => bitbucket("repo:push", bitbucketCloudPush()),
      annotated: ["team-b/bb-cloud"],
      reason: `1 of ${TOTAL} targets follows team_name/repo_name@refs/heads/master`,
    },
    {
      what: "bitbucket server refs_changed",
      type: "bitbucket",
      request: () => bitbucket("repo:refs_changed", bitbucketServerRefsChanged()),
      annotated: ["team-b/bb-server-https", "team-b/bb-server-ssh"],
      reason: `2 of ${TOTAL} targets follow PROJ/repository@refs/heads/master`,
    },
    {
      what: "dockerhub push (Docker Hub's aliases)",
      type: "dockerhub",
      request: () => plain(dockerHubPush()),
      annotated: ["team-a/testhook", "team-b/testhook-oci", "team-c/testhook-alias"],
      reason: `3 of ${TOTAL} targets follow docker.io/svendowideit/testhook`,
    },
    {
      what: "harbor push",
      type: "harbor",
      request: () => plain(harborPushArtifact(), { Authorization: TOKEN }),
      annotated: ["team-a/debian-harbor", "team-c/debian-harbor-oci"],
    },
    {
      what: "quay push (an OCI HelmRepository too)",
      type: "quay",
      request: () => plain(quayPush()),
      annotated: ["team-b/charts-oci", "team-b/quay-image"],
    },
    {
      what: "acr push",
      type: "acr",
      request: () => plain(acrPush()),
      annotated: ["team-c/acr-image", "team-c/acr-oci"],
      reason: `2 of ${TOTAL} targets follow myregistry.azurecr.io/hello-world`,
    },
    {
      what: "gcr notification",
      type: "gcr",
      request: async () =>
        plain(gcrMessage(), {
          Authorization: `Bearer ${await google.sign({
            iss: "https://accounts.google.com",
            aud: GCR_AUDIENCE,
            email: GCR_EMAIL,
            email_verified: true,
            sub: "1",
          })}`,
        }),
      annotated: ["team-c/gcr-image"],
    },
    {
      what: "generic-oidc: the token's repository and ref, on GitHub Enterprise Server's host; the body is not read",
      type: "generic-oidc",
      request: async () =>
        plain(githubExample("push", 4), {
          Authorization: `Bearer ${await ghes.sign({
            iss: ghes.url,
            aud: "fluxhook",
            repository: "octo-org/octo-repo",
            repository_owner: "octo-org",
            ref: "refs/heads/main",
          })}`,
        }),
      annotated: ["team-a/ghes-main"],
      reason: `1 of ${TOTAL} targets follows octo-org/octo-repo@refs/heads/main`,
    },
    {
      what: "generic: the sender's push body, read as GitHub's",
      type: "generic",
      request: () => plain(githubPayloadFor("push", 4, "example", "app", "refs/heads/main")),
      annotated: ["team-a/app-main"],
    },
    {
      what: "generic-hmac: the sender's push body, read as GitHub's",
      type: "generic-hmac",
      request: () => {
        const body = githubPayloadFor("push", 4, "example", "app", "refs/heads/main");
        return plain(body, { "X-Signature": signature(TOKEN, body) });
      },
      annotated: ["team-a/app-main"],
    },
    {
      what: "generic: a body not shaped as a push",
      type: "generic",
      request: () => plain({ hello: "world" }),
      annotated: [],
      reason: `the body is not shaped as GitHub's push (a ref and a repository with its URLs): 0 of ${TOTAL} targets annotated`,
    },
  ])("$what", async ({ type, request, annotated, reason }) => {
    const got = await deliver(type, await request());
    expect({ status: got.status, changed: got.changed }).toEqual({ status: 200, changed: [...annotated].sort() });
    if (reason) expect(got.reason).toBe(reason);
    // The answer lists the annotated sources, and only them.
    const listed = (got.body.targets as { namespace: string; name: string; outcome: string }[]).map(
      (t) => `${t.namespace}/${t.name}:${t.outcome}`,
    );
    expect(listed.sort()).toEqual(annotated.map((a) => `${a}:annotated`).sort());
  });

  test("every receiver type that names a repository is covered above", () => {
    expect([...TYPES, "generic-oidc"].sort()).toEqual(
      [
        "acr",
        "bitbucket",
        "dockerhub",
        "gcr",
        "generic",
        "generic-hmac",
        "generic-oidc",
        "github",
        "gitlab",
        "harbor",
        "quay",
      ].sort(),
    );
  });
});

describe("the index follows the cluster", () => {
  test("a source created, moved to another repository, and deleted", async () => {
    const push = () =>
      deliver("github", github("push", githubPayloadFor("push", 4, "example", "late", "refs/heads/main")));
    const late = sourceObject(git("team-b", "late", "https://github.com/example/late", { branch: "main" }));
    stack.api.store.create(late);
    await waitFor("the new source indexed", () => stack.fluxhook.sourcesIndexed() === 41);
    const first = await push();
    expect(first.reason).toBe(`1 of ${TOTAL + 1} targets follows example/late@refs/heads/main`);
    expect(stack.requestedAt(GIT, "GitRepository", "team-b", "late")).toBeString();
    stack.api.store.patch(GIT, "GitRepository", "team-b", "late", {
      spec: { url: "https://github.com/example/elsewhere" },
    });
    await waitFor("the moved source re-indexed", async () => (await push()).reason.startsWith("0 of"));
    stack.api.store.delete(GIT, "GitRepository", "team-b", "late");
    await waitFor("the deleted source dropped", () => stack.fluxhook.sourcesIndexed() === 40);
    expect((await push()).reason).toBe(`0 of ${TOTAL} targets follow example/late@refs/heads/main`);
  });
});
