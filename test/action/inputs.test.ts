import { describe, expect, test } from "bun:test";
import { maskUrl } from "../../action/destination";
import { parseInputs, type ActionConfig } from "../../action/inputs";
import { Input, type Env, type InputName } from "../../action/vocabulary";

// Vector from Flux's spec (checked there with `printf '%s' … | sha256sum`), not computed with shared/.
const DIGEST = "df3ebadde655d58cd8236886baaaca95ff9c420f4c89e11a5d91965baa0cdf0f"; // test-token + github-receiver + flux-system
const ENV: Env = { GITHUB_EVENT_NAME: "push", GITHUB_EVENT_PATH: "/runner/event.json", GITHUB_REPOSITORY_ID: "42" };
const BASE = { token: "test-token", address: "https://flux-webhook.corp.internal", receiver: "github-receiver" };

const getter =
  (inputs: Partial<Record<InputName, string>>) =>
  (name: InputName): string =>
    inputs[name] ?? "";

const parse = (inputs: Partial<Record<InputName, string>>, env: Env = ENV) => parseInputs(getter(inputs), env);
const config = (inputs: Partial<Record<InputName, string>>, env: Env = ENV): ActionConfig => {
  const result = parse(inputs, env);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.config;
};

describe("where to deliver", () => {
  test.each([
    {
      name: "address + receiver, default namespace",
      inputs: BASE,
      url: `https://flux-webhook.corp.internal/hook/${DIGEST}`,
    },
    {
      name: "address with a path prefix and a trailing slash",
      inputs: { ...BASE, address: "https://gw.corp.internal/flux/" },
      url: `https://gw.corp.internal/flux/hook/${DIGEST}`,
    },
    {
      name: "explicit namespace",
      inputs: { token: "token", address: "http://10.0.0.5:9292", receiver: "test-receiver", namespace: "default" },
      url: "http://10.0.0.5:9292/hook/c0546ea4a2a81aacb29ba4f488ccf72a588f481b7418f33a1747e7c8a0991eec",
    },
    { name: "url", inputs: { token: "t", url: "https://h.example/hook/abc" }, url: "https://h.example/hook/abc" },
    // the runner always sets the namespace default; with url it is ignored
    {
      name: "url with the default namespace",
      inputs: { token: "t", url: "https://h.example/x", namespace: "flux-system" },
      url: "https://h.example/x",
    },
  ])("$name", ({ inputs, url }) => {
    expect(config(inputs).destinations.map((d) => d.url)).toEqual([url]);
  });

  test.each([
    { name: "neither", inputs: { token: "t" }, error: "Set where to deliver" },
    { name: "both", inputs: { ...BASE, url: "https://h.example/hook/abc" }, error: "Set either `url`, or `address`" },
    { name: "url and receiver", inputs: { token: "t", url: "https://h/x", receiver: "r" }, error: "not both" },
    {
      name: "address alone",
      inputs: { token: "t", address: "https://h" },
      error: "`receiver` (the Receiver's name) is required",
    },
    { name: "receiver alone", inputs: { token: "t", receiver: "r" }, error: "`address` is required" },
    { name: "url not http", inputs: { token: "t", url: "ftp://h/x" }, error: "absolute http:// or https:// URL" },
    { name: "url relative", inputs: { token: "t", url: "/hook/abc" }, error: "absolute http:// or https:// URL" },
    { name: "url with credentials", inputs: { token: "t", url: "https://u:p@h/hook/x" }, error: "user:password@" },
    { name: "address with a query", inputs: { ...BASE, address: "https://h/?a=b" }, error: "Input `address` must be" },
    { name: "uppercase receiver", inputs: { ...BASE, receiver: "GitHub" }, error: "Kubernetes object name" },
    { name: "bad namespace", inputs: { ...BASE, namespace: "flux.system" }, error: "Kubernetes namespace name" },
  ])("$name is refused", ({ inputs, error }) => {
    const result = parse(inputs);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join("\n")).toContain(error);
  });

  test("an error never echoes the url", () => {
    const result = parse({ token: "t", url: "gopher://h/hook/very-secret-digest" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join("\n")).not.toContain("very-secret-digest");
  });

  test("an error never echoes credentials in the address", () => {
    const result = parse({ ...BASE, address: "https://ci:hunter2@h.example" });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors.join("\n")).toContain("Input `address` must not contain user:password@");
      expect(result.errors.join("\n")).not.toContain("hunter2");
    }
  });
});

describe("token", () => {
  test.each([
    { name: "as given", raw: "abc", token: "abc", warned: false, secrets: ["abc"] },
    { name: "trailing newline", raw: "abc\n", token: "abc", warned: true, secrets: ["abc\n", "abc"] },
    {
      name: "surrounding spaces and CRLF",
      raw: "  abc\r\n",
      token: "abc",
      warned: true,
      secrets: ["  abc\r\n", "abc"],
    },
    // only ASCII whitespace goes: an NBSP may be part of a token
    { name: "NBSP kept", raw: "abc\u00a0", token: "abc\u00a0", warned: false, secrets: ["abc\u00a0"] },
  ])("$name", ({ raw, token, warned, secrets }) => {
    const c = config({ ...BASE, token: raw });
    expect(c.token).toBe(token);
    expect(c.warnings.some((w) => w.includes("whitespace"))).toBe(warned);
    expect(c.secrets).toEqual(expect.arrayContaining(secrets));
  });

  test("required", () => {
    const result = parse({ ...BASE, token: " \n" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContain("Input `token` is required: the Receiver's Secret token.");
  });

  test("secrets cover the token, digest and url, also when other inputs are wrong", () => {
    expect(config(BASE).secrets).toEqual(
      expect.arrayContaining(["test-token", DIGEST, `https://flux-webhook.corp.internal/hook/${DIGEST}`]),
    );
    const bad = parse({ ...BASE, retries: "x" });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.secrets).toEqual(expect.arrayContaining(["test-token", DIGEST]));
    const badUrl = parseInputs(getter({ token: "t", url: "ftp://h/hook/d1g" }), ENV);
    expect(badUrl.ok ? [] : badUrl.secrets).toContain("ftp://h/hook/d1g");
  });

  test.each(["gitlab", "harbor"])("%s refuses a token that cannot be a header value", (type) => {
    const result = parse({ ...BASE, token: "a\nb", "receiver-type": type });
    expect(result.ok).toBe(false);
  });
});

describe("event", () => {
  test.each([
    { name: "push", env: { ...ENV, GITHUB_EVENT_NAME: "push" }, input: "", event: "push", from: "GITHUB_EVENT_NAME" },
    {
      name: "registry_package → package",
      env: { ...ENV, GITHUB_EVENT_NAME: "registry_package" },
      input: "",
      event: "package",
      from: "GITHUB_EVENT_NAME",
    },
    {
      name: "pull_request_target → pull_request",
      env: { ...ENV, GITHUB_EVENT_NAME: "pull_request_target" },
      input: "",
      event: "pull_request",
      from: "GITHUB_EVENT_NAME",
    },
    {
      name: "release",
      env: { ...ENV, GITHUB_EVENT_NAME: "release" },
      input: "",
      event: "release",
      from: "GITHUB_EVENT_NAME",
    },
    {
      name: "input wins",
      env: { ...ENV, GITHUB_EVENT_NAME: "registry_package" },
      input: "registry_package",
      event: "registry_package",
      from: "input",
    },
    { name: "GitLab-style name", env: ENV, input: "Push Hook", event: "Push Hook", from: "input" },
  ])("$name", ({ env, input, event, from }) => {
    const c = config({ ...BASE, event: input }, env);
    expect([c.event, c.eventFrom]).toEqual([event, from]);
  });

  test("required outside a workflow", () => {
    const result = parse(BASE, { GITHUB_EVENT_PATH: "/e.json" });
    expect(result.ok ? [] : result.errors).toContain("Input `event` is required when GITHUB_EVENT_NAME is not set.");
  });
});

describe("payload", () => {
  test.each([
    {
      name: "event file by default",
      inputs: BASE,
      payload: { kind: "file", path: "/runner/event.json", from: "GITHUB_EVENT_PATH" },
    },
    {
      name: "payload-file",
      inputs: { ...BASE, "payload-file": "p.json" },
      payload: { kind: "file", path: "p.json", from: "payload-file" },
    },
    // kept byte for byte, trailing newline included
    { name: "inline", inputs: { ...BASE, payload: '{"a":1}\n' }, payload: { kind: "inline", text: '{"a":1}\n' } },
  ])("$name", ({ inputs, payload }) => {
    expect(config(inputs).payload).toEqual(payload as never);
  });

  test.each([
    {
      name: "both",
      inputs: { ...BASE, payload: "{}", "payload-file": "p.json" },
      env: ENV,
      error: "Set either `payload` or `payload-file`",
    },
    { name: "none outside a workflow", inputs: BASE, env: { GITHUB_EVENT_NAME: "push" }, error: "No payload" },
  ])("$name is refused", ({ inputs, env, error }) => {
    const result = parse(inputs, env);
    expect(result.ok ? "" : result.errors.join("\n")).toContain(error);
  });
});

describe("options", () => {
  test("defaults", () => {
    const c = config(BASE);
    expect({
      receiverType: c.receiverType,
      contentType: c.contentType,
      timeoutMs: c.timeoutMs,
      retries: c.retries,
      failOnError: c.failOnError,
      dryRun: c.dryRun,
      tls: c.tls,
      targets: c.destinations.map((d) => d.target),
    }).toEqual({
      receiverType: "github",
      contentType: "json",
      timeoutMs: 10_000,
      retries: 3,
      failOnError: true,
      dryRun: false,
      tls: {
        ca: [],
        clientCert: undefined,
        clientKey: undefined,
        insecureSkipVerify: false,
        nodeExtraCaCerts: undefined,
      },
      targets: [
        {
          kind: "receiver",
          address: "https://flux-webhook.corp.internal",
          receiver: "github-receiver",
          namespace: "flux-system",
        },
      ],
    });
  });

  test.each([
    { inputs: { "timeout-seconds": "2.5" }, pick: (c: ActionConfig) => c.timeoutMs, value: 2500 },
    { inputs: { retries: "0" }, pick: (c: ActionConfig) => c.retries, value: 0 },
    { inputs: { "fail-on-error": "False" }, pick: (c: ActionConfig) => c.failOnError, value: false },
    { inputs: { "dry-run": "TRUE" }, pick: (c: ActionConfig) => c.dryRun, value: true },
    { inputs: { "content-type": "form" }, pick: (c: ActionConfig) => c.contentType, value: "form" },
    { inputs: { "receiver-type": "generic-hmac" }, pick: (c: ActionConfig) => c.receiverType, value: "generic-hmac" },
    {
      inputs: { "ca-file": "/ca.pem" },
      pick: (c: ActionConfig) => c.tls.ca,
      value: [{ kind: "file", path: "/ca.pem" }],
    },
    {
      inputs: {
        "client-cert": "/c.pem",
        "client-key": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----",
      },
      pick: (c: ActionConfig) => [
        c.tls.clientCert?.kind,
        c.tls.clientKey?.kind,
        c.secrets.includes("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49"),
      ],
      value: ["file", "inline", true],
    },
  ])("$inputs", ({ inputs, pick, value }) => {
    expect(pick(config({ ...BASE, ...inputs }))).toEqual(value as never);
  });

  test.each([
    { inputs: { "timeout-seconds": "0" }, error: "`timeout-seconds`" },
    { inputs: { "timeout-seconds": "301" }, error: "`timeout-seconds`" },
    { inputs: { "timeout-seconds": "10s" }, error: "`timeout-seconds`" },
    { inputs: { retries: "1.5" }, error: "`retries`" },
    { inputs: { retries: "11" }, error: "`retries`" },
    { inputs: { "fail-on-error": "yes" }, error: "`fail-on-error` must be true or false" },
    { inputs: { "content-type": "xml" }, error: "`content-type` must be json or form" },
    {
      inputs: { "receiver-type": "gcr" },
      error: "`receiver-type` must be one of github, generic-hmac, gitlab, bitbucket, harbor, generic, generic-oidc",
    },
    { inputs: { ca: "not a pem" }, error: "`ca` must hold PEM certificates" },
    { inputs: { "client-cert": "/c.pem" }, error: "go together" },
  ])("$inputs is refused", ({ inputs, error }) => {
    const result = parse({ ...BASE, ...inputs });
    expect(result.ok ? "" : result.errors.join("\n")).toContain(error);
  });

  test("every error is reported at once", () => {
    const result = parse({ token: "", retries: "x", "content-type": "xml" }, {});
    expect(result.ok ? 0 : result.errors.length).toBe(6); // token, target, event, payload, content-type, retries
  });

  test("insecure-skip-tls-verify warns", () => {
    expect(config({ ...BASE, "insecure-skip-tls-verify": "true" }).warnings.join("\n")).toContain("not verified");
  });

  test("proxy from the environment, lowercase first, password masked", () => {
    const c = config(BASE, {
      ...ENV,
      https_proxy: "http://u:p%40ss@proxy:3128",
      HTTPS_PROXY: "http://ignored:1",
      HTTP_PROXY: "proxy:3128",
      NO_PROXY: ".corp.internal",
    });
    expect(c.proxy).toEqual({
      httpsProxy: "http://u:p%40ss@proxy:3128",
      httpProxy: "proxy:3128",
      noProxy: ".corp.internal",
    });
    expect(c.secrets).toEqual(expect.arrayContaining(["p%40ss", "p@ss"]));
  });

  test("input names are the documented ones", () => {
    expect(Object.values(Input)).toContain("insecure-skip-tls-verify");
  });
});

describe("maskUrl", () => {
  test.each([
    ["https://h.example/hook/abc", "https://h.example/hook/***"],
    ["http://10.0.0.5:9292/hook/abc?x=1", "http://10.0.0.5:9292/hook/***"],
    ["https://gw.example/flux/hook/abc", "https://gw.example/flux/hook/***"],
    ["https://h.example/webhooks/s3cret", "https://h.example/***"],
    ["https://h.example/", "https://h.example"],
    ["not a url", "***"],
  ])("%s → %s", (url, masked) => {
    expect(maskUrl(url)).toBe(masked);
  });
});

describe("several receivers", () => {
  test("one per line, name or namespace/name, each with its own path", () => {
    const c = config({ ...BASE, receiver: "github-receiver\n\n  apps/webapp \nother" });
    expect(
      c.destinations.map((d) => (d.target.kind === "receiver" ? `${d.target.namespace}/${d.target.receiver}` : "")),
    ).toEqual(["flux-system/github-receiver", "apps/webapp", "flux-system/other"]);
    expect(c.destinations[0]?.url).toBe(`https://flux-webhook.corp.internal/hook/${DIGEST}`);
    expect(new Set(c.destinations.map((d) => d.url)).size).toBe(3);
    for (const d of c.destinations) expect(c.secrets).toContain(d.url);
  });

  test.each([
    { receiver: "a\na", error: "lists flux-system/a twice" },
    { receiver: "a\nflux-system/a", error: "lists flux-system/a twice" },
    { receiver: "Apps/a", error: '"Apps/a" must start with a Kubernetes namespace name' },
    { receiver: "apps/", error: "Kubernetes object name" },
    { receiver: Array.from({ length: 21 }, (_, i) => `r${i}`).join("\n"), error: "at most 20" },
  ])("$receiver is refused", ({ receiver, error }) => {
    const result = parse({ ...BASE, receiver });
    expect(result.ok ? "" : result.errors.join("\n")).toContain(error);
  });
});

describe("generic-oidc", () => {
  test("no token needed; the path is sha256(name + namespace); Flux's default audience", () => {
    const c = config({ address: "https://h.example", receiver: "oidc", "receiver-type": "generic-oidc" });
    // printf '%s' oidcflux-system | sha256sum
    const digest = "ce6d81b00b6896c48361ca1e19ee871a29f4658bbc791c2e81e58a7965b30ed4";
    expect(c.destinations[0]?.url).toBe(`https://h.example/hook/${digest}`);
    expect(c.oidcAudience).toBe("notification-controller");
    expect(c.token).toBe("");
  });

  test("a token given anyway is ignored, with a warning, and still masked", () => {
    const c = config({ ...BASE, "receiver-type": "generic-oidc", "oidc-audience": "flux" });
    expect(c.oidcAudience).toBe("flux");
    expect(c.warnings.join("\n")).toContain("`token` is not used");
    expect(c.secrets).toContain("test-token");
  });

  test("other types have no audience", () => {
    expect(config(BASE).oidcAudience).toBeUndefined();
  });
});

describe("headers", () => {
  test("one `Name: value` per line; credential values are secrets", () => {
    const c = config({
      ...BASE,
      headers:
        "CF-Access-Client-Id: abc.access\nCF-Access-Client-Secret:  s3cr3t-value \n\nAuthorization: Basic dXNlcjpwYXNz\nX-Tenant: t1",
    });
    expect(c.extraHeaders).toEqual([
      ["CF-Access-Client-Id", "abc.access"],
      ["CF-Access-Client-Secret", "s3cr3t-value"],
      ["Authorization", "Basic dXNlcjpwYXNz"],
      ["X-Tenant", "t1"],
    ]);
    expect(c.secrets).toEqual(expect.arrayContaining(["s3cr3t-value", "Basic dXNlcjpwYXNz"]));
    expect(c.secrets).not.toContain("abc.access");
  });

  test.each([
    { headers: "X-Hub-Signature-256: sha256=00", error: "cannot set X-Hub-Signature-256" },
    { headers: "x-github-event: ping", error: "cannot set x-github-event" },
    { headers: "X-GitHub-Delivery: 1", error: "cannot set X-GitHub-Delivery" },
    { headers: "Content-Length: 1", error: "cannot set Content-Length" },
    { headers: "User-Agent: x", error: "use the `user-agent` input" },
    { headers: "Content-Type: text/plain", error: "use the `content-type` input" },
    { headers: "X-A: 1\nx-a: 2", error: "sets x-a twice" },
    { headers: "no colon here", error: "line 1: expected `Name: value`" },
    { headers: "Bad Name: v", error: "line 1: expected" },
    { headers: "X-Empty:", error: "X-Empty: the value must be printable ASCII" },
  ])("$headers is refused", ({ headers, error }) => {
    const result = parse({ ...BASE, headers });
    expect(result.ok ? "" : result.errors.join("\n")).toContain(error);
  });

  test("Authorization: free for github, the type's own for harbor and generic-oidc", () => {
    expect(parse({ ...BASE, headers: "Authorization: Basic x" }).ok).toBe(true);
    for (const type of ["harbor", "generic-oidc"]) {
      const result = parse({ ...BASE, "receiver-type": type, headers: "Authorization: Basic x" });
      expect(result.ok ? "" : result.errors.join("\n")).toContain("cannot set Authorization");
    }
  });

  test("a malformed line is not echoed (it may be a secret)", () => {
    const result = parse({ ...BASE, headers: "Authorization Bearer very-secret-value" });
    expect(result.ok ? "" : result.errors.join("\n")).not.toContain("very-secret-value");
  });
});

describe("GitHub's headers", () => {
  test("user-agent overrides the default", () => {
    expect(config({ ...BASE, "user-agent": "my-gateway-check/1" }).userAgent).toBe("my-gateway-check/1");
    expect(config(BASE).userAgent).toBeUndefined();
  });

  test.each([
    { env: { GITHUB_SERVER_URL: "https://github.com" }, enterprise: undefined },
    { env: { GITHUB_SERVER_URL: "https://octo.ghe.com" }, enterprise: undefined },
    {
      env: { GITHUB_SERVER_URL: "https://ghes.corp.internal" },
      enterprise: { host: "ghes.corp.internal", version: undefined },
    },
    {
      env: { GITHUB_SERVER_URL: "https://GHES.corp.internal:8443/", GITHUB_ENTERPRISE_VERSION: "3.17.2" },
      enterprise: { host: "ghes.corp.internal:8443", version: "3.17.2" },
    },
  ])("Enterprise Server from $env", ({ env, enterprise }) => {
    expect(config(BASE, { ...ENV, ...env }).context.enterprise).toEqual(enterprise);
  });
});

describe("a url without /hook/", () => {
  test("its path and query are secrets too", () => {
    const c = config({ token: "t", url: "https://gw.example/webhooks/s3cr3t-route?key=abcd1234" });
    expect(c.secrets).toEqual(
      expect.arrayContaining(["/webhooks/s3cr3t-route", "webhooks/s3cr3t-route", "?key=abcd1234", "key=abcd1234"]),
    );
  });
});

describe("wait-for", () => {
  test.each([
    { inputs: {}, want: { waitFor: "none", waitTimeoutMs: 300_000 } },
    {
      inputs: { "wait-for": "ready", "wait-timeout-seconds": "600" },
      want: { waitFor: "ready", waitTimeoutMs: 600_000 },
    },
    {
      inputs: { "wait-for": "reconciled", "wait-timeout-seconds": "0.5" },
      want: { waitFor: "reconciled", waitTimeoutMs: 500 },
    },
  ])("$inputs", ({ inputs, want }) => {
    const { waitFor, waitTimeoutMs } = config({ ...BASE, ...inputs });
    expect({ waitFor, waitTimeoutMs }).toEqual(want as { waitFor: ActionConfig["waitFor"]; waitTimeoutMs: number });
  });

  test.each([
    { inputs: { "wait-for": "healthy" }, error: "Input `wait-for` must be one of none, reconciled, ready" },
    { inputs: { "wait-timeout-seconds": "0" }, error: "Input `wait-timeout-seconds` must be a number of seconds" },
    { inputs: { "wait-timeout-seconds": "3601" }, error: "at most 3600" },
  ])("refuses $inputs", ({ inputs, error }) => {
    const result = parse({ ...BASE, ...inputs });
    expect(result.ok ? [] : result.errors).toEqual([expect.stringContaining(error)]);
  });
});

describe("a token or a signature in clear", () => {
  const warnings = (inputs: Partial<Record<InputName, string>>) => config({ ...BASE, ...inputs }).warnings;
  test.each([
    { name: "github over http:// to another host", inputs: { address: "http://10.0.0.5:9292" }, says: "signatures" },
    {
      name: "generic-oidc over http://",
      inputs: { address: "http://flux.corp.internal", "receiver-type": "generic-oidc" },
      says: "the runner's ID token",
    },
    { name: "gitlab over http://", inputs: { address: "http://h", "receiver-type": "gitlab" }, says: "X-Gitlab-Token" },
    {
      name: "generic over http://, whose URL is its credential",
      inputs: { address: "http://h", "receiver-type": "generic" },
      says: "the receiver's URL, its only credential",
    },
    {
      name: "generic given as a url over http://",
      inputs: { address: "", receiver: "", url: "http://h/hook/0123456789abcdef", "receiver-type": "generic" },
      says: "the receiver's URL, its only credential",
    },
    {
      name: "http:// to a name below localhost",
      inputs: { address: "http://flux.localhost:9292" },
      says: "signatures",
    },
  ])("$name: one warning", ({ inputs, says }) => {
    const found = warnings(inputs).filter((w) => w.includes("plain http://"));
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(says);
  });

  test.each([
    { name: "https://", inputs: { address: "https://h" } },
    { name: "http:// to this runner's loopback", inputs: { address: "http://127.0.0.1:9292" } },
    { name: "http://localhost", inputs: { address: "http://localhost:9292" } },
    { name: "generic to this runner's loopback", inputs: { address: "http://localhost", "receiver-type": "generic" } },
  ])("$name: none", ({ inputs }) => {
    expect(warnings(inputs).filter((w) => w.includes("plain http://"))).toEqual([]);
  });

  test("several receivers at one address: warned once", () => {
    const found = warnings({ address: "http://h", receiver: "a\nb\nc" }).filter((w) => w.includes("plain http://"));
    expect(found).toHaveLength(1);
  });
});
