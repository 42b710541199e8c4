/**
 * The built bundle, run with `node` as the runner runs it, delivering to local receivers that
 * check what they get with their own crypto (see harness.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  ACTION_NODE,
  events,
  fluxPath,
  githubCheck,
  leaks,
  makePki,
  maskedValues,
  opensslSignature,
  runAction,
  startConnectProxy,
  startReceiver,
  type Pki,
  type ReceivedRequest,
} from "./harness";
import { unusedPort } from "../support/ports";
import { lowercaseNames, signature, signatureHeaders } from "../support/signer";

const TOKEN = "s3cr3t-receiver-token";
const RECEIVER = "app-receiver";
const NAMESPACE = "flux-apps";
const PATH = fluxPath(TOKEN, RECEIVER, NAMESPACE);
const DIGEST = PATH.slice("/hook/".length);
const SECRETS = [TOKEN, DIGEST];

/** A Flux-like github receiver: 404 on another path, 400 on a bad signature, else 200. */
const githubReceiver =
  (token = TOKEN, path = PATH) =>
  (req: ReceivedRequest) => {
    if (req.path !== path) return new Response(null, { status: 404 });
    const problem = githubCheck(token, req);
    return problem ? Response.json({ reason: problem }, { status: 400 }) : new Response(null, { status: 200 });
  };

const byAddress = (address: string, extra: Record<string, string> = {}) => ({
  token: TOKEN,
  address,
  receiver: RECEIVER,
  namespace: NAMESPACE,
  ...extra,
});

describe("the runtime", () => {
  // action.yml says node24: every test of this file runs the bundle on it (see node-versions.ts).
  test(`the bundle runs on Node 24 (${ACTION_NODE.version})`, () => {
    if (!ACTION_NODE.exact) console.log("note: Node 24 not found; the bundle ran on the machine's node");
    expect(ACTION_NODE.version).toStartWith(ACTION_NODE.exact ? "v24." : "v");
  });
});

describe("real events, delivered from the bundle", () => {
  const payloads = events();
  // The runner writes the event file itself; give push a non-ASCII commit message so a
  // string-length Content-Length or a re-encoding would break the signature.
  const push = {
    ...payloads.push,
    head_commit: { ...(payloads.push.head_commit as object), message: "fix: café ☕ — naïve" },
  };
  test.each([
    { eventName: "push", event: push, header: "push" },
    { eventName: "registry_package", event: payloads.registry_package, header: "package" },
    { eventName: "release", event: payloads.release, header: "release" },
    { eventName: "workflow_dispatch", event: payloads.workflow_dispatch, header: "workflow_dispatch" },
  ])("$eventName is sent as $header, byte for byte, signed", async ({ eventName, event, header }) => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({ eventName, event, inputs: byAddress(receiver.url) });

    expect(run.exitCode).toBe(0);
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0] as ReceivedRequest;
    expect(req.method).toBe("POST");
    expect(req.path).toBe(PATH);
    expect(Buffer.from(req.body).equals(Buffer.from(run.eventBytes))).toBe(true);
    expect(req.headers).toMatchObject({
      "content-type": "application/json",
      "content-length": String(run.eventBytes.byteLength),
      "x-github-event": header,
      "x-github-delivery": run.outputs["delivery-id"] ?? "",
      "x-github-hook-installation-target-type": "repository",
      "x-github-hook-installation-target-id": "123456789",
      ...lowercaseNames(signatureHeaders("github", TOKEN, run.eventBytes)),
    });
    expect(req.headers["user-agent"]).toMatch(/^GitHub-Hookshot\/[0-9a-f]{7}$/);
    expect(req.headers["x-github-hook-id"]).toMatch(/^\d{9}$/);
    expect(req.headers).not.toHaveProperty("x-github-enterprise-host");
    expect(run.outputs).toEqual({
      status: "200",
      "delivery-id": expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      attempts: "1",
      response: "",
      url: `${receiver.url}/hook/***`,
      results: JSON.stringify([
        { receiver: `${NAMESPACE}/${RECEIVER}`, status: 200, "delivery-id": run.outputs["delivery-id"], attempts: 1 },
      ]),
    });
    expect(run.summary).toContain(`${NAMESPACE}/${RECEIVER}`);
    expect(run.summary).toContain(run.outputs["delivery-id"] ?? "missing");
    expect(leaks(run, SECRETS)).toEqual([]);
    expect(maskedValues(run.stdout)).toEqual(expect.arrayContaining([TOKEN, DIGEST]));
  });

  test("the signature checks out with openssl too", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({ eventName: "push", event: push, inputs: byAddress(receiver.url) });
    expect(run.exitCode).toBe(0);
    const req = receiver.requests[0] as ReceivedRequest;
    expect(req.headers["x-hub-signature-256"]).toBe(opensslSignature("sha256", TOKEN, req.body));
    expect(req.headers["x-hub-signature"]).toBe(opensslSignature("sha1", TOKEN, req.body));
  });

  test("secrets are masked before the first line of output", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({ inputs: byAddress(receiver.url, { token: `${TOKEN}\n` }) });
    expect(run.exitCode).toBe(0);
    const lines = run.stdout.split("\n").filter((l) => l !== "");
    const firstOther = lines.findIndex((l) => !l.startsWith("::add-mask::"));
    expect(maskedValues(lines.slice(0, firstOther).join("\n"))).toEqual(
      expect.arrayContaining([`${TOKEN}\n`, TOKEN, DIGEST, `${receiver.url}${PATH}`]),
    );
    // the trimmed token signs, with a warning about the whitespace
    expect(run.stdout).toContain("::warning::The token had leading or trailing whitespace");
    expect(leaks(run, SECRETS)).toEqual([]);
  });
});

describe("delivery behaviour", () => {
  test("form content type: payload=<urlencoded json>, signed over the whole form body", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({ inputs: byAddress(receiver.url, { "content-type": "form" }) });
    expect(run.exitCode).toBe(0);
    const req = receiver.requests[0] as ReceivedRequest;
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const form = new URLSearchParams(new TextDecoder().decode(req.body));
    expect([...form.keys()]).toEqual(["payload"]);
    expect(form.get("payload")).toBe(new TextDecoder().decode(run.eventBytes));
    expect(req.headers["x-hub-signature-256"]).toBe(signature(TOKEN, req.body));
  });

  test("503, 503, 200: three attempts with one delivery id and one signature", async () => {
    await using receiver = startReceiver({
      respond: (req, n) =>
        n < 2 ? new Response("busy", { status: 503, headers: { "Retry-After": "0" } }) : githubReceiver()(req),
    });
    const run = await runAction({ url: `${receiver.url}${PATH}`, inputs: { token: TOKEN } });
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({ status: "200", attempts: "3" });
    expect(receiver.requests).toHaveLength(3);
    const ids = new Set(receiver.requests.map((r) => r.headers["x-github-delivery"]));
    const sigs = new Set(receiver.requests.map((r) => r.headers["x-hub-signature-256"]));
    expect([ids.size, sigs.size]).toEqual([1, 1]);
    expect(leaks(run, SECRETS)).toEqual([]);
  });

  test("a 200 whose body stalls past the timeout counts as delivered, not sent again", async () => {
    await using receiver = startReceiver({
      respond: () =>
        new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"reason":"annot')) }), {
          status: 200,
        }),
    });
    const run = await runAction({
      url: `${receiver.url}${PATH}`,
      inputs: { token: TOKEN, "timeout-seconds": "1", retries: "2" },
    });
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({ status: "200", attempts: "1" });
    expect(receiver.requests).toHaveLength(1);
  });

  test("an attempt that times out is sent again, with the same delivery id", async () => {
    await using receiver = startReceiver({
      respond: (req, n) => (n < 1 ? new Promise<Response>(() => {}) : githubReceiver()(req)),
    });
    const run = await runAction({
      url: `${receiver.url}${PATH}`,
      inputs: { token: TOKEN, "timeout-seconds": "1", retries: "2" },
    });
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({ status: "200", attempts: "2" });
    expect(new Set(receiver.requests.map((r) => r.headers["x-github-delivery"])).size).toBe(1);
  });

  test("503 without Retry-After waits the backoff, then succeeds", async () => {
    await using receiver = startReceiver({
      respond: (req, n) => (n < 1 ? new Response(null, { status: 503 }) : githubReceiver()(req)),
    });
    const run = await runAction({ url: `${receiver.url}${PATH}`, inputs: { token: TOKEN } });
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({ status: "200", attempts: "2" });
    expect(run.stdout).toMatch(/Retrying in \d\.\d s\./);
  });

  test.each([
    { failOnError: "true", exitCode: 1, command: "::error::" },
    { failOnError: "false", exitCode: 0, command: "::warning::" },
  ])("400 with fail-on-error $failOnError", async ({ failOnError, exitCode, command }) => {
    await using receiver = startReceiver({ respond: githubReceiver("another-token") });
    const run = await runAction({ inputs: byAddress(receiver.url, { "fail-on-error": failOnError }) });
    expect(run.exitCode).toBe(exitCode);
    expect(run.outputs).toMatchObject({ status: "400", attempts: "1", response: '{"reason":"signature mismatch"}' });
    expect(receiver.requests).toHaveLength(1); // a 4xx is never retried
    const message = run.stdout.split("\n").find((l) => l.startsWith(command)) ?? "";
    expect(message).toContain("HTTP 400");
    expect(message).toContain('The receiver said: "signature mismatch"');
    expect(message).toContain("spec.events");
    expect(leaks(run, SECRETS)).toEqual([]);
  });

  test("404 says to check the token, name and namespace", async () => {
    await using receiver = startReceiver({ respond: () => new Response("404 page not found\n", { status: 404 }) });
    const run = await runAction({ inputs: byAddress(receiver.url) });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(`receiver "${RECEIVER}" and namespace "${NAMESPACE}"`);
    expect(run.stdout).toContain(`kubectl -n ${NAMESPACE} get receiver ${RECEIVER}`);
    expect(receiver.requests).toHaveLength(1);
  });

  test("a redirect is not followed", async () => {
    await using receiver = startReceiver({
      respond: () => new Response(null, { status: 308, headers: { Location: `https://elsewhere.example${PATH}` } }),
    });
    const run = await runAction({ inputs: byAddress(receiver.url) });
    expect(run.exitCode).toBe(1);
    expect(receiver.requests).toHaveLength(1);
    expect(run.outputs).toMatchObject({ status: "308", attempts: "1" });
    expect(run.stdout).toContain("redirected (308) to https://elsewhere.example/hook/***");
    expect(leaks(run, SECRETS)).toEqual([]);
  });

  test("connection refused points at the network path", async () => {
    const port = unusedPort();
    const run = await runAction({ inputs: byAddress(`http://127.0.0.1:${port}`, { retries: "0" }) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs).toMatchObject({ status: "", attempts: "1" });
    expect(run.stdout).toContain("ECONNREFUSED");
    expect(run.stdout).toContain("Check the network path");
    expect(leaks(run, SECRETS)).toEqual([]);
  });

  test("dry-run prints the request, masked, and sends nothing", async () => {
    await using receiver = startReceiver();
    const run = await runAction({ inputs: byAddress(receiver.url, { "dry-run": "true" }) });
    expect(run.exitCode).toBe(0);
    expect(receiver.requests).toHaveLength(0);
    expect(run.outputs).toMatchObject({ status: "", attempts: "0", url: `${receiver.url}/hook/***` });
    expect(run.stdout).toContain(`POST ${receiver.url}/hook/***`);
    expect(run.stdout).toContain("X-Hub-Signature-256: sha256=<redacted>");
    expect(run.summary).toContain("dry run");
    const digest = signature(TOKEN, run.eventBytes).slice("sha256=".length);
    expect(leaks(run, [...SECRETS, digest])).toEqual([]);
  });

  test("invalid inputs fail with every problem listed, before any request", async () => {
    const run = await runAction({
      inputs: { token: TOKEN, address: "https://x.example", url: "https://x.example/hook/abc", retries: "many" },
    });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain("Set either `url`, or `address`");
    expect(run.stdout).toContain("`retries` must be a whole number");
    expect(leaks(run, [TOKEN, "https://x.example/hook/abc"])).toEqual([]);
  });
});

describe("payload and event inputs", () => {
  test("inline payload and event: sent byte for byte, under that name", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const payload = '{ "image": "ghcr.io/octo-org/webapp:1.2.3",\n  "note": "é" }\n';
    const run = await runAction({ inputs: byAddress(receiver.url, { payload, event: "package" }) });
    expect(run.exitCode).toBe(0);
    const req = receiver.requests[0] as ReceivedRequest;
    expect(new TextDecoder().decode(req.body)).toBe(payload);
    expect(req.headers["x-github-event"]).toBe("package");
  });

  test.each<{ name: string; inputs: Record<string, string>; env: Record<string, string>; error: string }>([
    {
      name: "missing payload-file",
      inputs: { "payload-file": "/nonexistent/p.json" },
      env: {},
      error: 'Cannot read the payload from "/nonexistent/p.json" (payload-file): ENOENT.',
    },
    {
      name: "a payload that is not JSON",
      inputs: { payload: "{oops" },
      env: {},
      error: "Cannot send the payload: the payload is not valid JSON",
    },
    {
      name: "missing ca-file",
      inputs: { "ca-file": "/nonexistent/ca.pem" },
      env: {},
      error: 'Cannot read `ca-file` from "/nonexistent/ca.pem" (ENOENT).',
    },
    {
      name: "an unreadable client certificate and key, both named",
      inputs: { "client-cert": "/nonexistent/c.pem", "client-key": "/nonexistent/k.pem" },
      env: {},
      error:
        'Invalid inputs:%0A  - Cannot read `client-cert` from "/nonexistent/c.pem" (ENOENT).%0A' +
        '  - Cannot read `client-key` from "/nonexistent/k.pem" (ENOENT).',
    },
    {
      name: "an unusable proxy",
      inputs: {},
      env: { HTTP_PROXY: "socks5://proxy:1080" },
      error: "HTTP_PROXY is set but is not an http:// or https:// proxy URL.",
    },
  ])("$name fails before sending", async ({ inputs, env, error }) => {
    await using receiver = startReceiver();
    const run = await runAction({ inputs: byAddress(`http://receiver.fluxhook.test:${receiver.port}`, inputs), env });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(`::error::${error}`);
    expect(receiver.requests).toHaveLength(0);
    expect(leaks(run, SECRETS)).toEqual([]);
  });
});

describe("problems found before sending", () => {
  test("an input error, an unreadable file and a bad proxy fail the step in one error that lists all three", async () => {
    await using receiver = startReceiver();
    const run = await runAction({
      inputs: byAddress(`http://receiver.fluxhook.test:${receiver.port}`, {
        retries: "many",
        "payload-file": "/nonexistent/p.json",
      }),
      env: { HTTP_PROXY: "socks5://proxy:1080" },
    });
    expect(run.exitCode).toBe(1);
    expect(run.stdout.split("\n").filter((line) => line.startsWith("::error::"))).toEqual([
      "::error::Invalid inputs:%0A  - Input `retries` must be a whole number from 0 to 10." +
        "%0A  - HTTP_PROXY is set but is not an http:// or https:// proxy URL." +
        '%0A  - Cannot read the payload from "/nonexistent/p.json" (payload-file): ENOENT.',
    ]);
    expect(receiver.requests).toHaveLength(0);
    expect(leaks(run, SECRETS)).toEqual([]);
  });
});

describe("receiver types", () => {
  /** Every header that carries a receiver type's authentication or event. */
  const AUTH_HEADERS = [
    "x-hub-signature-256",
    "x-hub-signature",
    "x-signature",
    "x-gitlab-token",
    "x-gitlab-event",
    "x-event-key",
    "authorization",
  ];
  const cases: Array<{ type: string; expected: (body: Uint8Array) => Record<string, string> }> = [
    { type: "generic-hmac", expected: (body) => lowercaseNames(signatureHeaders("generic-hmac", TOKEN, body)) },
    { type: "gitlab", expected: () => ({ "x-gitlab-token": TOKEN, "x-gitlab-event": "push" }) },
    {
      type: "bitbucket",
      expected: (body) => ({ ...lowercaseNames(signatureHeaders("bitbucket", TOKEN, body)), "x-event-key": "push" }),
    },
    { type: "harbor", expected: () => ({ authorization: TOKEN }) },
    { type: "generic", expected: () => ({}) },
  ];
  test.each(cases)("$type: its own authentication headers and no other", async ({ type, expected }) => {
    await using receiver = startReceiver();
    const run = await runAction({ inputs: byAddress(receiver.url, { "receiver-type": type }) });
    expect(run.exitCode).toBe(0);
    const req = receiver.requests[0] as ReceivedRequest;
    const sent = Object.fromEntries(
      AUTH_HEADERS.flatMap((name) => (name in req.headers ? [[name, req.headers[name]]] : [])),
    );
    expect(sent).toEqual(expected(run.eventBytes));
    expect(leaks(run, SECRETS)).toEqual([]);
  });
});

describe("private networks: TLS and proxies", () => {
  let pki: Pki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.cleanup());

  test("TLS receiver with a private CA through ca-file", async () => {
    await using receiver = startReceiver({
      respond: githubReceiver(),
      tls: { cert: pki.serverCert, key: pki.serverKey },
    });
    const run = await runAction({ inputs: byAddress(receiver.url, { "ca-file": pki.caFile }) });
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(run.outputs.status).toBe("200");
  });

  // The README's recipe for a CA that is only in the OS trust store; SSL_CERT_FILE stands in for
  // that store here (OpenSSL reads the system store from it), so the machine's store is untouched.
  test.skipIf(!ACTION_NODE.exact)(
    "a CA only in the OS trust store: NODE_OPTIONS=--use-system-ca (Node 24)",
    async () => {
      await using receiver = startReceiver({
        respond: githubReceiver(),
        tls: { cert: pki.serverCert, key: pki.serverKey },
      });
      const trusted = await runAction({
        inputs: byAddress(receiver.url),
        env: { NODE_OPTIONS: "--use-system-ca", SSL_CERT_FILE: pki.caFile },
      });
      expect(trusted.exitCode).toBe(0);
      const without = await runAction({ inputs: byAddress(receiver.url), env: { SSL_CERT_FILE: pki.caFile } });
      expect(without.exitCode).toBe(1);
    },
  );

  test("an untrusted certificate fails at once with a hint about ca-file", async () => {
    await using receiver = startReceiver({
      respond: githubReceiver(),
      tls: { cert: pki.serverCert, key: pki.serverKey },
    });
    const run = await runAction({ inputs: byAddress(receiver.url) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.attempts).toBe("1"); // a trust failure does not change on retry
    expect(receiver.requests).toHaveLength(0);
    expect(run.stdout).toContain("give its CA with `ca-file`");
  });

  test("insecure-skip-tls-verify delivers with a warning", async () => {
    await using receiver = startReceiver({
      respond: githubReceiver(),
      tls: { cert: pki.serverCert, key: pki.serverKey },
    });
    const run = await runAction({ inputs: byAddress(receiver.url, { "insecure-skip-tls-verify": "true" }) });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain("::warning::insecure-skip-tls-verify is true");
  });

  test("mTLS: inline CA, client certificate from a file and key inline", async () => {
    await using receiver = startReceiver({
      respond: githubReceiver(),
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true },
    });
    const withCert = await runAction({
      inputs: byAddress(receiver.url, { ca: pki.ca, "client-cert": pki.clientCertFile, "client-key": pki.clientKey }),
    });
    expect(withCert.exitCode).toBe(0);
    expect(withCert.outputs.status).toBe("200");
    const keyBody = pki.clientKey.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"));
    expect(leaks(withCert, [...SECRETS, ...keyBody])).toEqual([]);

    // TLS 1.3: the receiver closes the connection after the handshake; not retried, and the hint names the inputs.
    const without = await runAction({ inputs: byAddress(receiver.url, { ca: pki.ca }) });
    expect(without.exitCode).toBe(1);
    expect(without.outputs.attempts).toBe("1");
    expect(receiver.requests).toHaveLength(1);
    expect(without.stdout).toContain("set `client-cert` and `client-key`");
  });

  test("through an HTTP CONNECT proxy from HTTPS_PROXY, to a TLS receiver only the proxy can resolve", async () => {
    await using receiver = startReceiver({
      respond: githubReceiver(),
      tls: { cert: pki.serverCert, key: pki.serverKey },
    });
    await using proxy = await startConnectProxy();
    const proxyUrl = new URL(proxy.url);
    proxyUrl.username = "ci";
    proxyUrl.password = "pr0xy-p@ss";
    const address = `https://receiver.fluxhook.test:${receiver.port}`;
    const run = await runAction({
      inputs: byAddress(address, { "ca-file": pki.caFile }),
      env: { HTTPS_PROXY: proxyUrl.href, NO_PROXY: "localhost,.corp.internal,10.0.0.0/8" },
    });
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(proxy.tunnels).toEqual([
      { authority: `receiver.fluxhook.test:${receiver.port}`, proxyAuthorization: `Basic ${btoa("ci:pr0xy-p@ss")}` },
    ]);
    expect(receiver.requests).toHaveLength(1);
    expect(run.stdout).toContain(`Route: through the HTTPS_PROXY proxy http://${proxyUrl.host}`);
    expect(leaks(run, [...SECRETS, "pr0xy-p@ss", "pr0xy-p%40ss"])).toEqual([]);
  });

  test("HTTP_PROXY for an http receiver: also a CONNECT tunnel", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    await using proxy = await startConnectProxy();
    const run = await runAction({
      inputs: byAddress(`http://receiver.fluxhook.test:${receiver.port}`),
      env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: "http://127.0.0.1:9" },
    });
    expect(run.exitCode).toBe(0);
    expect(proxy.tunnels.map((t) => t.authority)).toEqual([`receiver.fluxhook.test:${receiver.port}`]);
  });

  test("a NO_PROXY entry sends its hosts direct, past the proxy", async () => {
    await using proxy = await startConnectProxy();
    // Only the proxy can resolve this name: going direct, the runner cannot, which shows the bypass.
    const run = await runAction({
      inputs: byAddress("http://receiver.fluxhook.test:8080", { retries: "0", "timeout-seconds": "5" }),
      env: { HTTP_PROXY: proxy.url, NO_PROXY: "example.com, .fluxhook.test" },
    });
    expect(proxy.tunnels).toEqual([]);
    expect(run.stdout).toContain("Route: direct (NO_PROXY)");
    expect(run.exitCode).toBe(1);
    // NXDOMAIN at once on most machines; a resolver that never answers hits the timeout instead.
    expect(run.stdout).toMatch(/This runner cannot resolve "receiver\.fluxhook\.test"|within 5 s/);
  });
});

describe("extra headers, for a gateway in front of the receiver", () => {
  const CF_SECRET = "cf-access-client-secret-0123456789";
  const BASIC = `Basic ${btoa("ci:gateway-pass-987")}`;

  test("sent as given, after the signature; credential values masked and redacted", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const headers = `CF-Access-Client-Id: 1a2b.access\nCF-Access-Client-Secret: ${CF_SECRET}\nAuthorization: ${BASIC}`;
    const run = await runAction({ inputs: byAddress(receiver.url, { headers }) });
    expect(run.exitCode).toBe(0);
    expect(receiver.requests[0]?.headers).toMatchObject({
      "cf-access-client-id": "1a2b.access",
      "cf-access-client-secret": CF_SECRET,
      authorization: BASIC,
      "x-hub-signature-256": signature(TOKEN, run.eventBytes),
    });
    expect(maskedValues(run.stdout)).toEqual(expect.arrayContaining([CF_SECRET, BASIC]));
    expect(run.stdout).toContain(
      "Extra headers: CF-Access-Client-Id: 1a2b.access, CF-Access-Client-Secret: <redacted>",
    );
    expect(leaks(run, [...SECRETS, CF_SECRET, BASIC])).toEqual([]);
  });

  test("a dry run shows them redacted", async () => {
    await using receiver = startReceiver();
    const run = await runAction({
      inputs: byAddress(receiver.url, { headers: `X-Api-Key: ${CF_SECRET}`, "dry-run": "true" }),
    });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain("X-Api-Key: <redacted>");
    expect(leaks(run, [...SECRETS, CF_SECRET])).toEqual([]);
  });

  test("overriding the signature is an error, before any request", async () => {
    await using receiver = startReceiver();
    const run = await runAction({ inputs: byAddress(receiver.url, { headers: "X-Hub-Signature-256: sha256=00" }) });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain("cannot set X-Hub-Signature-256");
    expect(receiver.requests).toHaveLength(0);
  });
});

describe("GitHub's header set", () => {
  test("user-agent overrides GitHub-Hookshot/<id>", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({ inputs: byAddress(receiver.url, { "user-agent": "GitHub-Hookshot/abc1234" }) });
    expect(run.exitCode).toBe(0);
    expect(receiver.requests[0]?.headers["user-agent"]).toBe("GitHub-Hookshot/abc1234");
  });

  test("on GitHub Enterprise Server: X-GitHub-Enterprise-Host (and -Version when known)", async () => {
    await using receiver = startReceiver({ respond: githubReceiver() });
    const run = await runAction({
      inputs: byAddress(receiver.url),
      env: { GITHUB_SERVER_URL: "https://ghes.corp.internal", GITHUB_ENTERPRISE_VERSION: "3.17.2" },
    });
    expect(run.exitCode).toBe(0);
    expect(receiver.requests[0]?.headers).toMatchObject({
      "x-github-enterprise-host": "ghes.corp.internal",
      "x-github-enterprise-version": "3.17.2",
    });
  });
});

describe("edge cases: a socks proxy in a dry run, a long Retry-After, a long answer, a gateway route", () => {
  test("a dry run refuses the socks5 proxy the real run refuses", async () => {
    await using receiver = startReceiver();
    for (const dryRun of ["true", "false"]) {
      const run = await runAction({
        inputs: byAddress(`http://receiver.fluxhook.test:${receiver.port}`, { "dry-run": dryRun }),
        env: { HTTP_PROXY: "socks5://proxy:1080" },
      });
      expect(run.exitCode).toBe(1);
      expect(run.stdout).toContain("::error::HTTP_PROXY is set but is not an http:// or https:// proxy URL.");
    }
    expect(receiver.requests).toHaveLength(0);
  });

  test("a Retry-After beyond 60 s ends the delivery without advising more retries", async () => {
    await using receiver = startReceiver({
      respond: () => new Response(null, { status: 503, headers: { "Retry-After": "120" } }),
    });
    const run = await runAction({ inputs: byAddress(receiver.url) });
    expect(run.exitCode).toBe(1);
    expect(receiver.requests).toHaveLength(1);
    const error = run.stdout.split("\n").find((l) => l.startsWith("::error::")) ?? "";
    expect(error).toContain("later than the 60 s this action waits");
    expect(error).not.toContain("retries");
  });

  test("the truncation note gives the answer's size, not the read cap", async () => {
    const big = "x".repeat(300_000);
    await using receiver = startReceiver({ respond: () => new Response(big, { status: 500 }) });
    const run = await runAction({ inputs: byAddress(receiver.url, { retries: "0" }) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.response).toEndWith("… (truncated: the answer has 300000 bytes)");
  });

  test("a url without /hook/: its path is masked too", async () => {
    const route = "/gateway/route-s3cr3t-4711";
    await using receiver = startReceiver({ respond: () => new Response(`no such route ${route}`, { status: 404 }) });
    const run = await runAction({ url: `${receiver.url}${route}`, inputs: { token: TOKEN } });
    expect(run.exitCode).toBe(1);
    expect(maskedValues(run.stdout)).toContain(route);
    expect(leaks(run, [TOKEN, route, route.slice(1)])).toEqual([]);
  });
});
