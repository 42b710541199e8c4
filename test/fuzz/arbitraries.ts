/**
 * Generators of hostile webhook input, shared by the fuzz tests: bodies (random bytes, JSON,
 * mutated real payloads, deep nesting, huge numbers, invalid UTF-8, forms), header values,
 * content types, and whole requests for a receiver type whose credentials are right, slightly
 * wrong, or garbage. A generated request is a plan; `headersFor` turns it into headers once the
 * body and the receiver's token are known, so a "valid" signature really is valid.
 */
import fc from "fast-check";
import { Header, type ReceiverType, type SignatureAlgorithm } from "../../shared";
import { githubExample } from "../support/payloads";
import { nexusSignature, signature } from "../support/signer";

const enc = (s: string) => new TextEncoder().encode(s);
const b64 = (s: string) => Buffer.from(s).toString("base64");

// ---------------------------------------------------------------------------------------------
// Sample payloads, one per type (the starting points of mutations)

const cdevent = JSON.stringify({
  context: {
    version: "0.4.1",
    id: "271069a8",
    source: "/event/source/123",
    type: "dev.cdevents.change.merged.0.2.0",
    timestamp: "2023-03-20T14:27:05.315384Z",
  },
  subject: {
    id: "mySubject123",
    source: "/event/source/123",
    type: "change",
    content: { repository: { id: "cdevents/service" } },
  },
});

/** A Pub/Sub push envelope as Artifact Registry sends it, around `event`. */
export function gcrEnvelope(event: unknown, data = b64(JSON.stringify(event))): string {
  return JSON.stringify({
    message: {
      data,
      messageId: "136969346945",
      publishTime: "2023-06-01T10:00:00Z",
      subscription: "projects/p/subscriptions/s",
    },
  });
}

export const SAMPLES: readonly string[] = [
  githubExample("push"),
  githubExample("ping"),
  JSON.stringify({ push_data: { tag: "v1.2.3" }, repository: { repo_url: "https://hub.docker.com/r/example/app" } }),
  JSON.stringify({ docker_url: "quay.io/example/app", updated_tags: ["v1", "latest"] }),
  JSON.stringify({ action: "push", target: { repository: "example/app", tag: "v1" } }),
  JSON.stringify({ action: "CREATED", repositoryName: "releases" }),
  JSON.stringify({ object_kind: "push", ref: "refs/heads/main", project: { path_with_namespace: "group/app" } }),
  JSON.stringify({ type: "PUSH_ARTIFACT", event_data: { resources: [{ tag: "v1" }], repository: { name: "app" } } }),
  cdevent,
  gcrEnvelope({
    action: "INSERT",
    digest: "europe-docker.pkg.dev/p/r/app@sha256:0b31",
    tag: "europe-docker.pkg.dev/p/r/app:v1",
  }),
];

// ---------------------------------------------------------------------------------------------
// Bodies

/** Bytes that are not valid UTF-8: stray continuation bytes, overlong forms, surrogates, truncated sequences. */
export const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xc0, 0xaf], // overlong "/"
  [0xe0, 0x80, 0xaf], // overlong
  [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xe2, 0x82], // truncated
  [0xf0, 0x9f, 0x98], // truncated emoji
];

const invalidUtf8 = fc.constantFrom(...INVALID_UTF8).map((b) => Uint8Array.from(b));

/** Numbers JSON allows and languages choke on. */
export const HUGE_NUMBERS: readonly string[] = [
  `1${"0".repeat(400)}`,
  `-${"9".repeat(1000)}`,
  "1e999999",
  "-1e-999999",
  "123456789012345678901234567890.123456789e300",
  "0.0000000000000000000000000000000000000000001",
  "-0",
  "9007199254740993",
  "1E+2147483648",
];

/** `depth` levels of `[` or `{"a":`, closed or not (what 100,000 levels do to a recursive parser). */
export function nested(depth: number, kind: "array" | "object", closed: boolean, leaf = "1"): string {
  const open = kind === "array" ? "[" : '{"a":';
  const close = kind === "array" ? "]" : "}";
  return open.repeat(depth) + (kind === "array" && !closed ? "" : leaf) + (closed ? close.repeat(depth) : "");
}

const deepNesting = fc
  .record({
    depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 20_000 }), fc.constant(100_000)),
    kind: fc.constantFrom("array" as const, "object" as const),
    closed: fc.boolean(),
    wrap: fc.constantFrom("bare", "ref", "push_data", "message"),
  })
  .map(({ depth, kind, closed, wrap }) => {
    const inner = nested(depth, kind, closed);
    // Nesting under a field the decoders or filters read, or the body itself.
    return wrap === "bare" ? inner : `{"${wrap}":${inner}${closed ? "}" : ""}`;
  });

const hugeNumberBody = fc
  .record({ n: fc.constantFrom(...HUGE_NUMBERS), at: fc.constantFrom("bare", "tag", "list", "data") })
  .map(({ n, at }) =>
    at === "bare"
      ? n
      : at === "tag"
        ? `{"push_data":{"tag":${n}},"ref":${n}}`
        : at === "list"
          ? `{"updated_tags":[${n}],"a":[${n},${n}]}`
          : `{"message":{"data":${n}}}`,
  );

type Mutation =
  | { op: "truncate"; at: number }
  | { op: "flip"; at: number; bit: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; length: number }
  | { op: "duplicate"; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      invalidUtf8,
      fc
        .constantFrom(
          ...HUGE_NUMBERS,
          "null",
          "[]",
          "{}",
          '"',
          "\\",
          "\\u",
          "\\ud800",
          ",",
          ":",
          "}",
          "]",
          "{",
          "[",
          "\u0000",
        )
        .map(enc),
    ),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
);

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = input;
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.op) {
      case "truncate":
        b = b.slice(0, at);
        break;
      case "flip":
        if (b.length > 0) {
          b = b.slice();
          b[at % b.length]! ^= 1 << m.bit;
        }
        break;
      case "insert":
        b = concat(b.slice(0, at), m.bytes, b.slice(at));
        break;
      case "delete":
        b = concat(b.slice(0, at), b.slice(at + m.length));
        break;
      case "duplicate":
        b = concat(b.slice(0, at + m.length), b.slice(at));
        break;
    }
  }
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const mutatedSample = fc
  .record({ sample: fc.constantFrom(...SAMPLES), mutations: fc.array(mutation, { minLength: 0, maxLength: 4 }) })
  .map(({ sample, mutations }) => mutate(enc(sample), mutations));

/** A JSON value of any shape; with a few keys the decoders read, so type mismatches are reached. */
const jsonBody = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc
    .record(
      {
        push_data: fc.jsonValue({ maxDepth: 2 }),
        repository: fc.jsonValue({ maxDepth: 2 }),
        updated_tags: fc.jsonValue({ maxDepth: 2 }),
        action: fc.jsonValue({ maxDepth: 1 }),
        target: fc.jsonValue({ maxDepth: 2 }),
        repositoryName: fc.jsonValue({ maxDepth: 1 }),
        message: fc.jsonValue({ maxDepth: 2 }),
        context: fc.jsonValue({ maxDepth: 2 }),
        ref: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);

const formBody = fc.oneof(
  fc.constantFrom(...SAMPLES).map((s) => `payload=${encodeURIComponent(s)}`),
  fc.string({ maxLength: 200 }).map((s) => `payload=${s}`),
  fc.constantFrom("payload=%", "payload=%zz", "payload=%E0%A4%A", "payload", "=", "&&&", "payload=1&payload=2", "a=b"),
  fc.uint8Array({ maxLength: 200 }).map((b) => `payload=${Buffer.from(b).toString("latin1")}`),
);

const stringWithInvalidUtf8 = fc
  .record({ sample: fc.constantFrom(...SAMPLES), bad: invalidUtf8, at: fc.nat() })
  .map(({ sample, bad, at }) => {
    // Inside a string value: after the first quote that follows `at`.
    const bytes = enc(sample);
    const q = bytes.indexOf(0x22, at % Math.max(1, bytes.length));
    const i = q < 0 ? 0 : q + 1;
    return concat(bytes.slice(0, i), bad, bytes.slice(i));
  });

/** Any body: mostly structured, sometimes pure noise. */
export const body: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: mutatedSample },
  { weight: 2, arbitrary: jsonBody.map(enc) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  { weight: 1, arbitrary: deepNesting.map(enc) },
  { weight: 1, arbitrary: hugeNumberBody.map(enc) },
  { weight: 1, arbitrary: formBody.map(enc) },
  { weight: 1, arbitrary: stringWithInvalidUtf8 },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", " ", "null", "\n\n", "{}", "[]", '""', "0", "true", "{}{}", "{} trailing").map(enc),
  },
);

// ---------------------------------------------------------------------------------------------
// Headers

/** A character a header value may carry (visible ASCII, space, tab, obs-text); Headers refuses the rest. */
const headerChar = fc
  .oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 1, arbitrary: fc.constant(0x09) },
  )
  .map((c) => String.fromCharCode(c));

export const headerValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: headerChar, maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: headerChar, minLength: 500, maxLength: 3000 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "sha256=",
      "sha1=",
      "sha512=",
      "sha256",
      "=",
      "md5=00",
      "SHA256=00",
      "sha256=zz",
      "sha256=0",
      "Bearer ",
      "Bearer",
      "bearer x",
      "Basic Zm9vOmJhcg==",
      "a.b.c",
      "..",
      "null",
      "push",
      "ping",
    ),
  },
);

export const CONTENT_TYPES: readonly string[] = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/x-www-form-urlencoded",
  "application/x-www-form-urlencoded; charset=utf-8",
  "text/plain",
  "application/json, text/plain",
  "application/cloudevents+json",
  "multipart/form-data; boundary=x",
  ";",
  "application/json;;;",
  "",
];

export const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  { weight: 1, arbitrary: fc.string({ unit: headerChar, maxLength: 40 }) },
);

/** Header names a sender sets, plus a few any client sets. */
export const HEADER_NAMES: readonly string[] = [
  ...Object.values(Header),
  "Content-Length",
  "Transfer-Encoding",
  "Expect",
  "Content-Encoding",
  "X-Forwarded-For",
  "Connection",
];

/** Headers that are not part of any sender's contract but may duplicate one that is. */
const extraHeaders = fc.array(
  fc.tuple(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...Object.values(Header)) },
      { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/) },
    ),
    headerValue,
  ),
  { maxLength: 4 },
);

// ---------------------------------------------------------------------------------------------
// Requests for a receiver type

/** How the credentials of a generated request relate to the receiver's. */
export type Credentials = "valid" | "mutated" | "garbage" | "none";

export interface RequestPlan {
  readonly body: Uint8Array;
  readonly contentType: string | undefined;
  readonly credentials: Credentials;
  /** Which valid-looking variant to send (algorithm, hex case, which header). */
  readonly variant: number;
  /** Replaces the credentials when they are "garbage". */
  readonly garbage: string;
  readonly event: string | undefined;
  readonly extra: readonly (readonly [string, string])[];
}

export const EVENTS: readonly string[] = [
  "push",
  "ping",
  "Push",
  "Push Hook",
  "Tag Push Hook",
  "repo:refs_changed",
  "issues",
  "dev.cdevents.change.merged.0.2.0",
  "",
];

export const requestPlan: fc.Arbitrary<RequestPlan> = fc.record({
  body,
  contentType: fc.option(contentType, { nil: undefined, freq: 8 }),
  credentials: fc.constantFrom<Credentials>("valid", "valid", "mutated", "garbage", "none"),
  variant: fc.nat(),
  garbage: headerValue,
  event: fc.option(fc.oneof(fc.constantFrom(...EVENTS), headerValue), { nil: undefined, freq: 5 }),
  extra: extraHeaders,
});

/** Which header carries the event name, per type. */
export const EVENT_HEADER: Partial<Record<ReceiverType, string>> = {
  github: Header.githubEvent,
  gitlab: Header.gitlabEvent,
  bitbucket: Header.bitbucketEvent,
  cdevents: Header.ceType,
};

/** Flips one hex digit, or drops the last two, of a signature; never returns it unchanged. */
function spoil(value: string, variant: number): string {
  if (variant % 3 === 0) return value.slice(0, -2);
  const i = value.length - 1 - (variant % Math.min(16, value.length));
  const c = value[i]!;
  const swapped = c === "0" ? "1" : c === "=" ? "-" : "0";
  return value.slice(0, i) + swapped + value.slice(i + 1);
}

export interface ReceiverCredentials {
  /** The Secret's token (github, gitlab, bitbucket, harbor, generic-hmac, nexus). */
  readonly token: string;
  /** Bearer tokens for gcr and generic-oidc: one that verifies, and one that does not. */
  readonly bearer?: { readonly valid: string; readonly invalid: string };
}

/**
 * The headers of a plan for a receiver of `type`, as [name, value] pairs in order (a name may
 * repeat: `extra` can duplicate a sender header).
 */
export function headersFor(type: ReceiverType, plan: RequestPlan, creds: ReceiverCredentials): [string, string][] {
  const h: [string, string][] = [];
  if (plan.contentType !== undefined) h.push([Header.contentType, plan.contentType]);
  const eventHeader = EVENT_HEADER[type];
  if (eventHeader && plan.event !== undefined) h.push([eventHeader, plan.event]);
  const credential = (name: string, valid: () => string) => {
    if (plan.credentials === "none") return;
    if (plan.credentials === "garbage") h.push([name, plan.garbage]);
    else if (plan.credentials === "valid") h.push([name, valid()]);
    else h.push([name, spoil(valid(), plan.variant)]);
  };
  const algorithms: SignatureAlgorithm[] = ["sha256", "sha1", "sha512"];
  switch (type) {
    case "github":
    case "bitbucket": {
      const legacy = plan.variant % 4 === 1;
      const sig = () => {
        const s = signature(creds.token, plan.body, legacy ? "sha1" : "sha256");
        return plan.variant % 5 === 2 ? s.toUpperCase().replace(/^SHA(1|256)=/, (m) => m.toLowerCase()) : s;
      };
      credential(legacy ? Header.hubSignature : Header.hubSignature256, sig);
      break;
    }
    case "generic-hmac":
      credential(Header.signature, () => signature(creds.token, plan.body, algorithms[plan.variant % 3]!));
      break;
    case "gitlab":
      credential(Header.gitlabToken, () => creds.token);
      break;
    case "harbor":
      credential(Header.authorization, () => creds.token);
      break;
    case "nexus":
      credential(Header.nexusSignature, () => nexusSignature(creds.token, plan.body));
      break;
    case "gcr":
    case "generic-oidc":
      if (creds.bearer) {
        credential(
          Header.authorization,
          () => `Bearer ${plan.variant % 4 === 3 ? creds.bearer!.invalid : creds.bearer!.valid}`,
        );
      }
      break;
    default:
      break;
  }
  for (const [name, value] of plan.extra) h.push([name, value]);
  return h;
}

/** Headers from pairs, appending repeated names (the Headers API joins them with ", "). */
export function toHeaders(pairs: readonly (readonly [string, string])[]): Headers {
  const headers = new Headers();
  for (const [name, value] of pairs) headers.append(name, value);
  return headers;
}

/** The headers that carry each type's credentials. */
const CREDENTIAL_HEADERS: Partial<Record<ReceiverType, readonly string[]>> = {
  github: [Header.hubSignature256, Header.hubSignature],
  bitbucket: [Header.hubSignature256, Header.hubSignature],
  "generic-hmac": [Header.signature],
  gitlab: [Header.gitlabToken],
  harbor: [Header.authorization],
  nexus: [Header.nexusSignature],
  gcr: [Header.authorization],
  "generic-oidc": [Header.authorization],
};

/** True when the plan's credentials are exactly what the receiver expects, with no extra header spoiling them. */
export function credentialsIntact(type: ReceiverType, plan: RequestPlan): boolean {
  if (plan.credentials !== "valid") return false;
  const names = new Set(plan.extra.map(([n]) => n.toLowerCase()));
  // X-Hub-Signature-256 wins over X-Hub-Signature: a stray legacy header spoils nothing then.
  const carriers =
    (type === "github" || type === "bitbucket") && plan.variant % 4 !== 1
      ? [Header.hubSignature256]
      : (CREDENTIAL_HEADERS[type] ?? []);
  if (carriers.some((n) => names.has(n.toLowerCase()))) return false;
  if (type === "gcr" || type === "generic-oidc") return plan.variant % 4 !== 3;
  return true;
}
