/**
 * The receiver types added after the core, validator by validator, beyond the upstream cases:
 * Go's decoding rules for the registry payloads (first JSON value, unknown fields, null, empty
 * bodies, wrong types), Nexus's exact signature format, CDEvents schema validation, and gcr's
 * token and Pub/Sub envelope. Validators are pure functions of the request; gcr's token check runs
 * against a local key set.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { KeySets, GoogleIdTokens, OidcIssuers, type AuthServices } from "../../server/jwt";
import { PROVIDERS, type Validation } from "../../server/providers";
import { NOTHING_COMPILED } from "../../server/receivers/prepare";
import { statusQueryKey, statusQueryTokenHeader, type ReceiverType } from "../../shared";
import { startTokenIssuer, type TokenIssuer } from "../support/tokens";
import { CelMeter } from "../../server/cel";
import { receiverSpec } from "../support/edge";
import { nexusSignature, signature } from "../support/signer";

const TOKEN = "token";
const enc = (s: string) => new TextEncoder().encode(s);
const nexusSig = (body: string, key = TOKEN) => nexusSignature(key, body);

let google: TokenIssuer;
let auth: AuthServices;
let idToken: string;
const GCR = { email: "pusher@project.iam.gserviceaccount.com", audience: "https://example.com/push" };

beforeAll(async () => {
  google = await startTokenIssuer();
  const keys = new KeySets();
  auth = { google: new GoogleIdTokens(keys, google.jwksUrl), oidc: new OidcIssuers(keys) };
  idToken = await google.sign({
    iss: "https://accounts.google.com",
    aud: GCR.audience,
    email: GCR.email,
    email_verified: true,
  });
});
afterAll(() => google.stop());

interface Case {
  type: ReceiverType;
  name: string;
  body: string;
  headers?: Record<string, string> | (() => Record<string, string>);
  events?: string[];
  secret?: Record<string, string>;
  /** `reason` for a refusal; `payload` (what CEL's req sees) and `event` for an acceptance. */
  want: { reason: string } | { payload?: string; event?: string };
}

async function run(c: Case): Promise<Validation> {
  const spec = receiverSpec("ns", "r", { type: c.type, events: c.events ?? [], secretRef: { name: "s" } });
  const secret = Object.fromEntries(Object.entries(c.secret ?? { token: TOKEN }).map(([k, v]) => [k, Buffer.from(v)]));
  const headers = new Headers(typeof c.headers === "function" ? c.headers() : c.headers);
  return PROVIDERS[c.type].validate(
    { headers, body: enc(c.body) },
    { spec, secret, compiled: NOTHING_COMPILED, auth, meter: new CelMeter() },
  );
}

function check(c: Case, v: Validation) {
  if ("reason" in c.want) {
    expect(v).toEqual({ ok: false, reason: c.want.reason });
    return;
  }
  if (!v.ok) throw new Error(`refused: ${v.reason}`);
  expect(new TextDecoder().decode(v.payload)).toBe(c.want.payload ?? c.body);
  if (c.want.event !== undefined) expect(v.event).toBe(c.want.event);
}

const DOCKERHUB = '{"push_data":{"tag":"v1"},"repository":{"repo_url":"https://hub.docker.com/r/org/app"}}';
const REGISTRY_CASES: Case[] = [
  { type: "dockerhub", name: "a push", body: DOCKERHUB, want: {} },
  { type: "dockerhub", name: "null is the zero payload", body: "null", want: {} },
  { type: "dockerhub", name: "only the first JSON value is read", body: `${DOCKERHUB} trailing {garbage`, want: {} },
  {
    type: "dockerhub",
    name: "unknown fields are ignored",
    body: '{"callback_url":"x","push_data":{"pusher":"me","tag":"v1"}}',
    want: {},
  },
  {
    type: "dockerhub",
    name: "null fields are ignored",
    body: '{"push_data":null,"repository":{"repo_url":null}}',
    want: {},
  },
  {
    type: "dockerhub",
    name: "empty body",
    body: "",
    want: { reason: "cannot decode DockerHub webhook payload: EOF: the body is empty" },
  },
  {
    type: "dockerhub",
    name: "whitespace only",
    body: " \n",
    want: { reason: "cannot decode DockerHub webhook payload: EOF: the body is empty" },
  },
  {
    type: "dockerhub",
    name: "a number where a string belongs",
    body: '{"push_data":{"tag":1}}',
    want: {
      reason:
        "cannot decode DockerHub webhook payload: cannot unmarshal number into field push_data.tag of type string",
    },
  },
  {
    type: "dockerhub",
    name: "field names match case-insensitively, as in Go",
    body: '{"PUSH_DATA":{"Tag":true}}',
    want: {
      reason:
        "cannot decode DockerHub webhook payload: cannot unmarshal boolean into field push_data.tag of type string",
    },
  },
  {
    type: "dockerhub",
    name: "a string where an object belongs",
    body: '{"repository":"x"}',
    want: {
      reason: "cannot decode DockerHub webhook payload: cannot unmarshal string into field repository of type struct",
    },
  },
  {
    type: "dockerhub",
    name: "an array body",
    body: "[1]",
    want: { reason: "cannot decode DockerHub webhook payload: cannot unmarshal array into the payload of type struct" },
  },
  {
    type: "dockerhub",
    name: "invalid JSON",
    body: '{"push_data":}',
    want: {
      reason: expect.stringContaining("cannot decode DockerHub webhook payload: invalid JSON") as unknown as string,
    },
  },
  {
    type: "dockerhub",
    name: "unterminated JSON",
    body: '{"push_data":{',
    want: { reason: "cannot decode DockerHub webhook payload: unexpected EOF: the JSON value is not terminated" },
  },
  { type: "quay", name: "a push", body: '{"docker_url":"quay.io/org/app","updated_tags":["v1","latest"]}', want: {} },
  { type: "quay", name: "null tags are zero strings", body: '{"updated_tags":[null]}', want: {} },
  {
    type: "quay",
    name: "tags must be a list",
    body: '{"updated_tags":"v1"}',
    want: {
      reason: "cannot decode Quay webhook payload: cannot unmarshal string into field updated_tags of type []string",
    },
  },
  {
    type: "quay",
    name: "tags must be strings",
    body: '{"updated_tags":["v1",2]}',
    want: {
      reason: "cannot decode Quay webhook payload: cannot unmarshal number into field updated_tags[1] of type string",
    },
  },
  {
    type: "acr",
    name: "a push",
    body: '{"id":"1","action":"push","target":{"repository":"app","tag":"v1","digest":"sha256:x"}}',
    want: {},
  },
  {
    type: "acr",
    name: "target must be an object",
    body: '{"target":[]}',
    want: { reason: "cannot decode ACR webhook payload: cannot unmarshal array into field target of type struct" },
  },
  {
    type: "acr",
    name: "a bare number",
    body: "42",
    want: { reason: "cannot decode ACR webhook payload: cannot unmarshal number into the payload of type struct" },
  },
];

const NEXUS = '{"action":"CREATED","repositoryName":"npm-proxy","asset":{"format":"npm"}}';
const NEXUS_CASES: Case[] = [
  { type: "nexus", name: "signed", body: NEXUS, headers: { "X-Nexus-Webhook-Signature": nexusSig(NEXUS) }, want: {} },
  { type: "nexus", name: "no signature", body: NEXUS, want: { reason: "missing X-Nexus-Webhook-Signature header" } },
  {
    type: "nexus",
    name: "uppercase hex is refused (Flux compares strings)",
    body: NEXUS,
    headers: { "X-Nexus-Webhook-Signature": nexusSig(NEXUS).toUpperCase() },
    want: { reason: "invalid Nexus signature (X-Nexus-Webhook-Signature)" },
  },
  {
    type: "nexus",
    name: "a sha1= prefix is refused",
    body: NEXUS,
    headers: { "X-Nexus-Webhook-Signature": `sha1=${nexusSig(NEXUS)}` },
    want: { reason: "invalid Nexus signature (X-Nexus-Webhook-Signature)" },
  },
  {
    type: "nexus",
    name: "wrong key",
    body: NEXUS,
    headers: { "X-Nexus-Webhook-Signature": nexusSig(NEXUS, "guess") },
    want: { reason: "invalid Nexus signature (X-Nexus-Webhook-Signature)" },
  },
  {
    type: "nexus",
    name: "null body",
    body: "null",
    headers: { "X-Nexus-Webhook-Signature": nexusSig("null") },
    want: {},
  },
  {
    type: "nexus",
    name: "the whole body must be one JSON value (json.Unmarshal)",
    body: `${NEXUS} x`,
    headers: { "X-Nexus-Webhook-Signature": nexusSig(`${NEXUS} x`) },
    want: { reason: expect.stringContaining("cannot decode Nexus webhook payload: invalid JSON") as unknown as string },
  },
  {
    type: "nexus",
    name: "wrong field type",
    body: '{"repositoryName":["a"]}',
    headers: { "X-Nexus-Webhook-Signature": nexusSig('{"repositoryName":["a"]}') },
    want: {
      reason: "cannot decode Nexus webhook payload: cannot unmarshal array into field repositoryName of type string",
    },
  },
];

const cdevent = (context: Record<string, unknown> = {}, subject: Record<string, unknown> = {}) =>
  JSON.stringify({
    context: {
      version: "0.4.1",
      id: "271069a8",
      source: "/event/source/123",
      type: "dev.cdevents.change.merged.0.2.0",
      timestamp: "2023-03-20T14:27:05.315384Z",
      ...context,
    },
    subject: {
      id: "mySubject123",
      source: "/event/source/123",
      type: "change",
      content: { repository: { id: "cdevents/service" } },
      ...subject,
    },
  });
const CE = { "Ce-Type": "dev.cdevents.change.merged.0.2.0" };
const invalid = (why: string) => ({ reason: `unable to validate CDEvent event: ${why}` });
const CDEVENTS_CASES: Case[] = [
  {
    type: "cdevents",
    name: "a change merged event",
    body: cdevent(),
    headers: CE,
    want: { event: "dev.cdevents.change.merged.0.2.0" },
  },
  {
    type: "cdevents",
    name: "an artifact published event",
    body: cdevent(
      { type: "dev.cdevents.artifact.published.0.2.0" },
      {
        type: "artifact",
        id: "pkg:oci/app@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427",
        content: {},
      },
    ),
    want: {},
  },
  {
    type: "cdevents",
    name: "with embedded links",
    body: cdevent({ links: [{ linkType: "END", from: { contextId: "abc" } }] }),
    want: {},
  },
  {
    type: "cdevents",
    name: "a custom event type",
    body: cdevent(
      { type: "dev.cdeventsx.mytool-resource.created.0.1.0" },
      { type: "mytool-resource", content: { user: "x" } },
    ),
    want: {},
  },
  {
    type: "cdevents",
    name: "events filter is case-insensitive on Ce-Type",
    body: cdevent(),
    events: ["DEV.CDEVENTS.CHANGE.MERGED.0.2.0"],
    headers: CE,
    want: {},
  },
  {
    type: "cdevents",
    name: "events filter needs Ce-Type",
    body: cdevent(),
    events: ["x"],
    want: { reason: 'missing Ce-Type header: this receiver accepts only "x"' },
  },
  {
    type: "cdevents",
    name: "an invalid event is refused before the events filter",
    body: cdevent({ id: "" }),
    events: ["x"],
    headers: CE,
    want: invalid("event/context/id must NOT have fewer than 1 characters"),
  },
  {
    type: "cdevents",
    name: "a missing id is Go's empty string",
    body: cdevent({ id: undefined }),
    want: invalid("event/context/id must NOT have fewer than 1 characters"),
  },
  {
    type: "cdevents",
    name: "a timestamp must be RFC 3339",
    body: cdevent({ timestamp: "yesterday" }),
    want: invalid('event/context/timestamp must match format "date-time"'),
  },
  {
    type: "cdevents",
    name: "a wrong field type",
    body: cdevent({ source: 42 }),
    want: invalid("event/context/source must be string"),
  },
  {
    type: "cdevents",
    name: "the subject type must match the event",
    body: cdevent({}, { type: "artifact" }),
    want: invalid("event/subject/type must be equal to one of the allowed values"),
  },
  {
    type: "cdevents",
    name: "the event version must be the spec's",
    body: cdevent({ type: "dev.cdevents.change.merged.0.1.2" }),
    want: invalid("event/context/type must be equal to one of the allowed values"),
  },
  {
    type: "cdevents",
    name: "an unknown event type",
    body: cdevent({ type: "dev.cdevents.spaceship.launched.0.1.0" }),
    want: invalid("unknown event type dev.cdevents.spaceship.launched.0.1.0"),
  },
  {
    type: "cdevents",
    name: "an unparseable event type",
    body: cdevent({ type: "hello" }),
    want: invalid("cannot parse event type hello"),
  },
  {
    type: "cdevents",
    name: "no type at all",
    body: "{}",
    want: invalid("unknown event type: the context has no type"),
  },
  { type: "cdevents", name: "null", body: "null", want: invalid("unknown event type: the context has no type") },
  { type: "cdevents", name: "an array", body: "[]", want: invalid("cannot unmarshal array into a CDEvent") },
  {
    type: "cdevents",
    name: "not JSON",
    body: "<xml/>",
    want: { reason: expect.stringContaining("unable to validate CDEvent event: invalid JSON") as unknown as string },
  },
  {
    type: "cdevents",
    name: "an unknown link type",
    body: cdevent({ links: [{ linkType: "SIDEWAYS", from: { contextId: "abc" } }] }),
    want: {
      reason: expect.stringContaining("unable to validate CDEvent event: event/context/links/0") as unknown as string,
    },
  },
  {
    type: "cdevents",
    name: "a schemaUri (sdk-go knows none)",
    body: cdevent({ schemaUri: "https://example.com/schema" }),
    want: invalid("schema with id https://example.com/schema could not be found in the local registry"),
  },
];

const pubsub = (data: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    message: { data, messageId: "1", publishTime: "2024-05-01T10:00:00.123Z", attributes: { a: "b" }, ...extra },
    subscription: "projects/p/subscriptions/s",
  });
const event = (e: Record<string, unknown>) => Buffer.from(JSON.stringify(e)).toString("base64");
const bearer = () => ({ Authorization: `Bearer ${idToken}`, "Content-Type": "application/json" });
const GCR_CASES: Case[] = [
  {
    type: "gcr",
    name: "a push: req is the unwrapped event",
    body: pubsub(
      event({ action: "INSERT", digest: "d@sha256:1", tag: "region-docker.pkg.dev/p/r/app:v1", extra: "dropped" }),
    ),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: {
      payload: '{"action":"INSERT","digest":"d@sha256:1","tag":"region-docker.pkg.dev/p/r/app:v1"}',
      event: "INSERT",
    },
  },
  {
    type: "gcr",
    name: "missing fields become Go's zero values",
    body: pubsub(event({ action: "DELETE" })),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { payload: '{"action":"DELETE","digest":"","tag":""}' },
  },
  {
    type: "gcr",
    name: "no Authorization",
    body: pubsub(event({})),
    secret: { token: TOKEN, ...GCR },
    want: { reason: "cannot authenticate GCR request: the Authorization header is missing or malformed" },
  },
  {
    type: "gcr",
    name: "a bearer that is not a JWT",
    body: pubsub(event({})),
    headers: { Authorization: "Bearer token" },
    secret: { token: TOKEN, ...GCR },
    want: { reason: "cannot authenticate GCR request: invalid ID token: Invalid Compact JWS" },
  },
  {
    type: "gcr",
    name: "a token for another audience",
    body: pubsub(event({})),
    headers: bearer,
    secret: { token: TOKEN, ...GCR, audience: "https://other.example" },
    want: { reason: 'cannot authenticate GCR request: invalid ID token: unexpected "aud" claim value' },
  },
  {
    type: "gcr",
    name: "a token of another service account",
    body: pubsub(event({})),
    headers: bearer,
    secret: { token: TOKEN, ...GCR, email: "someone-else@project.iam.gserviceaccount.com" },
    want: { reason: "cannot authenticate GCR request: token email does not match the receiver's email" },
  },
  {
    type: "gcr",
    name: "a null body",
    body: "null",
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { reason: "cannot decode GCR webhook body: unexpected end of JSON input" },
  },
  {
    type: "gcr",
    name: "data that is not base64",
    body: pubsub("%%%"),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { reason: "cannot decode GCR webhook body: unexpected end of JSON input" },
  },
  {
    type: "gcr",
    name: "data that is not JSON",
    body: pubsub(Buffer.from("hello").toString("base64")),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { reason: expect.stringContaining("cannot decode GCR webhook body: invalid JSON") as unknown as string },
  },
  {
    type: "gcr",
    name: "a publishTime that is not RFC 3339",
    body: pubsub(event({}), { publishTime: "May 1st" }),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { reason: 'cannot decode GCR webhook payload: parsing time "May 1st" in message.publishTime: not RFC 3339' },
  },
  {
    type: "gcr",
    name: "an event field of the wrong type",
    body: pubsub(event({ tag: 3 })),
    headers: bearer,
    secret: { token: TOKEN, ...GCR },
    want: { reason: "cannot decode GCR webhook body: cannot unmarshal number into field tag of type string" },
  },
];

describe.each([
  ["dockerhub, quay, acr", REGISTRY_CASES],
  ["nexus", NEXUS_CASES],
  ["cdevents", CDEVENTS_CASES],
  ["gcr", GCR_CASES],
] as const)("%s", (_group, cases) => {
  test.each(cases.map((c) => [`${c.type}: ${c.name}`, c] as const))("%s", async (_name, c) => {
    check(c, await run(c));
  });
});

describe.each([
  { type: "gitlab", header: "X-Gitlab-Token" },
  { type: "harbor", header: "Authorization" },
] as const)("$type's status query: the query's HMAC in $header, never the token", ({ type, header }) => {
  const QUERY = '{"targets":[{"kind":"GitRepository","namespace":"ns","name":"app","requestedAt":"x"}]}';
  const spec = receiverSpec("ns", "r", { type, secretRef: { name: "s" } });
  const context = () => ({
    spec,
    secret: { token: Buffer.from(TOKEN) },
    compiled: NOTHING_COMPILED,
    auth,
    meter: new CelMeter(),
  });
  const request = (value: string | undefined) => ({
    headers: new Headers(value === undefined ? {} : { [header]: value }),
    body: enc(QUERY),
  });

  test("the query's own header is a query's credential, and no delivery's", async () => {
    const value = statusQueryTokenHeader(TOKEN, QUERY);
    expect(await PROVIDERS[type].authenticateQuery(request(value), context())).toEqual({ ok: true });
    expect(await PROVIDERS[type].validate(request(value), context())).toEqual({
      ok: false,
      reason: `${header} does not match the receiver's token`,
    });
  });

  test.each([
    ["the token itself (a delivery's credential)", TOKEN, "malformed signature header"],
    ["no header", undefined, "missing signature"],
    ["an HMAC under the token, not the query key", signature(TOKEN, QUERY), "signature mismatch"],
    ["another token's query", statusQueryTokenHeader("other", QUERY), "signature mismatch"],
    ["another body's", statusQueryTokenHeader(TOKEN, QUERY.replace('"x"', '"y"')), "signature mismatch"],
    [
      "sha1, which the contract does not use",
      signature(statusQueryKey(TOKEN), QUERY, "sha1"),
      "unknown hash type prefix",
    ],
  ])("%s is refused", async (_name, value, reason) => {
    expect(await PROVIDERS[type].authenticateQuery(request(value), context())).toEqual({
      ok: false,
      reason: `${reason} (${header})`,
    });
  });
});
