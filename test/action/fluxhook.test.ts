/**
 * The action, as the runner runs it (node action/dist/index.js), delivering real events to
 * fluxhook's real server, whose Receivers live in the Kubernetes API test server: the targets'
 * requestedAt annotations change, and nothing secret reaches the step's output. generic-oidc
 * runs against a local OIDC issuer and a stand-in for the runner's ID-token endpoint.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Stack } from "../support/stack";
import type { TokenIssuer } from "../support/tokens";
import { startFluxhook, type FluxhookFixture } from "./fluxhook-fixture";
import { GIT, IMAGE } from "../support/kinds";
import { events, leaks, runAction, startIdTokenEndpoint } from "./harness";

const TOKEN = "action-e2e-token";

/** What the harness's runner says it is running (runAction's GITHUB_REPOSITORY). */
const REPOSITORY = "octo-org/fluxhook-test";

let fixture: FluxhookFixture;
let stack: Stack;
let issuer: TokenIssuer;
beforeAll(async () => {
  fixture = await startFluxhook();
  ({ stack, issuer } = fixture);
  const webapp = { apiVersion: GIT, kind: "GitRepository", name: "webapp" };
  await Promise.all([
    stack.readyReceiver("flux-system", "github-receiver", {
      type: "github",
      token: TOKEN,
      events: ["push"],
      targets: [webapp],
    }),
    stack.readyReceiver("flux-system", "image-receiver", {
      type: "github",
      token: TOKEN,
      events: ["package"],
      targets: [{ apiVersion: IMAGE, kind: "ImageRepository", name: "webapp" }],
    }),
    // The README's recipe: only this repository's main branch may trigger it.
    stack.readyReceiver("flux-system", "oidc-receiver", {
      type: "generic-oidc",
      oidcProviders: [
        {
          issuerURL: issuer.url,
          validations: [
            { expression: `claims.repository == '${REPOSITORY}'`, message: "wrong repository" },
            { expression: "claims.ref == 'refs/heads/main'", message: "wrong ref" },
          ],
        },
      ],
      targets: [webapp],
    }),
    stack.readyReceiver("apps", "api-receiver", {
      type: "github",
      token: TOKEN,
      events: ["push"],
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "api" }],
    }),
  ]);
});
afterAll(() => fixture.stop());

describe("the action against fluxhook", () => {
  test.each([
    ["push", "github-receiver", GIT, "GitRepository", "json"],
    ["push", "github-receiver", GIT, "GitRepository", "form"],
    ["registry_package", "image-receiver", IMAGE, "ImageRepository", "json"],
  ] as const)("%s to %s (%s)", async (eventName, receiver, apiVersion, kind, contentType) => {
    const before = stack.requestedAt(apiVersion, kind, "flux-system", "webapp");
    const run = await runAction({
      eventName,
      event: events()[eventName],
      inputs: { token: TOKEN, address: stack.fluxhook.receiverUrl, receiver, "content-type": contentType },
    });
    expect({ exitCode: run.exitCode, status: run.outputs.status, attempts: run.outputs.attempts }).toEqual({
      exitCode: 0,
      status: "200",
      attempts: "1",
    });
    expect(JSON.parse(run.outputs.response!).targets).toEqual([
      {
        kind,
        namespace: "flux-system",
        name: "webapp",
        outcome: "annotated",
        requestedAt: stack.requestedAt(apiVersion, kind, "flux-system", "webapp"),
      },
    ]);
    expect(stack.requestedAt(apiVersion, kind, "flux-system", "webapp")).not.toBe(before);
    const digest = (await stack.readyPath("flux-system", receiver)).slice("/hook/".length);
    expect(leaks(run, [TOKEN, digest])).toEqual([]);
  });

  test("an event the receiver does not accept fails the step with fluxhook's reason", async () => {
    const run = await runAction({
      eventName: "release",
      event: events().release,
      inputs: { token: TOKEN, address: stack.fluxhook.receiverUrl, receiver: "github-receiver" },
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe("400");
    // The step's error quotes fluxhook's reason (not only the response body printed in a group).
    const error = run.stdout.split("\n").find((l) => l.startsWith("::error"));
    expect(error).toContain('The receiver said: "event "release" is not accepted by this receiver".');
  });
});

describe("several receivers in one step", () => {
  test("each gets its own delivery; results lists them; the targets of both are annotated", async () => {
    const before = [
      stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp"),
      stack.requestedAt(GIT, "GitRepository", "apps", "api"),
    ];
    const run = await runAction({
      inputs: { token: TOKEN, address: stack.fluxhook.receiverUrl, receiver: "github-receiver\napps/api-receiver" },
    });
    expect(run.exitCode).toBe(0);
    const results = JSON.parse(run.outputs.results ?? "[]") as Array<Record<string, unknown>>;
    expect(results).toEqual([
      { receiver: "flux-system/github-receiver", status: 200, "delivery-id": expect.any(String), attempts: 1 },
      { receiver: "apps/api-receiver", status: 200, "delivery-id": expect.any(String), attempts: 1 },
    ]);
    expect(results[0]?.["delivery-id"]).not.toBe(results[1]?.["delivery-id"]);
    expect(run.outputs["delivery-id"]).toBe(results[0]?.["delivery-id"] as string);
    expect(stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp")).not.toBe(before[0]);
    expect(stack.requestedAt(GIT, "GitRepository", "apps", "api")).not.toBe(before[1]);
    expect(run.summary).toContain("apps/api-receiver");
    const digests = [
      (await stack.readyPath("flux-system", "github-receiver")).slice(6),
      (await stack.readyPath("apps", "api-receiver")).slice(6),
    ];
    expect(leaks(run, [TOKEN, ...digests])).toEqual([]);
  });

  test.each([
    { failOnError: "true", exitCode: 1 },
    { failOnError: "false", exitCode: 0 },
  ])(
    "one refused of two fails the step unless fail-on-error is false ($failOnError)",
    async ({ failOnError, exitCode }) => {
      const run = await runAction({
        inputs: {
          token: TOKEN,
          address: stack.fluxhook.receiverUrl,
          receiver: "github-receiver\nimage-receiver", // a push: image-receiver only takes package
          "fail-on-error": failOnError,
        },
      });
      expect(run.exitCode).toBe(exitCode);
      expect(JSON.parse(run.outputs.results ?? "[]").map((r: { status: number }) => r.status)).toEqual([200, 400]);
      // the single outputs describe the failed one
      expect(run.outputs.status).toBe("400");
      const message = run.stdout.split("\n").find((l) => /^::(error|warning)::1 of 2 deliveries failed/.test(l));
      expect(message).toContain("flux-system/image-receiver");
    },
  );
});

describe("generic-oidc: the runner's ID token, no secret", () => {
  const mintFor =
    (repository: string, ref = "refs/heads/main") =>
    (audience: string) =>
      issuer.sign({
        iss: issuer.url,
        aud: audience,
        sub: `repo:${repository}:ref:${ref}`,
        repository,
        ref,
      });

  test("the server checks the claims with CEL and answers 200; the target is annotated", async () => {
    await using endpoint = startIdTokenEndpoint(mintFor(REPOSITORY));
    const before = stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp");
    const run = await runAction({
      inputs: { address: stack.fluxhook.receiverUrl, receiver: "oidc-receiver", "receiver-type": "generic-oidc" },
      env: endpoint.env,
    });
    expect({ exitCode: run.exitCode, status: run.outputs.status }).toEqual({ exitCode: 0, status: "200" });
    expect(endpoint.audiences).toEqual(["notification-controller"]);
    expect(stack.requestedAt(GIT, "GitRepository", "flux-system", "webapp")).not.toBe(before);
    const masked = run.stdout.split("\n").filter((l) => l.startsWith("::add-mask::"));
    const idToken = masked.map((l) => l.slice("::add-mask::".length)).find((v) => v.split(".").length === 3);
    expect(idToken).toBeDefined();
    const path = await stack.readyPath("flux-system", "oidc-receiver");
    expect(leaks(run, [idToken ?? "", path.slice(6), endpoint.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN])).toEqual([]);
  });

  test("a token for another repository is refused with the validation's message", async () => {
    await using endpoint = startIdTokenEndpoint(mintFor("evil-org/fork"));
    const run = await runAction({
      inputs: { address: stack.fluxhook.receiverUrl, receiver: "oidc-receiver", "receiver-type": "generic-oidc" },
      env: endpoint.env,
    });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe("400");
    const error = run.stdout.split("\n").find((l) => l.startsWith("::error::"));
    expect(error).toContain('The receiver said: "token validation failed: wrong repository"');
  });

  test("a token for another audience is refused", async () => {
    await using endpoint = startIdTokenEndpoint(mintFor(REPOSITORY));
    const run = await runAction({
      inputs: {
        address: stack.fluxhook.receiverUrl,
        receiver: "oidc-receiver",
        "receiver-type": "generic-oidc",
        "oidc-audience": "someone-else",
      },
      env: endpoint.env,
    });
    expect(endpoint.audiences).toEqual(["someone-else"]);
    expect(run.outputs.status).toBe("400");
  });

  test("without id-token: write (no request URL) the step says which permission to add", async () => {
    const run = await runAction({
      inputs: { address: stack.fluxhook.receiverUrl, receiver: "oidc-receiver", "receiver-type": "generic-oidc" },
    });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain("::error::receiver-type generic-oidc needs the runner's ID token");
    expect(run.stdout).toContain("permissions: id-token: write");
  });
});
