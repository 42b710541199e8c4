/**
 * The differential suite's cases (differential.test.ts runs each against notification-controller
 * and against fluxhook): notification-controller's own 37 handler cases (Test_handlePayload in
 * internal/server/receiver_handler_test.go of v1.9.3, numbered as in
 * /work/shared/reference/flux-receiver.md §6), GitHub's real payloads of @octokit/webhooks-examples
 * with GitHub's headers, and every refusal the spec lists.
 *
 * Upstream's cases run the handler on a fake client with a Receiver whose status says Ready at
 * "/hook/"; here each Receiver is made in a real cluster and reconciled by the controller under
 * test, and the request goes to the path the sender computes (sha256(token+name+namespace)).
 * Where upstream states a status no controller writes ("Ready with its Secret gone", "not
 * Ready"), the case makes it as a user would: the Receiver goes Ready, then its Secret is
 * deleted or its spec broken. Targets are GitRepositories where upstream used Receivers (the
 * CRD's resources[].kind does not allow Receiver), and upstream cases with no resources get one
 * named GitRepository, so that every case also shows what was annotated.
 */
import { hmacHex, type SignatureAlgorithm } from "../../shared";
import { githubExample } from "../support/payloads";
import type { TokenIssuer } from "../support/tokens";
import { gitRepository, imageRepository, type KubeObject } from "./flux";

/** The token of every case's Secret, as upstream's cases use. */
export const TOKEN = "token";

/** Process flags a case needs: each group runs its own pair of processes. */
export type Group = "default" | "no-cross-namespace-refs";
export const GROUP_FLAGS: Record<Group, readonly string[]> = {
  default: [],
  "no-cross-namespace-refs": ["--no-cross-namespace-refs=true"],
};

/** Where one side runs one case. */
export interface CaseContext {
  /** The namespace the side's controller watches, where the case's Receiver, Secret and targets are. */
  readonly ns: string;
  /** A second namespace of the same side (targets elsewhere). */
  readonly other: string;
  /** The case's Receiver (its slug). */
  readonly name: string;
  /** The name of one of the case's objects: `<slug>-<suffix>`. */
  n(suffix: string): string;
  /** A local OIDC issuer on loopback (test/support/tokens.ts), for generic-oidc Receivers. */
  readonly issuer: TokenIssuer;
}

export interface Signing {
  readonly header: string;
  readonly algorithm: SignatureAlgorithm;
  /** `sha256=` for GitHub's headers; "" for Nexus's bare hex. */
  readonly prefix: string;
  /** Signs with this token instead of the case's (a forged signature). */
  readonly token?: string;
}

export interface DiffRequest {
  readonly method?: string;
  /** The request target; the Receiver's path (computed as a sender does) unless given. */
  readonly path?: (ctx: CaseContext, receiverPath: string) => string;
  readonly headers?: Record<string, string>;
  /** The body's bytes; none when undefined. No Content-Type is sent unless a header names one. */
  readonly body?: string;
  readonly sign?: readonly Signing[];
  /** An `Authorization: Bearer` token, signed when the request is sent. */
  readonly bearer?: (issuer: TokenIssuer) => Promise<string>;
}

export interface DiffCase {
  /** Shown in the table, and what README's "case" column matches. */
  readonly name: string;
  /** Its objects' names (DNS-1123, unique among the cases). */
  readonly slug: string;
  readonly group?: Group;
  /**
   * Data of the case's Secret `<slug>-token`; default `{ token: "token" }`; "none" makes no Secret.
   * A generic-oidc Receiver has no secretRef, and its path's token is "".
   */
  readonly secret?: Record<string, string> | "none";
  readonly secretLabels?: Record<string, string>;
  /** The Receiver's annotations. */
  readonly annotations?: Record<string, string>;
  /** The token the path is computed from when it is not the Secret's (generic-oidc: ""). */
  readonly pathToken?: string;
  /** The Receiver's spec (secretRef defaults to the case's Secret); null makes no Receiver. */
  readonly spec: ((ctx: CaseContext) => Record<string, unknown>) | null;
  /** Objects the Receiver may annotate; default: the GitRepository `<slug>-repo`. */
  readonly targets?: (ctx: CaseContext) => KubeObject[];
  /** Changes made once the Receiver has settled, before any request. */
  readonly afterReady?: {
    readonly deleteSecret?: boolean;
    readonly spec?: (ctx: CaseContext) => Record<string, unknown>;
  };
  readonly requests: readonly DiffRequest[];
}

// ---- bodies and headers

const JSON_CT = { "Content-Type": "application/json" };
const JSON_UTF8_CT = { "Content-Type": "application/json; charset=utf-8" };
const GITHUB_256: Signing = { header: "X-Hub-Signature-256", algorithm: "sha256", prefix: "sha256=" };
const GITHUB_1: Signing = { header: "X-Hub-Signature", algorithm: "sha1", prefix: "sha1=" };
/** Signs a body as GitHub and Bitbucket Server do (an HMAC of the raw body). */
export function sign(s: Signing, token: string, body: string): string {
  return `${s.prefix}${hmacHex(s.algorithm, s.token ?? token, body)}`;
}

/** Go's json.Marshal of upstream's map payloads: keys sorted, no spaces (nil is `null`). */
function goJson(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(sorted(value));
}

const CDEVENT = goJson({
  context: {
    gitRepository: "adamkenihan/notification-controller",
    gitRevision: "5555",
    version: "0.3.0",
    id: "5555",
    source: "github",
    timestamp: "2023-12-07T14:51:29.908479495Z",
    type: "dev.cdevents.change.merged.0.2.0",
  },
  subject: { type: "change", id: "5555" },
});
const ACTION_PUSH = goJson({ action: "push" });
const GCR_IMAGE = goJson({
  action: "INSERT",
  digest: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5...",
  tag: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
});
const IMAGE_FILTER = `has(res.metadata.annotations) && req.tag.split('/').last().value().split(":").first().value() == res.metadata.annotations['update-image']`;
const GCR_PUBSUB = goJson({
  message: {
    data: Buffer.from(
      goJson({
        action: "INSERT",
        digest: "us-east1-docker.pkg.dev/my-project/my-repo/app1@sha256:6ec128e26cd5...",
        tag: "us-east1-docker.pkg.dev/my-project/my-repo/app1:v1.2.3",
      }),
    ).toString("base64"),
  },
});
const GCR_SECRET = { token: TOKEN, email: "test@example.iam.gserviceaccount.com", audience: "https://example.com" };
/** flux-receiver.md §6: the Nexus body whose HMAC-SHA1 under "token" is aaeb4256…. */
const NEXUS_BODY =
  '{"action":"CREATED","asset":{"assetId":"bnBtLXByb3h5OjMxYzk1MGM4ZWVlYWI3ODMzNjMwODE3N2FlOWM0NDFj","format":"npm","id":"31c950c8eeeab78336308177ae9c441c","name":"concrete"},"initiator":"admin/127.0.0.1","nodeId":"52905B51-085CCABB-CEBBEAAD-16795588-FC927D93","repositoryName":"npm-proxy","timestamp":"2016-11-10T23:57:49.664+0000"}';

/** Upstream's "large payload": a JSON object of UUID keys just past the 3 MiB limit. */
function largePayload(): string {
  const entries: string[] = [];
  let size = 2;
  while (size <= 3 * 2 ** 20) {
    const entry = `"${crypto.randomUUID()}":"something"`;
    entries.push(entry);
    size += entry.length + 1;
  }
  return `{${entries.join(",")}}`;
}
const LARGE = largePayload();

/** GitHub's headers for a delivery of `event` (the signatures are added from `sign`). */
function githubHeaders(event: string, contentType = "application/json"): Record<string, string> {
  return {
    "Content-Type": contentType,
    "User-Agent": "GitHub-Hookshot/3fa8b42",
    "X-GitHub-Event": event,
    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "X-GitHub-Hook-ID": "292430182",
    "X-GitHub-Hook-Installation-Target-ID": "79929171",
    "X-GitHub-Hook-Installation-Target-Type": "repository",
  };
}
/**
 * GitHub's registry_package webhook: @octokit/webhooks-examples has only its newer twin `package`,
 * the same payload with the package under `registry_package` (as Actions' event of that name).
 */
function registryPackageExample(): string {
  const { package: pkg, ...rest } = JSON.parse(githubExample("package")) as Record<string, unknown>;
  return JSON.stringify({ ...rest, registry_package: pkg });
}
function github(event: string, example = 0): DiffRequest {
  const body = event === "registry_package" ? registryPackageExample() : githubExample(event, example);
  return { headers: githubHeaders(event), body, sign: [GITHUB_1, GITHUB_256] };
}

// ---- specs and targets

const repo = (ctx: CaseContext, suffix = "repo", extra: Parameters<typeof gitRepository>[2] = {}) =>
  gitRepository(ctx.ns, ctx.n(suffix), extra);
const annotated = (o: KubeObject, annotations: Record<string, string>): KubeObject => ({
  ...o,
  metadata: { ...o.metadata, annotations },
});
const named = (ctx: CaseContext, suffix = "repo") => [{ kind: "GitRepository", name: ctx.n(suffix) }];
const spec =
  (type: string, extra: (ctx: CaseContext) => Record<string, unknown> = () => ({})) =>
  (ctx: CaseContext) => ({ type, resources: named(ctx), ...extra(ctx) });
/** Labels of a case's wildcard targets: upstream's plus the case, so cases sharing a namespace stay apart. */
const labels = (ctx: CaseContext, label: string) => ({ label, case: ctx.name });
const testResource = (ctx: CaseContext) => [repo(ctx, "test-resource")];
const filterOn = (type: string, condition: string) => (ctx: CaseContext) => ({
  type,
  resources: named(ctx, "test-resource"),
  resourceFilter: `res.metadata.name == '${ctx.n("test-resource")}' && ${condition}`,
});

// ---- the 37 upstream handler cases

const upstream: DiffCase[] = [
  { name: "#1 generic receiver", slug: "u01", spec: spec("generic"), requests: [{ body: "null" }] },
  {
    name: "#2 gitlab receiver",
    slug: "u02",
    spec: spec("gitlab"),
    requests: [{ headers: { "X-Gitlab-Token": TOKEN }, body: "null" }],
  },
  {
    name: "#3 cdevents receiver",
    slug: "u03",
    spec: spec("cdevents", () => ({ events: ["cd.change.merged.v1"] })),
    requests: [{ headers: { "Ce-Type": "cd.change.merged.v1" }, body: CDEVENT }],
  },
  {
    name: "#4 cdevents wrong event type",
    slug: "u04",
    spec: spec("cdevents", () => ({ events: ["cd.environment.modified.v1"] })),
    requests: [{ headers: { "Ce-Type": "cd.change.merged.v1" }, body: CDEVENT }],
  },
  {
    name: "#5 cdevents, no events",
    slug: "u05",
    spec: spec("cdevents"),
    requests: [{ headers: { "Ce-Type": "cd.change.merged.v1" }, body: CDEVENT }],
  },
  {
    name: "#6 github receiver",
    slug: "u06",
    spec: spec("github"),
    requests: [{ headers: JSON_CT, body: ACTION_PUSH, sign: [GITHUB_256] }],
  },
  {
    name: "#7 generic-hmac receiver",
    slug: "u07",
    spec: spec("generic-hmac"),
    requests: [
      { headers: JSON_CT, body: "null", sign: [{ header: "X-Signature", algorithm: "sha256", prefix: "sha256=" }] },
    ],
  },
  {
    name: "#8 bitbucket receiver",
    slug: "u08",
    spec: spec("bitbucket", () => ({ events: ["push"] })),
    requests: [{ headers: { ...JSON_CT, "X-Event-Key": "push" }, body: "null", sign: [GITHUB_256] }],
  },
  {
    name: "#9 quay receiver",
    slug: "u09",
    spec: spec("quay"),
    requests: [{ body: goJson({ docker_url: "docker.io", updated_tags: ["v0.0.1"] }) }],
  },
  {
    name: "#10 harbor receiver",
    slug: "u10",
    spec: spec("harbor"),
    requests: [{ headers: { Authorization: TOKEN }, body: "null" }],
  },
  {
    name: "#11 missing Secret (deleted once Ready)",
    slug: "u11",
    spec: spec("generic"),
    afterReady: { deleteSecret: true },
    requests: [{ body: "null" }],
  },
  { name: "#12 no receiver", slug: "u12", spec: null, requests: [{ body: "null" }] },
  {
    name: "#13 not Ready (a broken filter once Ready)",
    slug: "u13",
    spec: spec("generic"),
    afterReady: { spec: (ctx) => ({ ...spec("generic")(ctx), resourceFilter: "res.metadata.name ==" }) },
    requests: [{ body: "null" }],
  },
  {
    name: "#14 suspended (once Ready)",
    slug: "u14",
    spec: spec("generic"),
    afterReady: { spec: (ctx) => ({ ...spec("generic")(ctx), suspend: true }) },
    requests: [{ body: "null" }],
  },
  {
    name: "#15 missing apiVersion in resource",
    slug: "u15",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "Kustomization", name: "*", matchLabels: labels(ctx, "match") }],
    }),
    targets: () => [],
    requests: [{ body: "null" }],
  },
  {
    name: "#16 resource by name not found",
    slug: "u16",
    spec: (ctx) => ({ type: "generic", resources: named(ctx, "does-not-exists") }),
    targets: () => [],
    requests: [{ body: "null" }],
  },
  {
    name: "#17 annotating resources by label match",
    slug: "u17",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "GitRepository", name: "*", matchLabels: labels(ctx, "match") }],
    }),
    targets: (ctx) => [
      repo(ctx, "dummy-resource-2", { labels: labels(ctx, "does-not-match") }),
      repo(ctx, "dummy-resource", { labels: labels(ctx, "match") }),
    ],
    requests: [{ body: "null" }],
  },
  {
    name: "#18 annotating resource by name",
    slug: "u18",
    spec: (ctx) => ({ type: "generic", resources: named(ctx, "dummy-resource") }),
    targets: (ctx) => [repo(ctx, "dummy-resource-2"), repo(ctx, "dummy-resource")],
    requests: [{ body: "null" }],
  },
  {
    name: "#19 wildcard name without labels",
    slug: "u19",
    spec: () => ({ type: "generic", resources: [{ kind: "GitRepository", name: "*" }] }),
    requests: [{ body: "null" }],
  },
  {
    name: "#20 no cross-namespace refs",
    slug: "u20",
    group: "no-cross-namespace-refs",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "GitRepository", name: ctx.n("some-resource"), namespace: ctx.other }],
    }),
    targets: (ctx) => [gitRepository(ctx.other, ctx.n("some-resource"))],
    requests: [{ body: "null" }],
  },
  {
    name: "#21 large payload",
    slug: "u21",
    spec: (ctx) => ({ type: "generic", resources: named(ctx, "some-resource") }),
    requests: [{ body: LARGE }],
  },
  {
    name: "#22 matchLabels ignored when name is not *",
    slug: "u22",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "GitRepository", name: ctx.n("dummy-resource"), matchLabels: { label: "match" } }],
    }),
    targets: (ctx) => [repo(ctx, "dummy-resource-2", { labels: { label: "match" } }), repo(ctx, "dummy-resource")],
    requests: [{ body: "null" }],
  },
  {
    name: "#23 CEL filter with labels",
    slug: "u23",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "GitRepository", name: "*", matchLabels: labels(ctx, "production") }],
      resourceFilter: IMAGE_FILTER,
    }),
    targets: (ctx) => [
      annotated(repo(ctx, "test-resource-1", { labels: labels(ctx, "production") }), { "update-image": "hello-world" }),
      annotated(gitRepository(ctx.other, ctx.n("test-resource-2"), { labels: labels(ctx, "production") }), {
        "update-image": "other-image",
      }),
      repo(ctx, "test-resource-3", { labels: labels(ctx, "production") }),
    ],
    requests: [{ headers: JSON_UTF8_CT, body: GCR_IMAGE }],
  },
  {
    name: "#24 CEL filter skips a named resource",
    slug: "u24",
    spec: (ctx) => ({ type: "generic", resources: named(ctx, "test-resource"), resourceFilter: IMAGE_FILTER }),
    targets: (ctx) => [annotated(repo(ctx, "test-resource"), { "update-image": "not-hello-world" })],
    requests: [{ headers: JSON_UTF8_CT, body: GCR_IMAGE }],
  },
  {
    name: "#25 CEL github",
    slug: "u25",
    spec: filterOn("github", "req.action == 'push'"),
    targets: testResource,
    requests: [{ headers: JSON_CT, body: ACTION_PUSH, sign: [GITHUB_256] }],
  },
  {
    name: "#26 CEL gitlab",
    slug: "u26",
    spec: filterOn("gitlab", "req.action == 'push'"),
    targets: testResource,
    requests: [{ headers: { ...JSON_CT, "X-Gitlab-Token": TOKEN }, body: ACTION_PUSH }],
  },
  {
    name: "#27 CEL cdevents",
    slug: "u27",
    spec: (ctx) => ({
      ...filterOn("cdevents", "req.context.gitRepository == 'adamkenihan/notification-controller'")(ctx),
      events: ["cd.change.merged.v1"],
    }),
    targets: testResource,
    requests: [{ headers: { ...JSON_UTF8_CT, "Ce-Type": "cd.change.merged.v1" }, body: CDEVENT }],
  },
  {
    name: "#28 CEL bitbucket",
    slug: "u28",
    spec: filterOn("bitbucket", "req.action == 'push'"),
    targets: testResource,
    requests: [{ headers: { ...JSON_CT, "X-Event-Key": "push" }, body: ACTION_PUSH, sign: [GITHUB_256] }],
  },
  {
    name: "#29 CEL quay",
    slug: "u29",
    spec: filterOn("quay", "req.docker_url == 'docker.io'"),
    targets: testResource,
    requests: [{ headers: JSON_CT, body: goJson({ docker_url: "docker.io", updated_tags: ["v0.0.1"] }) }],
  },
  {
    name: "#30 CEL harbor",
    slug: "u30",
    spec: filterOn("harbor", "req.events[0].full_name == 'prj/repo1'"),
    targets: testResource,
    requests: [
      {
        headers: { ...JSON_CT, Authorization: TOKEN },
        body: goJson({
          event_type: "pushImage",
          events: [
            {
              project: "prj",
              repo_name: "repo1",
              tag: "latest",
              full_name: "prj/repo1",
              trigger_time: 158322233213,
              image_id: "9e2c9d5f44efbb6ee83aecd17a120c513047d289d142ec5738c9f02f9b24ad07",
              project_type: "Private",
            },
          ],
        }),
      },
    ],
  },
  {
    name: "#31 CEL dockerhub",
    slug: "u31",
    spec: filterOn(
      "dockerhub",
      "req.push_data.tag.split('/').last().value().split(':').first().value() == 'test-repo'",
    ),
    targets: testResource,
    requests: [
      {
        headers: JSON_CT,
        body: goJson({ push_data: { tag: "test-org/test-repo:v1.0" }, repository: { repo_url: "docker.io" } }),
      },
    ],
  },
  {
    // Upstream stubs Google's ID-token check; a real one refuses a bearer that is not a Google-signed token.
    name: "#32 CEL gcr (a bearer that is not a Google ID token)",
    slug: "u32",
    secret: GCR_SECRET,
    spec: filterOn("gcr", "req.tag.split('/').last().value().split(\":\").first().value() == 'app1'"),
    targets: testResource,
    requests: [{ headers: { ...JSON_CT, Authorization: `Bearer ${TOKEN}` }, body: GCR_PUBSUB }],
  },
  {
    name: "#33 gcr Secret without email",
    slug: "u33",
    secret: { token: TOKEN, audience: GCR_SECRET.audience },
    spec: (ctx) => ({ type: "gcr", resources: named(ctx, "test-resource") }),
    targets: testResource,
    requests: [{ headers: { ...JSON_CT, Authorization: `Bearer ${TOKEN}` }, body: GCR_PUBSUB }],
  },
  {
    name: "#34 gcr Secret without audience",
    slug: "u34",
    secret: { token: TOKEN, email: GCR_SECRET.email },
    spec: (ctx) => ({ type: "gcr", resources: named(ctx, "test-resource") }),
    targets: testResource,
    requests: [{ headers: { ...JSON_CT, Authorization: `Bearer ${TOKEN}` }, body: GCR_PUBSUB }],
  },
  {
    name: "#35 CEL nexus",
    slug: "u35",
    spec: filterOn("nexus", "req.repositoryName == 'npm-proxy'"),
    targets: testResource,
    requests: [
      {
        headers: JSON_CT,
        body: NEXUS_BODY,
        sign: [{ header: "X-Nexus-Webhook-Signature", algorithm: "sha1", prefix: "" }],
      },
    ],
  },
  {
    name: "#36 CEL acr",
    slug: "u36",
    spec: filterOn("acr", "req.target.repository == 'hello-world'"),
    targets: testResource,
    requests: [
      { headers: JSON_CT, body: goJson({ action: "push", target: { repository: "hello-world", tag: "v1" } }) },
    ],
  },
  {
    name: "#37 CEL evaluation error",
    slug: "u37",
    spec: (ctx) => ({
      type: "generic",
      resources: [{ kind: "GitRepository", name: "*", matchLabels: labels(ctx, "production") }],
      resourceFilter: `res.name == "${ctx.n("test-resource-1")}"`,
    }),
    targets: (ctx) => [repo(ctx, "test-resource-1", { labels: labels(ctx, "production") })],
    requests: [{ headers: JSON_UTF8_CT, body: "null" }],
  },
];

// ---- GitHub's real payloads, with GitHub's headers (both signatures, as GitHub sends them)

const githubSpec =
  (events: string[] | undefined, kind = "GitRepository") =>
  (ctx: CaseContext) => ({
    type: "github",
    ...(events ? { events } : {}),
    resources: [{ kind, name: ctx.n(kind === "GitRepository" ? "repo" : "image") }],
  });
const image = (ctx: CaseContext) => [imageRepository(ctx.ns, ctx.n("image"))];

const octokit: DiffCase[] = [
  { name: "octokit push", slug: "gh-push", spec: githubSpec(["push"]), requests: [github("push")] },
  {
    name: "octokit push, form-encoded",
    slug: "gh-push-form",
    spec: githubSpec(["push"]),
    requests: [
      {
        headers: githubHeaders("push", "application/x-www-form-urlencoded"),
        body: `payload=${encodeURIComponent(githubExample("push"))}`,
        sign: [GITHUB_1, GITHUB_256],
      },
    ],
  },
  { name: "octokit ping to events [push]", slug: "gh-ping", spec: githubSpec(["push"]), requests: [github("ping")] },
  { name: "octokit ping, no events", slug: "gh-ping-all", spec: githubSpec(undefined), requests: [github("ping")] },
  {
    name: "octokit package",
    slug: "gh-package",
    spec: githubSpec(["package"], "ImageRepository"),
    targets: image,
    requests: [github("package")],
  },
  {
    name: "octokit registry_package to events [package]",
    slug: "gh-registry-package",
    spec: githubSpec(["package"], "ImageRepository"),
    targets: image,
    requests: [github("registry_package")],
  },
  {
    name: "octokit registry_package to events [registry_package]",
    slug: "gh-registry-package-all",
    spec: githubSpec(["registry_package"], "ImageRepository"),
    targets: image,
    requests: [github("registry_package")],
  },
  {
    name: "octokit push, X-Hub-Signature (sha1) only",
    slug: "gh-sha1",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), sign: [GITHUB_1] }],
  },
  {
    name: "octokit push, sha512 signature",
    slug: "gh-sha512",
    spec: githubSpec(["push"]),
    requests: [
      { ...github("push"), sign: [{ header: "X-Hub-Signature-256", algorithm: "sha512", prefix: "sha512=" }] },
    ],
  },
  {
    // fluxhook's organisation routing (README, "One webhook for an organisation"): an opt-in
    // annotation Flux does not know, so Flux annotates every target.
    name: "octokit push to a Receiver routed by repository",
    slug: "gh-route-by",
    annotations: { "fluxhook.io/route-by": "repository" },
    spec: (ctx) => ({
      type: "github",
      events: ["push"],
      resources: [{ kind: "GitRepository", name: "*", matchLabels: labels(ctx, "routed") }],
    }),
    targets: (ctx) =>
      [
        // push example 4 is a push to Codertocat/Hello-World's master.
        gitRepository(ctx.ns, ctx.n("follows"), {
          url: "https://github.com/Codertocat/Hello-World",
          labels: labels(ctx, "routed"),
        }),
        gitRepository(ctx.ns, ctx.n("other"), {
          url: "https://github.com/example/other",
          labels: labels(ctx, "routed"),
        }),
      ].map((o) => ({ ...o, spec: { ...o.spec, ref: { branch: "master" } } })),
    requests: [github("push", 4)],
  },
  {
    name: "octokit push, event in another case",
    slug: "gh-push-case",
    spec: githubSpec(["PUSH"]),
    requests: [github("push")],
  },
];

// ---- refusals the spec lists (beside upstream's #4, #11, #12, #13, #14, #21)

const refusals: DiffCase[] = [
  {
    name: "refusal: bad signature",
    slug: "r-bad-signature",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), sign: [{ ...GITHUB_256, token: "not-the-token" }] }],
  },
  {
    name: "refusal: no signature",
    slug: "r-no-signature",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), sign: [] }],
  },
  {
    name: "refusal: missing Secret, watched (deleted once Ready)",
    slug: "r-watched-secret",
    secretLabels: { "reconcile.fluxcd.io/watch": "Enabled" },
    spec: githubSpec(["push"]),
    afterReady: { deleteSecret: true },
    requests: [github("push")],
  },
  {
    name: "refusal: Secret without a token key",
    slug: "r-no-token-key",
    secret: { password: TOKEN },
    spec: githubSpec(["push"]),
    requests: [github("push")],
  },
  {
    name: "refusal: Secret never made",
    slug: "r-no-secret",
    secret: "none",
    spec: githubSpec(["push"]),
    requests: [github("push")],
  },
  {
    name: "refusal: empty token",
    slug: "r-empty-token",
    secret: { token: "" },
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), sign: [] }],
  },
  {
    // fluxhook's MAX_TOKEN_BYTES (4,096): the token keys every signature check.
    name: "refusal: token longer than 4,096 bytes",
    slug: "r-long-token",
    secret: { token: "t".repeat(4097) },
    spec: githubSpec(["push"]),
    requests: [github("push")],
  },
  {
    name: "refusal: created suspended",
    slug: "r-suspended-new",
    spec: (ctx) => ({ ...githubSpec(["push"])(ctx), suspend: true }),
    requests: [github("push")],
  },
  {
    name: "refusal: invalid filter from the start",
    slug: "r-bad-filter-new",
    spec: (ctx) => ({ ...githubSpec(["push"])(ctx), resourceFilter: "res.metadata.name ==" }),
    requests: [github("push")],
  },
  {
    name: "refusal: oversized body to an unknown path",
    slug: "r-oversized-unknown",
    spec: null,
    requests: [{ body: LARGE }],
  },
  {
    name: "refusal: GET",
    slug: "r-get",
    spec: githubSpec(["push"]),
    requests: [{ method: "GET", headers: { "X-GitHub-Event": "push" } }],
  },
  {
    name: "refusal: query string on the path",
    slug: "r-query",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), path: (_ctx, p) => `${p}?ref=main` }],
  },
  {
    name: "refusal: trailing slash",
    slug: "r-slash",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), path: (_ctx, p) => `${p}/` }],
  },
  {
    name: "refusal: digest in upper case",
    slug: "r-upper",
    spec: githubSpec(["push"]),
    requests: [{ ...github("push"), path: (_ctx, p) => `/hook/${p.slice(6).toUpperCase()}` }],
  },
  {
    name: "refusal: /hook without a digest",
    slug: "r-bare-hook",
    spec: null,
    requests: [{ body: "null", path: () => "/hook/" }],
  },
];

// ---- generic-oidc, against a local issuer (Flux's receiver_oidc_test.go, on a real controller)

/** GitHub Actions' claims, as the action's generic-oidc mode sends them. */
const CLAIMS = { repository: "my-org/my-repo", ref: "refs/heads/main", environment: "production" };
const oidcSpec =
  (provider: Record<string, unknown> = {}) =>
  (ctx: CaseContext) => ({
    type: "generic-oidc",
    oidcProviders: [
      {
        issuerURL: ctx.issuer.url,
        audience: "flux",
        validations: [
          { expression: "claims.repository == 'my-org/my-repo'", message: "wrong repo" },
          { expression: "claims.environment == 'production'", message: "wrong environment" },
        ],
        ...provider,
      },
    ],
    resources: named(ctx),
  });
const oidc = (bearer: (issuer: TokenIssuer) => Promise<string>): DiffRequest => ({
  headers: JSON_CT,
  body: "{}",
  bearer,
});

const genericOidc: DiffCase[] = [
  {
    name: "generic-oidc: valid token",
    slug: "o-valid",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc((i) => i.sign({ ...CLAIMS, iss: i.url, aud: "flux", sub: "repo:my-org/my-repo" }))],
  },
  {
    name: "generic-oidc: default audience and a variable",
    slug: "o-vars",
    secret: "none",
    pathToken: "",
    spec: oidcSpec({
      audience: undefined,
      variables: [{ name: "allowed", expression: "['my-org/my-repo']" }],
      validations: [{ expression: "claims.repository in vars.allowed", message: "repo not allowed" }],
    }),
    requests: [oidc((i) => i.sign({ ...CLAIMS, iss: i.url, aud: "notification-controller", sub: "x" }))],
  },
  {
    name: "generic-oidc: both validations fail",
    slug: "o-invalid",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc((i) => i.sign({ repository: "evil/repo", environment: "dev", iss: i.url, aud: "flux", sub: "x" }))],
  },
  {
    name: "generic-oidc: wrong audience",
    slug: "o-audience",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc((i) => i.sign({ ...CLAIMS, iss: i.url, aud: "someone-else", sub: "x" }))],
  },
  {
    name: "generic-oidc: expired token",
    slug: "o-expired",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc((i) => i.sign({ ...CLAIMS, iss: i.url, aud: "flux", sub: "x" }, { expiresIn: "-1m" }))],
  },
  {
    name: "generic-oidc: unknown issuer",
    slug: "o-issuer",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc((i) => i.sign({ ...CLAIMS, iss: "https://token.actions.githubusercontent.com", aud: "flux" }))],
  },
  {
    name: "generic-oidc: not a JWT",
    slug: "o-not-jwt",
    secret: "none",
    pathToken: "",
    spec: oidcSpec(),
    requests: [oidc(async () => "not-a-jwt")],
  },
];

export const CASES: readonly DiffCase[] = [...upstream, ...octokit, ...refusals, ...genericOidc];
