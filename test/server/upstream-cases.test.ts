/**
 * The upstream handler cases (notification-controller v1.9.3 internal/server/receiver_handler_test.go
 * Test_handlePayload), all 37, ported as one table. Each case runs in its own namespace of one
 * stack: a Secret with token "token", a Receiver, its targets, then one real HTTP delivery.
 *
 * Upstream asserts the status code and the number of annotated objects; so does this table, and
 * it also checks fluxhook's reason. The upstream harness gives every receiver the path "/hook/";
 * here each Receiver gets its real path from fluxhook's own status. Upstream stubs the GCR token
 * check (any bearer passes); here the GCR cases carry real ID tokens, signed by a local key whose
 * JWKS fluxhook is pointed at with --gcr-jwks-url.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, waitFor, type Stack } from "../support/stack";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { webhookPath } from "../../shared";
import { GIT, RECEIVER } from "../support/kinds";
import { nexusSignature, signature } from "../support/signer";

const PUSH = '{"action":"push"}';
const SHA256_PUSH = "sha256=83eee066cf716dd10bc327e341a581ae657bf26d8815c9334434f470c12d3079";
const SHA256_NULL = "sha256=f1a29da1cd8d6993f4462ecc1de5317dd8955e14b9c39c2ab56d6e042e58b163";
const JSON_CT = { "Content-Type": "application/json" };
const JSON_UTF8 = { "Content-Type": "application/json; charset=utf-8" };

/** The CDEvent of upstream cases #3-5 and #27 (unknown context fields included, no subject content). */
const CDEVENT = JSON.stringify({
  context: {
    gitRepository: "adamkenihan/notification-controller",
    gitRevision: "5555",
    id: "5555",
    source: "github",
    timestamp: "2023-12-07T14:51:29.908479495Z",
    type: "dev.cdevents.change.merged.0.2.0",
    version: "0.3.0",
  },
  subject: { id: "5555", type: "change" },
});
/** The GCR image event of #23/#24 (as a generic body) and the payload of #32-34. */
const IMAGE_EVENT = JSON.stringify({
  action: "INSERT",
  digest: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5...",
  tag: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
});
const GCR_PUSH = JSON.stringify({
  message: {
    data: Buffer.from(
      JSON.stringify({
        action: "INSERT",
        digest: "us-east1-docker.pkg.dev/my-project/my-repo/app1@sha256:6ec128e26cd5...",
        tag: "us-east1-docker.pkg.dev/my-project/my-repo/app1:v1.2.3",
      }),
    ).toString("base64"),
  },
});
const GCR_EMAIL = "test@example.iam.gserviceaccount.com";
const GCR_AUDIENCE = "https://example.com";
/** Upstream's Nexus body: Go's json.Marshal of the map (sorted keys, no spaces). */
const NEXUS_BODY =
  '{"action":"CREATED","asset":{"assetId":"bnBtLXByb3h5OjMxYzk1MGM4ZWVlYWI3ODMzNjMwODE3N2FlOWM0NDFj","format":"npm","id":"31c950c8eeeab78336308177ae9c441c","name":"concrete"},"initiator":"admin/127.0.0.1","nodeId":"52905B51-085CCABB-CEBBEAAD-16795588-FC927D93","repositoryName":"npm-proxy","timestamp":"2016-11-10T23:57:49.664+0000"}';
const NEXUS_SHA1 = "aaeb4256c9d85d31e85142a2bb8a04e93ff2a307";
const HARBOR_BODY = JSON.stringify({
  event_type: "pushImage",
  events: [
    {
      image_id: "9e2c9d5f44efbb6ee83aecd17a120c513047d289d142ec5738c9f02f9b24ad07",
      full_name: "prj/repo1",
      project: "prj",
      project_type: "Private",
      repo_name: "repo1",
      tag: "latest",
      trigger_time: 158322233213,
    },
  ],
});
const IMAGE_FILTER = `has(res.metadata.annotations) && req.tag.split('/').last().value().split(":").first().value() == res.metadata.annotations['update-image']`;

interface Target {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Suffix of the case's namespace: the target lives in another namespace. */
  otherNamespace?: boolean;
}

interface Case {
  n: number;
  name: string;
  /** Receiver spec; `resources` default to GitRepository "app" in the case's namespace. */
  spec: Record<string, unknown>;
  secret?: Record<string, string> | null;
  targets?: Target[];
  /** A function when the headers need something made at run time (a signed ID token). */
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: string;
  /** "ready" waits for Ready; "path" computes the path without waiting (not-Ready receivers). */
  await?: "ready" | "path" | "none";
  /** Created with status.webhookPath already set, as upstream seeds it (a Receiver that was Ready). */
  seededPath?: true;
  status: number;
  annotated: number;
  reason?: string;
}

const app = [{ kind: "GitRepository", name: "app" }];
const testResource = [{ kind: "GitRepository", name: "test-resource" }];
const production = [{ kind: "GitRepository", name: "*", matchLabels: { label: "production" } }];
/** A GCR receiver: Secret keys, a real ID token, and the Pub/Sub body. */
const gcr = (secret: Record<string, string>, filter?: string) => ({
  spec: { type: "gcr", resources: testResource, ...(filter ? { resourceFilter: filter } : {}) },
  secret: { token: "token", ...secret },
  targets: [{ name: "test-resource" }],
  headers: () => ({ ...JSON_CT, Authorization: `Bearer ${gcrToken}` }),
  body: GCR_PUSH,
});
const celOn = (type: string, filter: string, extra: Record<string, unknown> = {}) => ({
  spec: {
    type,
    resources: testResource,
    resourceFilter: `res.metadata.name == 'test-resource' && ${filter}`,
    ...extra,
  },
  targets: [{ name: "test-resource" }],
});

const CASES: Case[] = [
  {
    n: 1,
    name: "generic receiver",
    spec: { type: "generic", resources: app },
    body: "null",
    status: 200,
    annotated: 1,
  },
  {
    n: 2,
    name: "gitlab receiver",
    spec: { type: "gitlab", resources: app },
    headers: { "X-Gitlab-Token": "token" },
    status: 200,
    annotated: 1,
  },
  {
    n: 3,
    name: "cdevents receiver",
    spec: { type: "cdevents", events: ["cd.change.merged.v1"], resources: app },
    headers: { "Ce-Type": "cd.change.merged.v1" },
    body: CDEVENT,
    status: 200,
    annotated: 1,
  },
  {
    n: 4,
    name: "cdevents receiver wrong event type",
    spec: { type: "cdevents", events: ["cd.environment.modified.v1"], resources: app },
    headers: { "Ce-Type": "cd.change.merged.v1" },
    body: CDEVENT,
    status: 400,
    annotated: 0,
    reason: 'event "cd.change.merged.v1" is not accepted by this receiver',
  },
  {
    n: 5,
    name: "cdevents receiver no event type specified",
    spec: { type: "cdevents", resources: app },
    headers: { "Ce-Type": "cd.change.merged.v1" },
    body: CDEVENT,
    status: 200,
    annotated: 1,
  },
  {
    n: 6,
    name: "github receiver",
    spec: { type: "github", resources: app },
    headers: { ...JSON_CT, "X-Hub-Signature-256": SHA256_PUSH },
    body: PUSH,
    status: 200,
    annotated: 1,
  },
  {
    n: 7,
    name: "generic hmac receiver",
    spec: { type: "generic-hmac", resources: app },
    headers: { "X-Signature": SHA256_NULL },
    body: "null",
    status: 200,
    annotated: 1,
  },
  {
    n: 8,
    name: "bitbucket receiver",
    spec: { type: "bitbucket", events: ["push"], resources: app },
    headers: { ...JSON_CT, "X-Event-Key": "push", "X-Hub-Signature-256": SHA256_NULL },
    body: "null",
    status: 200,
    annotated: 1,
  },
  {
    n: 9,
    name: "quay receiver",
    spec: { type: "quay", resources: app },
    body: '{"docker_url":"docker.io","updated_tags":["v0.0.1"]}',
    status: 200,
    annotated: 1,
  },
  {
    n: 10,
    name: "harbor receiver",
    spec: { type: "harbor", resources: app },
    headers: { Authorization: "token" },
    status: 200,
    annotated: 1,
  },
  // Upstream answers 400: its index still held the path while the handler could not read the
  // Secret. fluxhook's index follows the Secret, so without it there is no path at all: 404, and
  // the status says TokenNotFound (checked in the controller tests).
  {
    n: 11,
    name: "missing secret",
    spec: { type: "generic", resources: app },
    secret: null,
    await: "path",
    status: 404,
    annotated: 0,
  },
  // No Receiver at all.
  { n: 12, name: "no receiver", spec: {}, await: "none", status: 404, annotated: 0 },
  {
    n: 13,
    name: "not ready",
    spec: { resources: app },
    await: "path",
    seededPath: true,
    status: 503,
    annotated: 0,
    reason: "receiver is not ready: spec.type is required",
  },
  {
    n: 14,
    name: "suspended",
    spec: { type: "generic", suspend: true, resources: app },
    await: "path",
    seededPath: true,
    status: 503,
    annotated: 0,
    reason: "receiver is suspended",
  },
  {
    n: 15,
    name: "missing apiVersion",
    spec: { type: "generic", resources: [{ kind: "Receiver", name: "dummy" }] },
    status: 500,
    annotated: 0,
    reason: "1 target failed; 0 of 1 target annotated",
  },
  {
    n: 16,
    name: "resource by name not found",
    spec: { type: "generic", resources: [{ kind: "GitRepository", name: "does-not-exists" }] },
    status: 500,
    annotated: 0,
  },
  {
    n: 17,
    name: "label match",
    spec: { type: "generic", resources: [{ kind: "GitRepository", name: "*", matchLabels: { label: "match" } }] },
    targets: [
      { name: "matching", labels: { label: "match" } },
      { name: "other", labels: { label: "does-not-match" } },
    ],
    status: 200,
    annotated: 1,
  },
  { n: 18, name: "by name", spec: { type: "generic", resources: app }, status: 200, annotated: 1 },
  {
    n: 19,
    name: "wildcard without labels",
    spec: { type: "generic", resources: [{ kind: "GitRepository", name: "*" }] },
    status: 500,
    annotated: 0,
  },
  {
    n: 21,
    name: "large payload",
    spec: { type: "generic", resources: app },
    body: "a".repeat(3 * 1024 * 1024 + 1),
    status: 413,
    annotated: 0,
  },
  {
    n: 22,
    name: "matchLabels ignored when name is not *",
    spec: {
      type: "generic",
      resources: [{ kind: "GitRepository", name: "app", matchLabels: { label: "does-not-match" } }],
    },
    status: 200,
    annotated: 1,
  },
  {
    n: 23,
    name: "resources filtered with CEL expressions",
    spec: { type: "generic", resources: production, resourceFilter: IMAGE_FILTER },
    targets: [
      { name: "test-resource-1", labels: { label: "production" }, annotations: { "update-image": "hello-world" } },
      {
        name: "test-resource-2",
        labels: { label: "production" },
        annotations: { "update-image": "other-image" },
        otherNamespace: true,
      },
      { name: "test-resource-3", labels: { label: "production" } },
    ],
    headers: JSON_UTF8,
    body: IMAGE_EVENT,
    status: 200,
    annotated: 1,
  },
  {
    n: 24,
    name: "filtering out a single named resource with CEL",
    spec: { type: "generic", resources: testResource, resourceFilter: IMAGE_FILTER },
    targets: [{ name: "test-resource", annotations: { "update-image": "not-hello-world" } }],
    headers: JSON_UTF8,
    body: IMAGE_EVENT,
    status: 200,
    annotated: 0,
    reason: "0 of 1 target annotated",
  },
  {
    n: 25,
    name: "CEL filtering a GitHub receiver",
    ...celOn("github", "req.action == 'push'"),
    headers: { ...JSON_CT, "X-Hub-Signature-256": SHA256_PUSH },
    body: PUSH,
    status: 200,
    annotated: 1,
  },
  {
    n: 26,
    name: "CEL filtering a GitLab receiver",
    ...celOn("gitlab", "req.action == 'push'"),
    headers: { ...JSON_CT, "X-Gitlab-Token": "token" },
    body: PUSH,
    status: 200,
    annotated: 1,
  },
  {
    n: 27,
    name: "CEL filtering a cdevents receiver",
    ...celOn("cdevents", "req.context.gitRepository == 'adamkenihan/notification-controller'", {
      events: ["cd.change.merged.v1"],
    }),
    headers: { ...JSON_UTF8, "Ce-Type": "cd.change.merged.v1" },
    body: CDEVENT,
    status: 200,
    annotated: 1,
  },
  {
    n: 28,
    name: "CEL filtering a Bitbucket receiver",
    ...celOn("bitbucket", "req.action == 'push'"),
    headers: { ...JSON_CT, "X-Event-Key": "push", "X-Hub-Signature-256": SHA256_PUSH },
    body: PUSH,
    status: 200,
    annotated: 1,
  },
  {
    n: 29,
    name: "CEL filtering a quay receiver",
    ...celOn("quay", "req.docker_url == 'docker.io'"),
    headers: JSON_CT,
    body: '{"docker_url":"docker.io","updated_tags":["v0.0.1"]}',
    status: 200,
    annotated: 1,
  },
  {
    n: 30,
    name: "CEL filtering a Harbor receiver",
    ...celOn("harbor", "req.events[0].full_name == 'prj/repo1'"),
    headers: { ...JSON_CT, Authorization: "token" },
    body: HARBOR_BODY,
    status: 200,
    annotated: 1,
  },
  {
    n: 31,
    name: "CEL filtering a Docker hub receiver",
    ...celOn("dockerhub", "req.push_data.tag.split('/').last().value().split(':').first().value() == 'test-repo'"),
    headers: JSON_CT,
    body: '{"push_data":{"tag":"test-org/test-repo:v1.0"},"repository":{"repo_url":"docker.io"}}',
    status: 200,
    annotated: 1,
  },
  {
    n: 32,
    name: "CEL filtering a GCR receiver",
    ...gcr(
      { email: GCR_EMAIL, audience: GCR_AUDIENCE },
      `res.metadata.name == 'test-resource' && req.tag.split('/').last().value().split(":").first().value() == 'app1'`,
    ),
    status: 200,
    annotated: 1,
  },
  {
    n: 33,
    name: "GCR receiver rejects secret missing 'email'",
    ...gcr({ audience: GCR_AUDIENCE }),
    status: 400,
    annotated: 0,
    reason: "invalid secret data: required field 'email' for GCR receiver",
  },
  {
    n: 34,
    name: "GCR receiver rejects secret missing 'audience'",
    ...gcr({ email: GCR_EMAIL }),
    status: 400,
    annotated: 0,
    reason: "invalid secret data: required field 'audience' for GCR receiver",
  },
  {
    n: 35,
    name: "CEL filtering a Nexus receiver",
    ...celOn("nexus", "req.repositoryName == 'npm-proxy'"),
    headers: { ...JSON_CT, "X-Nexus-Webhook-Signature": NEXUS_SHA1 },
    body: NEXUS_BODY,
    status: 200,
    annotated: 1,
  },
  {
    n: 36,
    name: "CEL filtering an ACR receiver",
    ...celOn("acr", "req.target.repository == 'hello-world'"),
    headers: JSON_CT,
    body: '{"action":"push","target":{"repository":"hello-world","tag":"v1"}}',
    status: 200,
    annotated: 1,
  },
  {
    n: 37,
    name: "handling errors when parsing the CEL expression results",
    spec: { type: "generic", resources: production, resourceFilter: `res.name == "test-resource-1"` },
    targets: [
      { name: "test-resource-1", labels: { label: "production" } },
      { name: "test-resource-2", labels: { label: "production" } },
    ],
    headers: JSON_UTF8,
    body: "{}",
    status: 500,
    annotated: 0,
    reason: "2 targets failed; 0 of 2 targets annotated",
  },
];

let stack: Stack;
let google: TokenIssuer;
let gcrToken: string;
beforeAll(async () => {
  google = await startTokenIssuer();
  gcrToken = await google.sign({
    iss: "https://accounts.google.com",
    aud: GCR_AUDIENCE,
    email: GCR_EMAIL,
    email_verified: true,
    sub: "1234",
  });
  stack = await startStack({ gcrJwksUrl: google.jwksUrl });
});
afterAll(async () => {
  await stack.stop();
  await google.stop();
});

function countAnnotated(namespace: string): number {
  return stack.api.store
    .list(GIT, "GitRepository", namespace)
    .filter((o: any) => o.metadata?.annotations?.["reconcile.fluxcd.io/requestedAt"]).length;
}

describe("upstream Test_handlePayload cases", () => {
  test.each(CASES.map((c) => [`#${c.n} ${c.name}`, c] as const))("%s", async (_title, c) => {
    const ns = `case-${c.n}`;
    const targets = c.targets ?? [{ name: "app" }];
    for (const t of targets)
      stack.target(GIT, "GitRepository", t.otherNamespace ? `${ns}-other` : ns, t.name, t.labels, t.annotations);
    if (c.secret !== null) stack.secret(ns, "token", c.secret ?? { token: "token" });
    let path = webhookPath("token", "receiver", ns);
    const spec = { secretRef: { name: "token" }, ...c.spec };
    if (c.seededPath)
      stack.api.store.create({
        apiVersion: RECEIVER,
        kind: "Receiver",
        metadata: { name: "receiver", namespace: ns },
        spec,
        status: { webhookPath: path },
      });
    else if (c.await !== "none") stack.receiver(ns, "receiver", spec);

    if ((c.await ?? "ready") === "ready") {
      path = await stack.readyPath(ns, "receiver");
    } else if (c.await === "path") {
      // Not Ready by design: wait until fluxhook has decided, which shows either in the status
      // (TokenNotFound, ValidationFailed) or, for a suspended receiver, only in the index.
      await waitFor(
        `a decision on ${ns}/receiver`,
        () =>
          stack.fluxhook.receivers().some((r) => r.path === path) ||
          stack.receiverObject(ns, "receiver")?.status?.conditions?.some((c: any) => c.type === "Ready"),
      );
    }
    const headers = typeof c.headers === "function" ? c.headers() : c.headers;
    const res = await stack.post(path, { headers, body: c.body ?? "null" });
    expect({ status: res.status, annotated: countAnnotated(ns) }).toEqual({ status: c.status, annotated: c.annotated });
    expect(typeof res.body.reason).toBe("string");
    if (c.reason) expect(res.body.reason).toBe(c.reason);
  });

  test("the table covers all 37 upstream cases", () => {
    expect([...CASES.map((c) => c.n), 20].sort((a, b) => a - b)).toEqual(Array.from({ length: 37 }, (_, i) => i + 1));
  });

  test("the signed bodies match upstream's digests", () => {
    expect(nexusSignature("token", NEXUS_BODY)).toBe(NEXUS_SHA1);
    expect(signature("token", PUSH)).toBe(SHA256_PUSH);
  });

  test("beyond #19: an empty matchLabels ({}) with '*' selects every object of the kind, as in Flux", async () => {
    const ns = "case-19-empty";
    stack.target(GIT, "GitRepository", ns, "a", { label: "x" });
    stack.target(GIT, "GitRepository", ns, "b");
    const path = await stack.readyReceiver(ns, "receiver", {
      type: "generic",
      token: "token",
      spec: { resources: [{ kind: "GitRepository", name: "*", matchLabels: {} }] },
    });
    const res = await stack.post(path, { body: "null" });
    expect({ status: res.status, annotated: countAnnotated(ns) }).toEqual({ status: 200, annotated: 2 });
  });

  test("#20 cross-namespace refs refused with --no-cross-namespace-refs", async () => {
    await using strict = await startStack({ noCrossNamespaceRefs: true });
    strict.target(GIT, "GitRepository", "another-namespace", "app");
    const path = await strict.readyReceiver("default", "receiver", {
      type: "generic",
      token: "token",
      spec: { resources: [{ kind: "GitRepository", name: "app", namespace: "another-namespace" }] },
    });
    const res = await strict.post(path, { body: "null" });
    expect(res.status).toBe(500);
    expect(res.body.targets).toEqual([
      {
        kind: "GitRepository",
        namespace: "another-namespace",
        name: "app",
        outcome: "failed",
        reason: "GitRepository another-namespace/app: cross-namespace references are not allowed",
      },
    ]);
    expect(strict.requestedAt(GIT, "GitRepository", "another-namespace", "app")).toBeUndefined();
  });
});
