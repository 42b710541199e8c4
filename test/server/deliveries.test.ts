/**
 * Deliveries: real GitHub payloads signed at test time, and every way a request can be refused,
 * each with its status and reason. The table of methods, content types, events and credentials
 * is answered by the app without a socket (test/support/edge.ts), since a socket proves nothing
 * there; what the socket decides (the raw request-target, sizes read off the wire) and a delivery
 * end to end go over real HTTP to receivers in the test API server, which must keep serving after
 * each refusal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { githubExample } from "../support/payloads";
import { startStack, type Stack } from "../support/stack";
import { GIT } from "../support/kinds";
import { githubHeaders, signature } from "../support/signer";
import { annotatingPort, EDGE_REQUESTED_AT, edgeApp, receiverSpec, servingEntry } from "../support/edge";

const TOKEN = "s3cr3t-token";
const NS = "deliveries";
const SECRET_NAME = "webhook-credentials";

let stack: Stack;
const paths: Record<string, string> = {};

const RECEIVERS: Record<string, { type: string; events?: string[] }> = {
  github: { type: "github" },
  "github-push-only": { type: "github", events: ["Push"] },
  gitlab: { type: "gitlab", events: ["Push Hook"] },
  bitbucket: { type: "bitbucket", events: ["repo:refs_changed"] },
  harbor: { type: "harbor" },
  hmac: { type: "generic-hmac" },
};

beforeAll(async () => {
  stack = await startStack();
  const targets = [{ apiVersion: GIT, kind: "GitRepository", name: "webapp" }];
  await Promise.all(
    Object.entries(RECEIVERS).map(async ([name, receiver]) => {
      paths[name] = await stack.readyReceiver(NS, name, {
        ...receiver,
        token: TOKEN,
        secretName: SECRET_NAME,
        targets,
      });
    }),
  );
});
afterAll(() => stack.stop());

const push = githubExample("push");
const ping = githubExample("ping");
const pkg = githubExample("package");
const pretty = JSON.stringify(JSON.parse(push), null, 2);
const form = `payload=${encodeURIComponent(push)}`;

const github = (body: string, event: string, extra: Record<string, string> = {}) => ({
  ...githubHeaders(TOKEN, body, { event, delivery: crypto.randomUUID() }),
  ...extra,
});

interface Case {
  name: string;
  receiver: string;
  body: string;
  headers: Record<string, string>;
  method?: string;
  /** Appended to the path. */
  suffix?: string;
  status: number;
  reason: string;
}

const CASES: Case[] = [
  {
    name: "push",
    receiver: "github",
    body: push,
    headers: github(push, "push"),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "push, pretty-printed bytes",
    receiver: "github",
    body: pretty,
    headers: github(pretty, "push"),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "ping with no events filter",
    receiver: "github",
    body: ping,
    headers: github(ping, "ping"),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "package",
    receiver: "github",
    body: pkg,
    headers: github(pkg, "package"),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "form-encoded push",
    receiver: "github",
    body: form,
    headers: github(form, "push", { "Content-Type": "application/x-www-form-urlencoded" }),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "charset parameter",
    receiver: "github",
    body: push,
    headers: github(push, "push", { "Content-Type": "application/json; charset=utf-8" }),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "sha1 only (legacy)",
    receiver: "github",
    body: push,
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": "push",
      "X-Hub-Signature": signature(TOKEN, push, "sha1"),
    },
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "event filter is case-insensitive",
    receiver: "github-push-only",
    body: push,
    headers: github(push, "PUSH"),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "ping refused by an events filter",
    receiver: "github-push-only",
    body: ping,
    headers: github(ping, "ping"),
    status: 400,
    reason: 'event "ping" is not accepted by this receiver',
  },
  {
    name: "issues refused",
    receiver: "github-push-only",
    body: push,
    headers: github(push, "issues"),
    status: 400,
    reason: 'event "issues" is not accepted by this receiver',
  },
  {
    name: "no event header with a filter",
    receiver: "github-push-only",
    body: push,
    headers: { "Content-Type": "application/json", "X-Hub-Signature-256": signature(TOKEN, push) },
    status: 400,
    reason: 'missing X-GitHub-Event header: this receiver accepts only "Push"',
  },
  {
    name: "wrong key",
    receiver: "github",
    body: push,
    headers: github(push, "push", { "X-Hub-Signature-256": signature("guess", push) }),
    status: 400,
    reason: "signature mismatch (X-Hub-Signature-256)",
  },
  {
    name: "body changed after signing",
    receiver: "github",
    body: `${push} `,
    headers: github(push, "push"),
    status: 400,
    reason: "signature mismatch (X-Hub-Signature-256)",
  },
  {
    name: "an empty X-Hub-Signature-256 falls back to X-Hub-Signature, as in go-github",
    receiver: "github",
    body: push,
    headers: github(push, "push", { "X-Hub-Signature-256": "", "X-Hub-Signature": signature(TOKEN, push, "sha1") }),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "sha256 header preferred over a valid sha1",
    receiver: "github",
    body: push,
    headers: github(push, "push", {
      "X-Hub-Signature-256": "sha256=00",
      "X-Hub-Signature": signature(TOKEN, push, "sha1"),
    }),
    status: 400,
    reason: "signature mismatch (X-Hub-Signature-256)",
  },
  {
    name: "no signature",
    receiver: "github",
    body: push,
    headers: { "Content-Type": "application/json", "X-GitHub-Event": "push" },
    status: 400,
    reason: "missing signature (X-Hub-Signature-256 or X-Hub-Signature)",
  },
  {
    name: "md5 algorithm",
    receiver: "github",
    body: push,
    headers: github(push, "push", { "X-Hub-Signature-256": "md5=d41d8cd98f00b204e9800998ecf8427e" }),
    status: 400,
    reason: "unknown hash type prefix (X-Hub-Signature-256)",
  },
  {
    name: "unsupported content type",
    receiver: "github",
    body: push,
    headers: github(push, "push", { "Content-Type": "text/plain" }),
    status: 400,
    reason: 'unsupported Content-Type "text/plain": expected application/json or application/x-www-form-urlencoded',
  },
  {
    name: "form without payload field: an empty payload, as go-github reads it",
    receiver: "github",
    body: "x=1",
    headers: github("x=1", "push", { "Content-Type": "application/x-www-form-urlencoded" }),
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "gitlab token",
    receiver: "gitlab",
    body: "{}",
    headers: { "X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook" },
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "gitlab wrong token",
    receiver: "gitlab",
    body: "{}",
    headers: { "X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook" },
    status: 400,
    reason: "X-Gitlab-Token does not match the receiver's token",
  },
  {
    name: "gitlab no token",
    receiver: "gitlab",
    body: "{}",
    headers: { "X-Gitlab-Event": "Push Hook" },
    status: 400,
    reason: "missing X-Gitlab-Token header",
  },
  {
    name: "gitlab wrong event",
    receiver: "gitlab",
    body: "{}",
    headers: { "X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Tag Push Hook" },
    status: 400,
    reason: 'event "Tag Push Hook" is not accepted by this receiver',
  },
  {
    name: "bitbucket server push",
    receiver: "bitbucket",
    body: push,
    headers: {
      "Content-Type": "application/json",
      "X-Event-Key": "repo:refs_changed",
      "X-Hub-Signature-256": signature(TOKEN, push),
    },
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "bitbucket wrong event",
    receiver: "bitbucket",
    body: push,
    headers: {
      "Content-Type": "application/json",
      "X-Event-Key": "pr:opened",
      "X-Hub-Signature-256": signature(TOKEN, push),
    },
    status: 400,
    reason: 'event "pr:opened" is not accepted by this receiver',
  },
  {
    name: "harbor token",
    receiver: "harbor",
    body: "{}",
    headers: { Authorization: TOKEN },
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "harbor bearer prefix is not the token",
    receiver: "harbor",
    body: "{}",
    headers: { Authorization: `Bearer ${TOKEN}` },
    status: 400,
    reason: "Authorization does not match the receiver's token",
  },
  {
    name: "generic-hmac sha512",
    receiver: "hmac",
    body: "{}",
    headers: { "X-Signature": signature(TOKEN, "{}", "sha512") },
    status: 200,
    reason: "1 of 1 target annotated",
  },
  {
    name: "generic-hmac missing",
    receiver: "hmac",
    body: "{}",
    headers: {},
    status: 400,
    reason: "missing signature (X-Signature)",
  },
  {
    name: "GET",
    receiver: "github",
    body: "",
    method: "GET",
    headers: {},
    status: 405,
    reason: "method GET is not allowed: receivers take POST",
  },
  {
    name: "query string",
    receiver: "github",
    suffix: "?x=1",
    body: push,
    headers: github(push, "push"),
    status: 404,
    reason: "no receiver at this path",
  },
  {
    name: "trailing slash",
    receiver: "github",
    suffix: "/",
    body: push,
    headers: github(push, "push"),
    status: 404,
    reason: "no receiver at this path",
  },
];

/** The app with the same Receivers, at /hook/<name>, without a socket or a cluster. */
function edge() {
  const entries = Object.entries(RECEIVERS).map(([name, receiver]) =>
    servingEntry(
      NS,
      name,
      receiverSpec(NS, name, {
        ...receiver,
        secretRef: { name: SECRET_NAME },
        resources: [{ kind: "GitRepository", name: "webapp" }],
      }),
      TOKEN,
    ),
  );
  const kube = annotatingPort();
  return { ...edgeApp(entries, { kube }), annotated: kube.annotated };
}

describe("deliveries, through the app", () => {
  // One app for the table, as one server for every sender: each refusal leaves it serving.
  const app = edge();
  afterAll(() => app.stop());

  test.each(CASES.filter((c) => c.suffix === undefined).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const annotated = app.annotated.length;
    const res = await app.handle(
      new Request(`http://receiver/hook/${c.receiver}`, {
        method: c.method ?? "POST",
        headers: c.headers,
        body: c.method === "GET" ? undefined : c.body,
      }),
    );
    const body = (await res.json()) as { reason: string; targets?: unknown };
    expect({ status: res.status, reason: body.reason }).toEqual({ status: c.status, reason: c.reason });
    expect(res.headers.get("content-type")).toBe("application/json");
    if (c.status === 200) {
      expect(body.targets).toEqual([
        { kind: "GitRepository", namespace: NS, name: "webapp", outcome: "annotated", requestedAt: EDGE_REQUESTED_AT },
      ]);
      expect(app.annotated.slice(annotated)).toEqual([`GitRepository ${NS}/webapp`]);
    } else {
      expect(app.annotated.length).toBe(annotated);
    }
  });

  test("the app still serves after every refusal", async () => {
    const res = await app.handle(
      new Request("http://receiver/hook/github", { method: "POST", headers: github(push, "push"), body: push }),
    );
    expect(res.status).toBe(200);
  });
});

describe("deliveries over HTTP", () => {
  test.each(CASES.filter((c) => c.suffix !== undefined || c.name === "push").map((c) => [c.name, c] as const))(
    "%s",
    async (_name, c) => {
      const before = stack.requestedAt(GIT, "GitRepository", NS, "webapp");
      const res = await stack.post(paths[c.receiver]! + (c.suffix ?? ""), {
        method: c.method,
        headers: c.headers,
        body: c.method === "GET" ? undefined : c.body,
      });
      expect({ status: res.status, reason: res.body.reason }).toEqual({ status: c.status, reason: c.reason });
      expect(res.headers.get("content-type")).toBe("application/json");
      const after = stack.requestedAt(GIT, "GitRepository", NS, "webapp");
      if (c.status === 200) {
        expect(res.body.targets).toEqual([
          { kind: "GitRepository", namespace: NS, name: "webapp", outcome: "annotated", requestedAt: after },
        ]);
        expect(after).not.toBe(before);
        expect(after).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      } else {
        expect(after).toBe(before);
      }
    },
  );

  test("uppercase digest does not match (paths are exact)", async () => {
    const res = await stack.post(paths.github!.toUpperCase().replace("/HOOK/", "/hook/"), {
      headers: github(push, "push"),
      body: push,
    });
    expect(res.status).toBe(404);
  });

  test("oversized chunked body is cut off while reading", async () => {
    const chunk = new Uint8Array(512 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than the cap; the server must answer before all of it is sent.
        if (sent++ > 64) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await fetch(stack.fluxhook.receiverUrl + paths.github, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect((await res.json()).reason).toBe("request body is larger than 3145728 bytes");
    expect(sent).toBeLessThan(64);
  });

  test("an oversized body to an unknown path is a 404, answered without reading it (Flux: 413)", async () => {
    const res = await fetch(`${stack.fluxhook.receiverUrl}/hook/${"0".repeat(64)}`, {
      method: "POST",
      body: "a".repeat(3 * 1024 * 1024 + 1),
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-length")).toBe("50");
    expect(await res.json()).toEqual({ status: 404, reason: "no receiver at this path" });
  });

  test("responses never echo the token, a signature or the Secret's name", async () => {
    const sig = signature(TOKEN, push);
    const res = await stack.post(paths.github!, {
      headers: github(push, "push", { "X-Hub-Signature-256": `${sig.slice(0, -2)}00` }),
      body: push,
    });
    const text = JSON.stringify(res.body);
    for (const secret of [TOKEN, sig.slice(7), SECRET_NAME, paths.github!.slice(6)]) expect(text).not.toContain(secret);
  });

  test("the server still serves after every refusal", async () => {
    const res = await stack.post(paths.github!, { headers: github(push, "push"), body: push });
    expect(res.status).toBe(200);
  });
});
