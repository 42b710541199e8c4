/**
 * The security review's grep: drive every shared-secret receiver type through accepted and
 * refused deliveries, then search everything fluxhook emitted (every log line at debug level,
 * every response body and header, the metrics, the recent-deliveries JSON and page, and the
 * Events) for the tokens, the signatures, the secret digests of the paths and the Secrets' names.
 * Beyond this scenario, test/support/emitted.ts greps what every stack of the suite emitted.
 */
import { expect, test } from "bun:test";
import { githubExample } from "../support/payloads";
import { startStack, waitFor } from "../support/stack";
import { GIT } from "../support/kinds";
import { nexusSignature, signature } from "../support/signer";

const NS = "secrets-grep";

test("no token, signature, path digest or Secret name in anything fluxhook emits", async () => {
  await using stack = await startStack();
  const push = githubExample("push");
  const types = ["github", "bitbucket", "generic-hmac", "gitlab", "harbor", "nexus", "generic"] as const;
  const secrets: string[] = [];
  const paths: Record<string, string> = {};
  for (const type of types) {
    const token = `tok-${type}-${crypto.randomUUID()}`;
    const secretName = `sname-${type}-${crypto.randomUUID().slice(0, 8)}`;
    secrets.push(token, secretName);
    stack.makeReceiver(NS, type, {
      type,
      token,
      secretName,
      ...(type === "generic" ? {} : { events: [] }),
      targets: [{ apiVersion: GIT, kind: "GitRepository", name: "app" }],
    });
  }
  for (const type of types) {
    paths[type] = await stack.readyPath(NS, type);
    secrets.push(paths[type]!.slice("/hook/".length));
  }
  const tokenOf = (type: string) => secrets[types.indexOf(type as never) * 2]!;

  const requests: { type: string; headers: Record<string, string>; body: string }[] = [];
  for (const type of types) {
    const token = tokenOf(type);
    for (const key of [token, `wrong-${token}`]) {
      const sig256 = signature(key, push);
      const sig1 = signature(key, push, "sha1");
      const nexus = nexusSignature(key, push);
      secrets.push(sig256.slice(7), sig1.slice(5), nexus);
      const headers: Record<string, string> = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Event-Key": "repo:refs_changed",
        "X-Hub-Signature-256": sig256,
        "X-Hub-Signature": sig1,
        "X-Signature": sig256,
        "X-Gitlab-Token": key,
        "X-Gitlab-Event": "Push Hook",
        Authorization: key,
        "X-Nexus-Webhook-Signature": nexus,
        "X-GitHub-Delivery": crypto.randomUUID(),
      };
      requests.push({ type, headers, body: push });
    }
  }

  const emitted: string[] = [];
  for (const r of requests) {
    const res = await fetch(stack.fluxhook.receiverUrl + paths[r.type], {
      method: "POST",
      headers: r.headers,
      body: r.body,
    });
    emitted.push(await res.text(), JSON.stringify([...res.headers.entries()]));
  }
  // An unknown path with a valid-looking signature, and a wrong method.
  for (const init of [{ method: "POST", body: push }, { method: "GET" }]) {
    const res = await fetch(`${stack.fluxhook.receiverUrl}/hook/${"f".repeat(64)}`, init);
    emitted.push(await res.text());
  }
  await waitFor("Events to be written", () => stack.api.store.list("v1", "Event", NS).length >= types.length);

  emitted.push(await (await fetch(`${stack.fluxhook.metricsUrl}/metrics`)).text());
  emitted.push(await (await fetch(`${stack.fluxhook.healthUrl}/deliveries?format=json`)).text());
  emitted.push(await (await fetch(`${stack.fluxhook.healthUrl}/deliveries`)).text());
  emitted.push(await (await fetch(`${stack.fluxhook.healthUrl}/readyz`)).text());
  emitted.push(JSON.stringify(stack.api.store.list("v1", "Event", NS)));
  emitted.push(...stack.logs.map((l) => JSON.stringify(l)));

  const text = emitted.join("\n");
  // The workload really ran: accepted and refused deliveries of every type are in there.
  expect(stack.logs.filter((l) => l.msg === "delivery handled").length).toBe(types.length + 1);
  const leaks = secrets.filter((s) => text.includes(s));
  expect(leaks).toEqual([]);
});
