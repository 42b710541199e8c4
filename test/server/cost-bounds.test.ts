/**
 * Hardening, round 2 (issue 11): what a request whose URL is its only credential can make the
 * server spend. Bodies that are cheap to send and costly to parse are refused by a pass over
 * their bytes before any parse; github and bitbucket check the signature before parsing a form;
 * CEL builtins are charged by the size of their inputs.
 */
import { describe, expect, test } from "bun:test";
import examples from "@octokit/webhooks-examples";
import { signPayload } from "../../shared";
import { VALIDATORS, type Validation } from "../../server/providers";
import { formPayload, signedPayload } from "../../server/providers/github";
import { exceedsJsonBounds } from "../../server/providers/json-bounds";
import { NOTHING_COMPILED } from "../../server/receivers/prepare";
import type { ReceiverSpec } from "../../server/api/receiver";
import type { ReceiverType } from "../../shared";
import { MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_JSON_VALUES } from "../../server/limits";
import type { AuthServices } from "../../server/jwt";

/** The costly bodies of the red-team report, each at most 3 MiB. */
export const COSTLY_BODIES = {
  "1.5 M nested arrays": "[".repeat(1_500_000) + "]".repeat(1_500_000),
  "1 M empty arrays": `[${Array(1_000_000).fill("[]").join(",")}]`,
  "300 k keys": `{${Array.from({ length: 300_000 }, (_, i) => `"${i.toString(36)}":0`).join(",")}}`,
} as const;

const enc = (s: string) => new TextEncoder().encode(s);
const noAuth = {} as AuthServices;

function spec(type: ReceiverType): ReceiverSpec {
  return {
    type,
    events: [],
    resources: [],
    resourceFilter: undefined,
    secretName: "s",
    oidcProviders: [],
    suspend: false,
  };
}

function validate(type: ReceiverType, body: string, headers: Record<string, string> = {}): Promise<Validation> {
  return Promise.resolve(
    VALIDATORS[type](
      { headers: new Headers(headers), body: enc(body) },
      { spec: spec(type), secret: { token: Buffer.from("t") }, compiled: NOTHING_COMPILED, auth: noAuth },
    ),
  );
}

describe("JSON bounds: costly bodies are refused before any parse", () => {
  test("the costly bodies fit in the body cap", () => {
    for (const body of Object.values(COSTLY_BODIES)) expect(body.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
  });

  test.each([
    ["1.5 M nested arrays", `JSON nesting is deeper than ${MAX_JSON_DEPTH} levels, more than any webhook sends`],
    ["1 M empty arrays", `JSON has more than ${MAX_JSON_VALUES} values, more than any webhook sends`],
    ["300 k keys", `JSON has more than ${MAX_JSON_VALUES} values, more than any webhook sends`],
  ] as const)("%s", async (name, reason) => {
    expect(exceedsJsonBounds(COSTLY_BODIES[name])).toBe(reason);
    const cases: [ReceiverType, string][] = [
      ["dockerhub", `cannot decode DockerHub webhook payload: ${reason}`],
      ["quay", `cannot decode Quay webhook payload: ${reason}`],
      ["acr", `cannot decode ACR webhook payload: ${reason}`],
      ["cdevents", `unable to validate CDEvent event: ${reason}`],
    ];
    for (const [type, want] of cases) {
      // A spy on JSON.parse: the body never reaches it.
      const parse = JSON.parse;
      let parsed = 0;
      JSON.parse = ((text: string, reviver?: never) => {
        parsed++;
        return parse(text, reviver);
      }) as typeof JSON.parse;
      try {
        expect(await validate(type, COSTLY_BODIES[name])).toEqual({ ok: false, reason: want });
      } finally {
        JSON.parse = parse;
      }
      expect(parsed).toBe(0);
    }
  });

  test("every real GitHub payload is within the bounds", () => {
    let checked = 0;
    for (const group of examples as { examples: unknown[] }[])
      for (const example of group.examples) {
        expect(exceedsJsonBounds(JSON.stringify(example))).toBeUndefined();
        checked++;
      }
    expect(checked).toBeGreaterThan(100);
  });

  test("brackets, commas and colons inside strings do not count; keys and scalars do", () => {
    const bounds = { maxDepth: 2, maxValues: 5 };
    expect(exceedsJsonBounds('{"[[[,:\\"[": "]]]{{{"}', 0, undefined, bounds)).toBeUndefined();
    expect(exceedsJsonBounds("[[1]]", 0, undefined, bounds)).toBeUndefined();
    expect(exceedsJsonBounds("[[[1]]]", 0, undefined, bounds)).toContain("deeper than 2");
    expect(exceedsJsonBounds("[1, true, null, -2]", 0, undefined, bounds)).toBeUndefined(); // 5 values
    expect(exceedsJsonBounds('[1, true, null, -2, "x"]', 0, undefined, bounds)).toContain("more than 5 values");
    expect(exceedsJsonBounds('{"a": 1, "b": 2}', 0, undefined, bounds)).toBeUndefined(); // 5 values
    expect(exceedsJsonBounds('{"a": 1, "b": 2, "c": 3}', 0, undefined, bounds)).toContain("more than 5 values");
  });

  test("Go's decoding reads only the first value: the bounds apply to it alone", async () => {
    const dockerhub = '{"push_data":{"tag":"v1"}}';
    expect(await validate("dockerhub", `${dockerhub} ${COSTLY_BODIES["1 M empty arrays"]}`)).toMatchObject({
      ok: true,
    });
  });
});

describe("github and bitbucket check the signature before parsing a form", () => {
  const form = `payload=${encodeURIComponent('{"ref":"refs/heads/main"}')}&${"x=1&".repeat(700_000)}`;

  test.each(["github", "bitbucket"] as const)(
    "%s: a forged form body is refused without being parsed",
    async (type) => {
      expect(form.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
      let parses = 0;
      const counting = (body: Uint8Array) => {
        parses++;
        return formPayload(body);
      };
      const validator = signedPayload(type === "github" ? "X-GitHub-Event" : "X-Event-Key", counting);
      const context = {
        spec: spec(type),
        secret: { token: Buffer.from("t") },
        compiled: NOTHING_COMPILED,
        auth: noAuth,
      };
      const formType = { "Content-Type": "application/x-www-form-urlencoded" };

      for (const headers of [
        formType,
        { ...formType, "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` },
        { ...formType, "X-Hub-Signature": signPayload("sha1", "wrong", form) },
      ]) {
        const verdict = await validator({ headers: new Headers(headers), body: enc(form) }, context);
        expect(verdict.ok).toBe(false);
      }
      expect(parses).toBe(0);

      const signed = { ...formType, "X-Hub-Signature-256": signPayload("sha256", "t", form) };
      const verdict = await validator({ headers: new Headers(signed), body: enc(form) }, context);
      expect(parses).toBe(1);
      if (!verdict.ok) throw new Error(verdict.reason);
      expect(new TextDecoder().decode(verdict.payload)).toBe('{"ref":"refs/heads/main"}');
    },
  );
});
