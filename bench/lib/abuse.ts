/**
 * Scenario (7), issue 11's "Done when": senders of the costly bodies of the red-team report at
 * one receiver each of the types they abuse, beside a quiet receiver whose real sender must keep
 * being answered. The bodies are built where they are sent (bench/load/abuse.ts), from these
 * shapes.
 */
import { signPayload, webhookPath } from "../../shared";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import type { KubeObject } from "../../test/kube";
import { GIT, NS, TOKEN } from "./fixtures";

/** The costly shapes: finding 1's three bodies, finding 2's forged form, finding 3's set filter. */
export const ABUSE_SHAPES = ["nested", "empty-arrays", "keys", "forged-form", "cel-sets"] as const;
export type AbuseShape = (typeof ABUSE_SHAPES)[number];

const MiB = 1024 * 1024;

/** The body of a shape, each at most 3 MiB. */
export function abuseBody(shape: AbuseShape): string {
  switch (shape) {
    case "nested":
      return "[".repeat(1_500_000) + "]".repeat(1_500_000);
    case "empty-arrays":
      return `[${Array(1_000_000).fill("[]").join(",")}]`;
    case "keys":
      return `{${Array.from({ length: 300_000 }, (_, i) => `"${i.toString(36)}":0`).join(",")}}`;
    case "forged-form":
      return `payload=${encodeURIComponent('{"ref":"x"}')}&${"x=1&".repeat(Math.floor((3 * MiB - 100) / 4))}`;
    case "cel-sets": {
      const list = (p: string) => Array.from({ length: 20_000 }, (_, i) => `${p}-${i}`);
      return JSON.stringify({ a: list("a"), b: list("b") });
    }
  }
}

/** Where each shape is sent, and how (URL-only types need nothing but the path). */
export interface AbuseTarget {
  readonly shape: AbuseShape;
  readonly path: string;
  readonly headers: Record<string, string>;
}

const receiver = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: RECEIVER_API_VERSION,
  kind: "Receiver",
  metadata: { name, namespace: NS },
  spec: { secretRef: { name: "token" }, resources: [{ kind: "GitRepository", name: "app" }], ...spec },
});

export function abuseCluster() {
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "Secret", metadata: { name: "token", namespace: NS }, data: { token: btoa(TOKEN) } },
    { apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: NS }, spec: {} },
    { apiVersion: GIT, kind: "GitRepository", metadata: { name: "quiet-app", namespace: NS }, spec: {} },
    receiver("dockerhub", { type: "dockerhub" }),
    receiver("generic-filter", { type: "generic", resourceFilter: "has(req.ref) || true" }),
    receiver("github", { type: "github" }),
    receiver("cel", { type: "generic", resourceFilter: "sets.intersects(req.a, req.b)" }),
    receiver("quiet", { type: "github", resources: [{ kind: "GitRepository", name: "quiet-app" }] }),
  ];
  const path = (name: string) => webhookPath(TOKEN, name, NS);
  const json = { "Content-Type": "application/json" };
  const targets: AbuseTarget[] = [
    // The JSON shapes go to a type that decodes its body and to one whose filter parses it.
    ...(["nested", "empty-arrays", "keys"] as const).flatMap((shape) => [
      { shape, path: path("dockerhub"), headers: json },
      { shape, path: path("generic-filter"), headers: json },
    ]),
    {
      shape: "forged-form",
      path: path("github"),
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signPayload("sha256", "not-the-token", "forged"),
      },
    },
    { shape: "cel-sets", path: path("cel"), headers: json },
  ];
  return { objects, targets, quiet: path("quiet"), receivers: 5 };
}
