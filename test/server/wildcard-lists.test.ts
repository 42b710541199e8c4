/**
 * Issue 22, finding 7: a wildcard Receiver's targets are listed as metadata only (as Flux's
 * controllers list them), every page of the list, and concurrent deliveries to it share one list.
 * Before, each delivery read every matching object whole (1,000 HelmReleases of 20 KB: 19.8 MiB a
 * delivery), so a flood of unsigned deliveries read gigabytes and took RSS past the Deployment's limit.
 */
import { describe, expect, test } from "bun:test";
import { startStack, waitFor, type Stack } from "../support/stack";
import { HR } from "../support/kinds";

const NS = "apps";
const TOKEN = "wildcard-token";
const LIST_PATH = /^\/apis\/helm\.toolkit\.fluxcd\.io\/v2\/(namespaces\/[^/]+\/)?helmreleases$/;

/** HelmReleases with 20 KB of values each, as in the finding's set-up. */
function helmReleases(stack: Stack, namespace: string, count: number, labels: Record<string, string>) {
  for (let i = 0; i < count; i++)
    stack.api.store.create({
      apiVersion: HR,
      kind: "HelmRelease",
      metadata: { name: `release-${i}`, namespace, labels },
      spec: { interval: "10m", values: { blob: "x".repeat(20_000) } },
    });
}

function wildcardReceiver(stack: Stack, matchLabels: Record<string, string>, namespace?: string) {
  return stack.readyReceiver(NS, "all-releases", {
    type: "generic",
    token: TOKEN,
    spec: {
      resources: [{ apiVersion: HR, kind: "HelmRelease", name: "*", matchLabels, ...(namespace ? { namespace } : {}) }],
    },
  });
}

const deliver = (stack: Stack, path: string) =>
  stack.post(path, { headers: { "Content-Type": "application/json" }, body: "{}" });

const listRequests = (stack: Stack) =>
  stack.api.requests.filter((r) => r.method === "GET" && !r.watch && LIST_PATH.test(r.path));

describe("wildcard resolution", () => {
  test("lists metadata only, every page", async () => {
    await using stack = await startStack({}, { listPageSize: 20 });
    helmReleases(stack, NS, 50, { team: "web" });
    helmReleases(stack, "other", 3, { team: "web" });
    const path = await wildcardReceiver(stack, { team: "web" });
    const res = await deliver(stack, path);
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "50 of 50 targets annotated",
    });
    const lists = listRequests(stack);
    // Three pages of 20, each asked for as a PartialObjectMetadataList.
    expect(lists.map((r) => [r.query.limit, r.accept?.split(",")[0]])).toEqual(
      Array.from({ length: 3 }, () => ["20", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"]),
    );
    expect(stack.requestedAt(HR, "HelmRelease", NS, "release-49")).toBeString();
  });

  test("a selection of nothing (kube-apiserver's null items) annotates nothing, 200", async () => {
    await using stack = await startStack();
    helmReleases(stack, NS, 2, { team: "web" });
    const path = await wildcardReceiver(stack, { team: "nobody" });
    const res = await deliver(stack, path);
    expect({ status: res.status, reason: res.body.reason, targets: res.body.targets }).toEqual({
      status: 200,
      reason: "0 of 1 target annotated",
      targets: [
        { kind: "HelmRelease", namespace: NS, name: "*", outcome: "skipped", reason: "no object matches the labels" },
      ],
    });
  });

  test("concurrent deliveries share one list", async () => {
    await using stack = await startStack();
    helmReleases(stack, NS, 30, { team: "web" });
    const path = await wildcardReceiver(stack, { team: "web" });
    // The API server holds the list until every delivery has asked for it.
    const held = stack.api.faults.add({ method: "GET", path: LIST_PATH, watch: false, respond: "hold" });
    const flood = Array.from({ length: 16 }, () => deliver(stack, path));
    await waitFor("15 deliveries to wait on the first one's list", () => stack.fluxhook.listsWaiting() === 15);
    await waitFor("the list to reach the API server", () => stack.api.faults.hung === 1);
    expect(listRequests(stack).length).toBe(1);
    held.remove();
    const answers = await Promise.all(flood);
    expect(answers.map((a) => [a.status, a.body.reason])).toEqual(
      Array.from({ length: 16 }, () => [200, "30 of 30 targets annotated"]),
    );
    expect(listRequests(stack).length).toBe(1);
    // Nothing is kept once a list answered: the next delivery lists again.
    expect((await deliver(stack, path)).status).toBe(200);
    expect(listRequests(stack).length).toBe(2);
  });

  test('namespace "*": one cluster-wide metadata list', async () => {
    await using stack = await startStack();
    helmReleases(stack, "team-a", 2, { team: "web" });
    helmReleases(stack, "team-b", 3, { team: "web" });
    helmReleases(stack, "team-c", 1, { team: "db" });
    const path = await wildcardReceiver(stack, { team: "web" }, "*");
    const res = await deliver(stack, path);
    expect({ status: res.status, reason: res.body.reason }).toEqual({
      status: 200,
      reason: "5 of 5 targets annotated",
    });
    expect(
      (res.body.targets as { namespace: string; name: string }[]).map((t) => `${t.namespace}/${t.name}`).sort(),
    ).toEqual(["team-a/release-0", "team-a/release-1", "team-b/release-0", "team-b/release-1", "team-b/release-2"]);
    expect(listRequests(stack).map((r) => [r.path, r.query.labelSelector])).toEqual([
      [`/apis/${HR}/helmreleases`, "team=web"],
    ]);
  });
});
