/**
 * Preloaded (bunfig.toml): after the tests, no webhook digest or test token may appear in anything
 * fluxhook emitted in this process (see emitted.ts).
 */
import { afterAll, expect } from "bun:test";
import { emittedCount, leaks } from "./emitted";

afterAll(() => {
  const found = leaks();
  if (found.length > 0)
    console.error(
      `secrets in what fluxhook emitted (${JSON.stringify(emittedCount())}):\n${found
        .slice(0, 10)
        .map((l) => `  ${l.secret.slice(0, 12)}… in ${l.text.slice(0, 300)}`)
        .join("\n")}`,
    );
  expect(found.length).toBe(0);
});
