import { expect, test } from "bun:test";
import { jsonResponse, responseBytes } from "../../server/http/json-response";

test("answers with extra headers carry exactly theirs, whether prebuilt or not", async () => {
  // More distinct extras than are kept prebuilt, each asked twice: none leaks into another.
  for (let round = 0; round < 2; round++)
    for (let n = 1; n <= 100; n++) {
      const res = jsonResponse(429, `{"status":429,"n":${n}}`, { "retry-after": String(n) });
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe(String(n));
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(res.headers.get("allow")).toBeNull();
      expect(await res.json()).toEqual({ status: 429, n });
    }
  const allow = jsonResponse(405, "{}", { allow: "POST" });
  expect([allow.headers.get("allow"), allow.headers.get("retry-after")]).toEqual(["POST", null]);
  const plain = jsonResponse(200, '{"é":1}');
  expect([plain.headers.get("retry-after"), plain.headers.get("allow")]).toEqual([null, null]);
  expect(responseBytes(plain)).toBe(Buffer.byteLength('{"é":1}'));
});
