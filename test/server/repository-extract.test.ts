/**
 * Where each receiver type's deliveries name their repository (server/providers/repository.ts),
 * beyond the end-to-end cases of routing.test.ts: the cases that name none, the issuers of
 * generic-oidc, and any JSON a sender may post (URL-only types take bodies from anyone).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RECEIVER_TYPES } from "../../shared";
import { CelMeter } from "../../server/cel";
import { PROVIDERS } from "../../server/providers";
import type { RepositoryInput } from "../../server/providers/repository";
import { bitbucketCloudPush, bitbucketServerRefsChanged, harborPushArtifact } from "../support/provider-payloads";
import { receiverSpec } from "../support/edge";
import { githubExample } from "../support/payloads";
import { signature } from "../support/signer";

const input = (payload: unknown, event?: string, claims?: Record<string, unknown>): RepositoryInput => ({
  event,
  payload: new TextEncoder().encode(typeof payload === "string" ? payload : JSON.stringify(payload)),
  payloadType: "application/json",
  ...(claims ? { claims } : {}),
});

const extract = (type: (typeof RECEIVER_TYPES)[number], i: RepositoryInput) => PROVIDERS[type].repository!(i);

describe("repository extraction", () => {
  test("nexus and cdevents name no repository; every other type has an extractor", () => {
    expect(RECEIVER_TYPES.filter((t) => !PROVIDERS[t].repository)).toEqual(["nexus", "cdevents"]);
  });

  test.each([
    ["github.com's Actions issuer", "https://token.actions.githubusercontent.com", ["github.com/octo-org/octo-repo"]],
    [
      "an enterprise's own github.com issuer",
      "https://token.actions.githubusercontent.com/octo-enterprise",
      ["github.com/octo-org/octo-repo"],
    ],
    ["GitHub Enterprise Server", "https://ghes.example.com/_services/token", ["ghes.example.com/octo-org/octo-repo"]],
  ])("generic-oidc: %s", (_, iss, keys) => {
    const got = extract(
      "generic-oidc",
      input({}, undefined, { iss, repository: "octo-org/octo-repo", ref: "refs/tags/v1" }),
    );
    expect(got).toEqual({
      ok: true,
      event: { kind: "git", keys, refs: ["refs/tags/v1"], display: "octo-org/octo-repo@refs/tags/v1" },
    });
  });

  test.each([
    ["another issuer (GitLab CI)", { iss: "https://gitlab.com", project_path: "group/app", ref: "main" }],
    ["no repository claim", { iss: "https://token.actions.githubusercontent.com", ref: "refs/heads/main" }],
  ])("generic-oidc reads GitHub's claims only, never the body: %s", (_, claims) => {
    // The body is a push GitHub would send, but the token does not cover it.
    expect(extract("generic-oidc", input(githubExample("push"), undefined, claims))).toEqual({
      ok: false,
      reason: "the token is not a GitHub Actions ID token with a repository claim (routing reads GitHub's claims)",
    });
  });

  test("github: an organisation's ping names no repository", () => {
    expect(extract("github", input(githubExample("ping", 3), "ping"))).toEqual({
      ok: false,
      reason: "the ping event names no repository",
    });
  });

  test("a form-encoded delivery: github's validator hands on its payload field, generic's the whole form", async () => {
    const json = githubExample("push", 4);
    const form = new URLSearchParams({ payload: json }).toString();
    const headers = new Headers({
      "Content-Type": "application/x-www-form-urlencoded",
      "X-GitHub-Event": "push",
      "X-Hub-Signature-256": signature("t", form),
      "X-Signature": signature("t", form),
    });
    const request = { headers, body: new TextEncoder().encode(form) };
    for (const type of ["github", "generic-hmac", "generic"] as const) {
      const verdict = await PROVIDERS[type].validate(request, {
        spec: receiverSpec("ns", "r", { type, secretRef: { name: "s" } }),
        secret: { token: Buffer.from("t") },
        compiled: { oidcProviders: [] },
        auth: undefined as never,
        meter: new CelMeter(),
      });
      if (!verdict.ok) throw new Error(`${type}: ${verdict.reason}`);
      const got = extract(type, verdict);
      expect({ type, display: got.ok && got.event.display }).toEqual({
        type,
        display: "Codertocat/Hello-World@refs/heads/master",
      });
    }
  });

  test("refs: none for an event about no ref (the repository alone), empty for a push that only deleted a branch", () => {
    const pr = extract("github", input(githubExample("pull_request"), "pull_request"));
    expect(pr.ok && pr.event.kind === "git" && pr.event.refs).toBeUndefined();
    const deleted = bitbucketCloudPush() as { push: { changes: Record<string, unknown>[] } };
    deleted.push.changes[0]!.new = null;
    const got = extract("bitbucket", input(deleted));
    expect(got.ok && got.event.kind === "git" && got.event.refs).toEqual([]);
    expect(got.ok && got.event.display).toBe("team_name/repo_name");
  });

  test("bitbucket server without clone links: says so", () => {
    const payload = bitbucketServerRefsChanged() as { repository: Record<string, unknown> };
    delete payload.repository.links;
    expect(extract("bitbucket", input(payload))).toEqual({
      ok: false,
      reason: "the Bitbucket Server event carries no clone links of its repository",
    });
  });

  test("harbor: the repository on each resource's host", () => {
    const payload = harborPushArtifact() as { event_data: { resources: { resource_url: string }[] } };
    payload.event_data.resources.push({ resource_url: "harbor.internal:8443/test-webhook/debian@sha256:abc" } as never);
    const got = extract("harbor", input(payload));
    expect(got.ok && got.event.keys).toEqual([
      "hub.harbor.com/test-webhook/debian",
      "harbor.internal:8443/test-webhook/debian",
    ]);
  });

  test("sender text in the answer is printable and bounded", () => {
    const payload = JSON.parse(githubExample("push", 4));
    payload.repository.full_name = `evil\u001b[31m\nname${"x".repeat(300)}`;
    const got = extract("github", input(payload, "push"));
    expect(got.ok && got.event.display).toMatch(/^[\x20-\x7e]{1,100}@refs\/heads\/master$/);
  });

  test("any JSON, any type: a repository event or a reason, never an exception", () => {
    const types = RECEIVER_TYPES.filter((t) => PROVIDERS[t].repository);
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.oneof(fc.json({ maxDepth: 4 }), fc.string()),
        fc.option(fc.constantFrom("push", "ping", "create", "release", "package", "registry_package"), {
          nil: undefined,
        }),
        fc.dictionary(fc.constantFrom("iss", "repository", "ref"), fc.jsonValue({ maxDepth: 1 })),
        (type, body, event, claims) => {
          const got = extract(type, input(body, event, claims));
          if (got.ok) expect(got.event.keys.length).toBeGreaterThan(0);
          else expect(typeof got.reason).toBe("string");
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
