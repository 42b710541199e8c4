/**
 * action/id-token.ts: generic-oidc's ID token is reused until shortly before its `exp` (read from
 * the payload without verifying it), not minted again for every poll of a wait.
 */
import { describe, expect, test } from "bun:test";
import {
  ID_TOKEN_FALLBACK_LIFETIME_MS,
  ID_TOKEN_REFRESH_MARGIN_MS,
  reusedToken,
  tokenExpiry,
} from "../../action/id-token";

const jwt = (payload: unknown, n = 0) =>
  `${Buffer.from('{"alg":"RS256"}').toString("base64url")}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig${n}`;

describe("tokenExpiry", () => {
  test.each([
    ["exp in seconds", jwt({ exp: 1_800_000_000 }), 1_800_000_000_000],
    ["no exp", jwt({ sub: "x" }), undefined],
    ["exp not a number", jwt({ exp: "soon" }), undefined],
    ["not a JWT", "opaque-token", undefined],
    ["a payload that is not JSON", "a.!!!.c", undefined],
  ])("%s", (_name, token, want) => {
    expect(tokenExpiry(token)).toBe(want);
  });
});

describe("reusedToken", () => {
  /** A fake clock and an issuer whose n-th token expires `lifetimeMs` after it is minted (none: no exp). */
  function issuer(lifetimeMs: number | undefined) {
    let now = 1_000_000_000_000;
    const minted: string[] = [];
    const masked: string[] = [];
    const get = reusedToken(
      async () => {
        const token = jwt(lifetimeMs === undefined ? {} : { exp: (now + lifetimeMs) / 1000 }, minted.length);
        minted.push(token);
        return { ok: true as const, value: token };
      },
      () => now,
      (token) => masked.push(token),
    );
    return { get, minted, masked, advance: (ms: number) => (now += ms) };
  }

  test("a 5-minute token serves a minute of polls, then a new one is asked for before it expires", async () => {
    const h = issuer(5 * 60_000);
    const seen: string[] = [];
    for (let second = 0; second < 60; second += 7) {
      const token = await h.get();
      if (token.ok) seen.push(token.value);
      h.advance(7_000);
    }
    expect(new Set(seen).size).toBe(1);
    h.advance(5 * 60_000 - ID_TOKEN_REFRESH_MARGIN_MS - 63_000);
    expect(h.minted).toHaveLength(1);
    await h.get();
    expect(h.minted).toHaveLength(2);
    expect(h.masked).toEqual(h.minted);
  });

  test("a token without exp is reused for the fallback lifetime only", async () => {
    const h = issuer(undefined);
    await h.get();
    h.advance(ID_TOKEN_FALLBACK_LIFETIME_MS - 1);
    await h.get();
    expect(h.minted).toHaveLength(1);
    h.advance(1);
    await h.get();
    expect(h.minted).toHaveLength(2);
  });

  test("a failure is returned as it is, and the next call asks again", async () => {
    let calls = 0;
    const get = reusedToken(
      async () => (++calls === 1 ? { ok: false as const, error: "no" } : { ok: true as const, value: jwt({}) }),
      () => 0,
      () => {},
    );
    expect(await get()).toEqual({ ok: false, error: "no" });
    expect((await get()).ok).toBe(true);
    expect(calls).toBe(2);
  });
});
