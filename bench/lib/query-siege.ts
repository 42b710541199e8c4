/**
 * Scenario (10), issue 22's finding 1: a flood of unsigned status queries at one URL-only Receiver
 * (generic: its URL is all a query needs) whose source has 300 Kustomizations and 300 HelmReleases
 * beside it, each query naming the source 100 times, while a real sender delivers to another
 * Receiver. What the flood costs the API server is the measure.
 */
import { encodeStatusQuery, signPayload, statusQueryPath, webhookPath } from "../../shared";
import { RECEIVER_API_VERSION } from "../../server/api/receiver";
import type { KubeObject } from "../../test/kube";
import { GIT, NS, TOKEN, type BenchRequest } from "./fixtures";

const KS = "kustomize.toolkit.fluxcd.io/v1";
const HR = "helm.toolkit.fluxcd.io/v2";
/** Consumers of each kind in the namespace, each about 5 KB (finding 1's LISTs were 3.15 MiB for 600). */
export const QUERY_SIEGE_CONSUMERS = 300;

export function querySiegeCluster() {
  const bulk = "# a kustomize patch of a few kilobytes\n".repeat(120);
  const consumers: KubeObject[] = [];
  for (let i = 0; i < QUERY_SIEGE_CONSUMERS; i++) {
    consumers.push({
      apiVersion: KS,
      kind: "Kustomization",
      metadata: { name: `apps-${i}`, namespace: NS },
      spec: {
        interval: "10m",
        path: `./apps/${i}`,
        sourceRef: { kind: "GitRepository", name: i % 10 === 0 ? "app" : "other" },
        patches: [{ patch: bulk }],
      },
      status: {
        lastAppliedRevision: "main@sha1:0",
        conditions: [{ type: "Ready", status: "True", reason: "ReconciliationSucceeded", message: "Applied" }],
      },
    });
    consumers.push({
      apiVersion: HR,
      kind: "HelmRelease",
      metadata: { name: `release-${i}`, namespace: NS },
      spec: {
        interval: "10m",
        chart: { spec: { chart: "./chart", sourceRef: { kind: "GitRepository", name: "other" } } },
        values: { notes: bulk },
      },
    });
  }
  const receiver = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: RECEIVER_API_VERSION,
    kind: "Receiver",
    metadata: { name, namespace: NS },
    spec: { secretRef: { name: "token" }, ...spec },
  });
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "Secret", metadata: { name: "token", namespace: NS }, data: { token: btoa(TOKEN) } },
    { apiVersion: GIT, kind: "GitRepository", metadata: { name: "app", namespace: NS }, spec: {} },
    { apiVersion: GIT, kind: "GitRepository", metadata: { name: "quiet-app", namespace: NS }, spec: {} },
    receiver("url-only", { type: "generic", resources: [{ kind: "GitRepository", name: "app" }] }),
    receiver("quiet", { type: "github", resources: [{ kind: "GitRepository", name: "quiet-app" }] }),
    ...consumers,
  ];
  const body = encodeStatusQuery({
    targets: Array.from({ length: 100 }, () => ({
      kind: "GitRepository",
      namespace: NS,
      name: "app",
      requestedAt: "x",
    })),
  });
  const query: BenchRequest = {
    method: "POST",
    path: statusQueryPath(webhookPath(TOKEN, "url-only", NS))!,
    headers: { "Content-Type": "application/json" },
    body,
  };
  const push = JSON.stringify({ ref: "refs/heads/main", repository: { full_name: "org/quiet" } });
  const delivery: BenchRequest = {
    method: "POST",
    path: webhookPath(TOKEN, "quiet", NS),
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": "push",
      "X-Hub-Signature-256": signPayload("sha256", TOKEN, push),
    },
    body: push,
  };
  return { objects, query, delivery, receivers: 2 };
}
