/**
 * examples/organisation/ as a user applies it: the organisation's Receivers are Ready, and a push
 * to the tenant's repository, from the organisation's webhook, reconciles the tenant's source and
 * no other. The reusable workflow names the Receiver and the path its validations allow.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import type { KubeObject } from "../kube";
import { githubPayloadFor } from "../support/provider-payloads";
import { startStack } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders } from "../support/signer";

const DIR = join(import.meta.dir, "../../examples/organisation");
const read = (file: string) =>
  parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((d) => d.toJS() as KubeObject);

describe("examples/organisation", () => {
  test("the organisation's webhook reconciles the tenant's source that follows the pushed repository", async () => {
    const token = "example-organisation-token";
    const untouched: KubeObject = {
      apiVersion: GIT,
      kind: "GitRepository",
      metadata: { name: "webapp", namespace: "team-b" },
      spec: { interval: "1h", url: "https://github.com/example-org/webapp", ref: { branch: "main" } },
    };
    await using stack = await startStack({}, {}, [...read("tenant.yaml"), untouched]);
    stack.secret("flux-system", "organisation-webhook-token", { token });
    for (const o of [...read("receiver.yaml"), ...read("receiver-oidc.yaml")]) stack.api.store.create(o);
    const path = await stack.readyPath("flux-system", "organisation");
    expect(await stack.readyPath("flux-system", "organisation-oidc")).toStartWith("/hook/");

    const body = githubPayloadFor("push", 4, "example-org", "webapp", "refs/heads/main");
    const res = await stack.post(path, {
      headers: githubHeaders(token, body),
      body,
    });
    // team-b's GitRepository follows the repository too, but has not opted in with the label.
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "1 of 1 target follows example-org/webapp@refs/heads/main",
    });
    expect(stack.requestedAt(GIT, "GitRepository", "team-a", "webapp")).toBeString();
    expect(stack.requestedAt(GIT, "GitRepository", "team-b", "webapp")).toBeUndefined();
  });

  test("the reusable workflow sends to the OIDC Receiver, from the path its validations allow", () => {
    const text = readFileSync(join(DIR, "notify-flux.yml"), "utf8");
    const workflow = parse(text);
    const step = workflow.jobs["notify-flux"].steps[0];
    const [receiver] = read("receiver-oidc.yaml");
    expect(step.with).toMatchObject({ "receiver-type": "generic-oidc", receiver: receiver!.metadata.name });
    expect(workflow.permissions["id-token"]).toBe("write");
    const allowed = /startsWith\('([^']+)@'\)/.exec(JSON.stringify((receiver as { spec?: unknown }).spec))![1]!;
    // The workflow's own comment says where it lives and how repositories call it.
    expect(text).toContain(`(${allowed})`);
    expect(text).toContain(`uses: ${allowed}@main`);
  });
});
