/**
 * Every receiver type's validator, called directly with generated headers and bodies: each one
 * returns a verdict and never throws (a malformed payload is a 400, never a crash: Argo CD's
 * CVE-2025-59531/59537/59538 were panics on exactly such payloads), never quotes a credential in
 * its reason, refuses any request whose credentials are not exactly right, and accepts the ones
 * that are. The decoders are checked against Go's rules on generated JSON, the gcr envelope on
 * generated events, and the generic-oidc bearer parsing on generated tokens. Token checks (gcr,
 * generic-oidc) go through a stub that accepts exactly one token, so the code around them runs
 * without a network.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { AuthServices } from "../../server/jwt";
import { PROVIDERS, type Validation } from "../../server/providers";
import { validateCDEvent } from "../../server/providers/cdevents";
import { unverifiedIssuer } from "../../server/providers/generic-oidc";
import { mediaType } from "../../server/providers/github";
import { conforms, firstJsonValue, wholeJsonValue, type Shape } from "../../server/providers/json-decode";
import { REGISTRY_PAYLOADS } from "../../server/providers/registries";
import type { ReceiverSpec } from "../../server/api/receiver";
import { NOTHING_COMPILED, prepareReceiver, type CompiledReceiver } from "../../server/receivers/prepare";
import { Header, RECEIVER_TYPES, type ReceiverType } from "../../shared";
import {
  credentialsIntact,
  EVENT_HEADER,
  EVENTS,
  gcrEnvelope,
  headersFor,
  requestPlan,
  SAMPLES,
  toHeaders,
  type RequestPlan,
} from "./arbitraries";
import { params } from "./settings";
import { CelMeter } from "../../server/cel";

const TOKEN = "fz-token-3c1d9e0b7a";
const ISSUER = "https://issuer.fuzz.example";
const GCR = { email: "pusher@p.iam.gserviceaccount.com", audience: "https://fluxhook.example/push" };
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const VALID_JWT = `eyJhbGciOiJSUzI1NiJ9.${b64url({ iss: ISSUER, sub: "ci", aud: "fluxhook" })}.c2ln`;
const OTHER_JWT = `eyJhbGciOiJSUzI1NiJ9.${b64url({ iss: ISSUER, sub: "intruder" })}.c2ln`;
const VALID_GOOGLE = "google-id-token-that-verifies";

/** Accepts exactly the one valid token of each kind (the real checks are tested in test/server). */
const auth: AuthServices = {
  google: {
    verify: async (token) =>
      token === VALID_GOOGLE ? { ok: true, claims: { email: GCR.email } } : { ok: false, reason: "token is not valid" },
  },
  oidc: {
    verify: async (token) => {
      if (token !== VALID_JWT && token !== OTHER_JWT) return { ok: false, reason: "token verification failed" };
      return { ok: true, claims: JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) };
    },
  },
};

const spec = (type: ReceiverType, events: readonly string[]): ReceiverSpec => ({
  type,
  events,
  resources: [],
  resourceFilter: undefined,
  secretName: "s",
  oidcProviders:
    type === "generic-oidc"
      ? [
          {
            issuerURL: ISSUER,
            audience: "fluxhook",
            variables: [{ name: "sub", expression: "claims.sub" }],
            validations: [{ expression: "vars.sub == 'ci'", message: "wrong subject" }],
          },
        ]
      : [],
  suspend: false,
});

function compiledFor(s: ReceiverSpec): CompiledReceiver {
  if (s.oidcProviders.length === 0) return NOTHING_COMPILED;
  const p = prepareReceiver(s);
  if (!p.ok) throw new Error(p.message);
  return p.compiled;
}

const secret = { token: Buffer.from(TOKEN), email: Buffer.from(GCR.email), audience: Buffer.from(GCR.audience) };
const creds = (type: ReceiverType) => ({
  token: TOKEN,
  bearer:
    type === "gcr" ? { valid: VALID_GOOGLE, invalid: `${VALID_GOOGLE}x` } : { valid: VALID_JWT, invalid: OTHER_JWT },
});

async function validate(
  type: ReceiverType,
  plan: RequestPlan,
  events: readonly string[],
): Promise<{ verdict: Validation; headers: Headers }> {
  const headers = toHeaders(headersFor(type, plan, creds(type)));
  const s = spec(type, events);
  // A validator may be sync or async; either way it must not throw.
  const verdict = await PROVIDERS[type].validate(
    { headers, body: plan.body },
    { spec: s, secret, compiled: compiledFor(s), auth, meter: new CelMeter() },
  );
  return { verdict, headers };
}

const AUTHENTICATED: readonly ReceiverType[] = [
  "github",
  "bitbucket",
  "generic-hmac",
  "gitlab",
  "harbor",
  "nexus",
  "gcr",
  "generic-oidc",
];
/** Types whose only other condition, once the credentials are right, is the content type (github, bitbucket) or nothing. */
const ACCEPTS_ANY_BODY: readonly ReceiverType[] = [
  "github",
  "bitbucket",
  "generic-hmac",
  "gitlab",
  "harbor",
  "generic-oidc",
  "generic",
];

const eventsSpec = fc.oneof(
  { weight: 3, arbitrary: fc.constant<string[]>([]) },
  {
    weight: 1,
    arbitrary: fc.subarray(["push", "ping", "Push Hook", "repo:refs_changed", "dev.cdevents.change.merged.0.2.0"], {
      minLength: 1,
    }),
  },
);

describe.each(RECEIVER_TYPES.map((t) => [t]))("%s validator", (type) => {
  test("returns a verdict for any request, and is right about credentials and events", async () => {
    await fc.assert(
      fc.asyncProperty(requestPlan, eventsSpec, async (plan, events) => {
        const { verdict, headers } = await validate(type, plan, events);
        expect(typeof verdict.ok).toBe("boolean");
        if (!verdict.ok) {
          expect(typeof verdict.reason).toBe("string");
          expect(verdict.reason.length).toBeGreaterThan(0);
          expect(verdict.reason).not.toContain(TOKEN);
          expect(verdict.reason).not.toContain(GCR.audience);
          for (const name of [
            Header.hubSignature256,
            Header.hubSignature,
            Header.signature,
            Header.nexusSignature,
            Header.gitlabToken,
            Header.authorization,
          ]) {
            const v = headers.get(name);
            if (v && v.length >= 16 && plan.credentials !== "garbage") expect(verdict.reason).not.toContain(v);
          }
          return;
        }
        expect(verdict.payload).toBeInstanceOf(Uint8Array);
        expect(typeof verdict.payloadType).toBe("string");
        if (AUTHENTICATED.includes(type)) expect(credentialsIntact(type, plan)).toBe(true);
        const eventHeader = EVENT_HEADER[type];
        if (eventHeader && events.length > 0) {
          expect(events.map((e) => e.toLowerCase())).toContain((headers.get(eventHeader) ?? "").toLowerCase());
        }
      }),
      params(type === "cdevents" ? 150 : 250),
    );
  });

  if (ACCEPTS_ANY_BODY.includes(type)) {
    test("accepts any body when the credentials are right", async () => {
      await fc.assert(
        fc.asyncProperty(requestPlan, async (generated) => {
          const plan: RequestPlan = {
            ...generated,
            credentials: "valid",
            variant: generated.variant & ~3,
            extra: [],
            event: "push",
          };
          const { verdict } = await validate(type, plan, []);
          if (type === "github" || type === "bitbucket") {
            const media = mediaType(plan.contentType ?? null);
            // A form without a payload field is an empty payload (go-github's form.Get), still signed.
            const expected = media === "application/json" || media === "application/x-www-form-urlencoded";
            expect({ ok: verdict.ok, media }).toEqual({ ok: expected, media });
          } else expect(verdict).toMatchObject({ ok: true });
        }),
        params(150),
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Decoders, against Go's encoding/json rules

/** JSON values as a decoder produces them (no -0, no undefined). */
const jsonValue = fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

describe("json decoding", () => {
  test("firstJsonValue reads the first value and ignores what follows it", () => {
    fc.assert(
      fc.property(
        jsonValue,
        fc.oneof(
          fc.constant(""),
          fc.string().map((s) => ` ${s}`),
          fc.uint8Array({ maxLength: 20 }).map((b) => `\n${Buffer.from(b).toString("latin1")}`),
        ),
        (v, tail) => {
          const decoded = firstJsonValue(new TextEncoder().encode(JSON.stringify(v) + tail));
          expect(decoded).toEqual({ ok: true, value: v });
        },
      ),
      params(300),
    );
  });

  test("wholeJsonValue needs the whole body to be one value", () => {
    fc.assert(
      fc.property(jsonValue, fc.constantFrom("", " ", "\n\t", " x", "{}", ",1"), (v, tail) => {
        const decoded = wholeJsonValue(new TextEncoder().encode(JSON.stringify(v) + tail));
        if (tail.trim() === "") expect(decoded).toEqual({ ok: true, value: v });
        else expect(decoded.ok).toBe(false);
      }),
      params(300),
    );
  });

  test("neither throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const decode of [firstJsonValue, wholeJsonValue]) {
          const d = decode(bytes);
          if (!d.ok) expect(typeof d.error).toBe("string");
        }
      }),
      params(300),
    );
  });
});

/** Payloads that decode into `shape` as Go would: nulls, unknown fields, keys in another case. */
function conforming(shape: Shape): fc.Arbitrary<unknown> {
  if (shape === "string")
    return fc.oneof({ weight: 5, arbitrary: fc.string() }, { weight: 1, arbitrary: fc.constant(null) });
  if (shape === "time")
    return fc
      .date({ min: new Date("1970-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
      .map((d) => d.toISOString());
  if (Array.isArray(shape))
    return fc.oneof(fc.array(conforming(shape[0] as Shape), { maxLength: 4 }), fc.constant(null));
  const fields = Object.entries(shape as Record<string, Shape>);
  const known = fields.map(([f]) => f.toLowerCase());
  return fc
    .tuple(
      fc.tuple(...fields.map(([, s]) => fc.option(conforming(s), { nil: undefined }))),
      fc.array(fc.boolean(), { minLength: fields.length, maxLength: fields.length }),
      fc.dictionary(
        fc.string({ maxLength: 8 }).filter((k) => !known.includes(k.toLowerCase()) && k !== "__proto__"),
        fc.jsonValue({ maxDepth: 2 }),
        { maxKeys: 3 },
      ),
    )
    .map(([values, upper, extra]) => {
      const out: Record<string, unknown> = { ...extra };
      fields.forEach(([f], i) => {
        if (values[i] !== undefined) out[upper[i] ? f.toUpperCase() : f] = values[i];
      });
      return out;
    });
}

/** Every path to a declared leaf of `shape`. */
function leafPaths(shape: Shape, prefix: string[] = []): string[][] {
  if (shape === "string" || shape === "time") return [prefix];
  if (Array.isArray(shape)) return [prefix];
  return Object.entries(shape as Record<string, Shape>).flatMap(([f, s]) => leafPaths(s, [...prefix, f]));
}

function setPath(value: unknown, path: string[], leaf: unknown): unknown {
  if (path.length === 0) return leaf;
  const obj =
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? { ...(value as Record<string, unknown>) }
      : {};
  for (const k of Object.keys(obj)) if (k.toLowerCase() === path[0]!.toLowerCase()) delete obj[k];
  obj[path[0]!] = setPath((value as Record<string, unknown> | null)?.[path[0]!], path.slice(1), leaf);
  return obj;
}

describe.each(Object.entries(REGISTRY_PAYLOADS).map(([t, s]) => [t as "dockerhub" | "quay" | "acr", s as Shape]))(
  "%s payload",
  (type, shape) => {
    const run = (value: unknown, tail = "") =>
      PROVIDERS[type].validate(
        { headers: new Headers(), body: new TextEncoder().encode(JSON.stringify(value) + tail) },
        { spec: spec(type, []), secret, compiled: NOTHING_COMPILED, auth, meter: new CelMeter() },
      ) as Validation;

    test("what decodes into the struct is accepted, whatever follows it", () => {
      fc.assert(
        fc.property(conforming(shape), fc.constantFrom("", "\n", " garbage", "{}"), (value, tail) => {
          expect(run(value, tail)).toMatchObject({ ok: true });
        }),
        params(200),
      );
    });

    test("a declared field of the wrong JSON type is refused", () => {
      const wrong = fc.oneof(fc.integer(), fc.boolean(), fc.constant({}), fc.constant([1]), fc.string());
      fc.assert(
        fc.property(conforming(shape), fc.constantFrom(...leafPaths(shape)), wrong, (value, path, leaf) => {
          const leafShape = path.reduce<Shape>((s, f) => (s as Record<string, Shape>)[f]!, shape);
          const fits = Array.isArray(leafShape)
            ? Array.isArray(leaf) && leaf.every((x) => typeof x === "string")
            : typeof leaf === "string";
          const verdict = run(setPath(value, path, leaf));
          expect(verdict.ok).toBe(fits);
          if (!verdict.ok) expect(verdict.reason).toContain("cannot unmarshal");
        }),
        params(200),
      );
    });
  },
);

test("the nexus payload is decoded with json.Unmarshal rules after the signature", () => {
  fc.assert(
    fc.property(
      conforming({ action: "string", repositoryName: "string" }),
      fc.constantFrom("", " ", "x"),
      (value, tail) => {
        const body = new TextEncoder().encode(JSON.stringify(value) + tail);
        const signature = new Bun.CryptoHasher("sha1", TOKEN).update(body).digest("hex");
        const verdict = PROVIDERS.nexus.validate(
          { headers: new Headers({ [Header.nexusSignature]: signature }), body },
          { spec: spec("nexus", []), secret, compiled: NOTHING_COMPILED, auth, meter: new CelMeter() },
        ) as Validation;
        expect(verdict.ok).toBe(tail.trim() === "");
      },
    ),
    params(200),
  );
});

test("conforms agrees with itself on generated shapes (no throw, undefined for conforming values)", () => {
  fc.assert(
    fc.property(
      conforming({ message: { data: "string", messageId: "string", publishTime: "time", subscription: "string" } }),
      (v) => {
        expect(
          conforms(v, {
            message: { data: "string", messageId: "string", publishTime: "time", subscription: "string" },
          }),
        ).toBeUndefined();
      },
    ),
    params(200),
  );
});

// ---------------------------------------------------------------------------------------------
// gcr envelope and generic-oidc bearer parsing

describe("gcr", () => {
  const gcr = (body: string, bearer = VALID_GOOGLE) =>
    PROVIDERS.gcr.validate(
      { headers: new Headers({ Authorization: `Bearer ${bearer}` }), body: new TextEncoder().encode(body) },
      { spec: spec("gcr", []), secret, compiled: NOTHING_COMPILED, auth, meter: new CelMeter() },
    );

  test("unwraps any event in a well-formed envelope to {action, digest, tag}", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ action: fc.string(), digest: fc.string(), tag: fc.string() }, { requiredKeys: [] }),
        fc.dictionary(fc.constantFrom("x", "y", "Other"), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }),
        async (event, extra) => {
          const verdict = await gcr(gcrEnvelope({ ...extra, ...event }));
          if (!verdict.ok) throw new Error(verdict.reason);
          expect(JSON.parse(new TextDecoder().decode(verdict.payload))).toEqual({
            action: event.action ?? "",
            digest: event.digest ?? "",
            tag: event.tag ?? "",
          });
        },
      ),
      params(200),
    );
  });

  test("never throws on a mangled envelope or data", async () => {
    const data = fc.oneof(
      fc.string(),
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b).toString("base64")),
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v)).toString("base64")),
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v)).toString("base64url")),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          data.map((d) => gcrEnvelope(null, d)),
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ message: v })),
          fc.constantFrom(...SAMPLES),
        ),
        async (body) => {
          const verdict = await gcr(body);
          expect(typeof verdict.ok).toBe("boolean");
        },
      ),
      params(200),
    );
  });
});

describe("generic-oidc bearer", () => {
  test("the unverified issuer is read exactly when the payload is an object with a string iss", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({ iss: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })) }),
        ),
        fc.string({ maxLength: 20 }),
        (payload, header) => {
          const token = `${header}.${b64url(payload)}.sig`;
          const r = unverifiedIssuer(token);
          const iss =
            typeof payload === "object" && payload !== null && !Array.isArray(payload)
              ? (payload as { iss?: unknown }).iss
              : undefined;
          if (header.includes(".")) expect(r.ok).toBe(false);
          else if (typeof iss === "string" && iss !== "") expect(r).toEqual({ ok: true, iss });
          else expect(r.ok).toBe(false);
        },
      ),
      params(300),
    );
  });

  test("never throws on any Authorization value", async () => {
    const s = spec("generic-oidc", []);
    const compiled = compiledFor(s);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string().map((t) => `Bearer ${t}`),
          fc.tuple(fc.string(), fc.string(), fc.string()).map(([a, b, c]) => `Bearer ${a}.${b}.${c}`),
          fc.uint8Array({ maxLength: 64 }).map((b) => `Bearer x.${Buffer.from(b).toString("base64url")}.y`),
        ),
        async (value) => {
          let headers: Headers;
          try {
            headers = new Headers({ Authorization: value });
          } catch {
            return; // not a header value any client can send
          }
          const verdict = await PROVIDERS["generic-oidc"].validate(
            { headers, body: new Uint8Array(0) },
            { spec: s, secret, compiled, auth, meter: new CelMeter() },
          );
          expect(verdict.ok).toBe(false);
        },
      ),
      params(300),
    );
  });
});

test("the CDEvents sample is valid, and no mutation of it throws", () => {
  expect(validateCDEvent(new TextEncoder().encode(SAMPLES.find((s) => s.includes("cdevents"))!))).toBeUndefined();
  fc.assert(
    fc.property(
      fc.constantFrom(...EVENTS),
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom("context", "subject", "Context", "context.type", "subject.content", "context.id"),
      (type, value, where) => {
        const event = JSON.parse(SAMPLES.find((s) => s.includes("cdevents"))!);
        if (where === "context.type") event.context.type = type || value;
        else if (where === "subject.content") event.subject.content = value;
        else if (where === "context.id") event.context.id = value;
        else event[where] = value;
        const problem = validateCDEvent(new TextEncoder().encode(JSON.stringify(event)));
        if (problem !== undefined) expect(typeof problem).toBe("string");
      },
    ),
    params(200),
  );
});
