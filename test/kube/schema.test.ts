/**
 * Writes kube-apiserver refuses that the store refuses too (schema.ts, store.ts): a Receiver status
 * the CRD's structural schema refuses, and an Event about an object in another namespace. The
 * cluster tier found each with a real kube-apiserver.
 */
import { describe, expect, test } from "bun:test";
import { startKubeApiServer } from "./index";
import { RECEIVER } from "../support/kinds";

const RECEIVERS = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/default/receivers";
const ready = {
  type: "Ready",
  status: "True",
  reason: "Succeeded",
  message: "",
  lastTransitionTime: "2026-12-01T00:00:00Z",
};

async function statusWrite(status: unknown) {
  await using api = await startKubeApiServer();
  api.store.create({
    apiVersion: RECEIVER,
    kind: "Receiver",
    metadata: { name: "r", namespace: "default" },
    spec: { type: "generic" },
  });
  const res = await fetch(`${api.url}${RECEIVERS}/r/status`, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ status }),
  });
  const body = (await res.json()) as { details?: { causes?: { field: string; reason: string }[] } };
  return { status: res.status, causes: body.details?.causes?.map((c) => `${c.reason} ${c.field}`) };
}

describe("a Receiver's status is checked against Flux's CRD", () => {
  test("Flux's own shape is accepted", async () => {
    expect(await statusWrite({ observedGeneration: 1, webhookPath: "/hook/x", conditions: [ready] })).toEqual({
      status: 200,
      causes: undefined,
    });
  });

  test.each([
    [
      "a condition without its required fields",
      { conditions: [{ type: "Ready" }] },
      [
        "FieldValueRequired status.conditions[0].status",
        "FieldValueRequired status.conditions[0].reason",
        "FieldValueRequired status.conditions[0].message",
        "FieldValueRequired status.conditions[0].lastTransitionTime",
      ],
    ],
    [
      "a status outside the enum",
      { conditions: [{ ...ready, status: "Maybe" }] },
      ["FieldValueNotSupported status.conditions[0].status"],
    ],
    [
      "a reason that is not CamelCase",
      { conditions: [{ ...ready, reason: "not a reason" }] },
      ["FieldValueInvalid status.conditions[0].reason"],
    ],
    [
      "a time that is not RFC 3339",
      { conditions: [{ ...ready, lastTransitionTime: "yesterday" }] },
      ["FieldValueInvalid status.conditions[0].lastTransitionTime"],
    ],
    ["a string where a number goes", { observedGeneration: "one" }, ["FieldValueInvalid status.observedGeneration"]],
  ])("%s: 422", async (_name, status, causes) => {
    const result = await statusWrite(status);
    expect(result.status).toBe(422);
    expect([...result.causes!].sort()).toEqual([...causes].sort());
  });
});

describe("Events", () => {
  test("an involved object in another namespace: 422, as kube-apiserver answers", async () => {
    await using api = await startKubeApiServer();
    const event = (namespace: string) => ({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `e-${namespace}`, namespace: "default" },
      involvedObject: { kind: "Receiver", name: "r", namespace },
      reason: "X",
      message: "m",
      type: "Normal",
    });
    const post = (body: unknown) =>
      fetch(`${api.url}/api/v1/namespaces/default/events`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post(event("default"))).status).toBe(201);
    const refused = await post(event("other"));
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({
      reason: "Invalid",
      details: { causes: [{ field: "involvedObject.namespace" }] },
    });
  });
});
