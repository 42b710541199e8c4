/**
 * The action, as the runner runs it (node action/dist/index.js), delivering real events to
 * fluxhook's real server, whose Receivers live in the Kubernetes API test server: the targets'
 * requestedAt annotations change, and nothing secret reaches the step's output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "../support/stack";
import { events, leaks, runAction } from "./harness";

const GIT = "source.toolkit.fluxcd.io/v1";
const IMAGE = "image.toolkit.fluxcd.io/v1";
const TOKEN = "action-e2e-token";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  stack.secret("flux-system", "webhook-token", { token: TOKEN });
  stack.target(GIT, "GitRepository", "flux-system", "webapp");
  stack.target(IMAGE, "ImageRepository", "flux-system", "webapp");
  stack.receiver("flux-system", "github-receiver", {
    type: "github",
    events: ["push"],
    secretRef: { name: "webhook-token" },
    resources: [{ kind: "GitRepository", name: "webapp" }],
  });
  stack.receiver("flux-system", "image-receiver", {
    type: "github",
    events: ["package"],
    secretRef: { name: "webhook-token" },
    resources: [{ kind: "ImageRepository", name: "webapp" }],
  });
  await stack.readyPath("flux-system", "github-receiver");
  await stack.readyPath("flux-system", "image-receiver");
});
afterAll(() => stack.stop());

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
