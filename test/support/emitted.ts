/**
 * @module test/support/emitted
 * The security review's grep over the whole suite: every log line and answer body the stacks of
 * test/support/stack.ts saw, and the secrets the tests gave fluxhook (the webhook digests, and
 * the tokens long enough to be told from ordinary words). test/support/grep-emitted.ts, preloaded
 * by bunfig.toml, checks after the tests that no secret appears in anything they emitted. These
 * lists are per process: under `bun test --parallel --no-isolate` a worker's files share them, so
 * the check covers every file that worker ran.
 */

/** Tokens shorter than this ("t", "token", "good") are words that messages contain anyway. */
const MIN_GREPPABLE_TOKEN = 12;
const DIGEST = /[0-9a-f]{64}/g;

const lines: string[] = [];
const digests = new Set<string>();
const tokens = new Set<string>();

export function recordEmitted(text: string): void {
  lines.push(text);
}

export function recordToken(token: string): void {
  if (token.length >= MIN_GREPPABLE_TOKEN) tokens.add(token);
}

/** A webhook path (`/hook/<digest>`) or a bare digest. */
export function recordPath(path: string): void {
  const digest = path.slice(path.lastIndexOf("/") + 1);
  if (/^[0-9a-f]{64}$/.test(digest)) digests.add(digest);
}

/** Emitted texts that contain a recorded secret, each with the secret it contains. */
export function leaks(): { secret: string; text: string }[] {
  const found: { secret: string; text: string }[] = [];
  for (const text of lines) {
    for (const digest of text.match(DIGEST) ?? []) if (digests.has(digest)) found.push({ secret: digest, text });
    for (const token of tokens) if (text.includes(token)) found.push({ secret: token, text });
  }
  return found;
}

export function emittedCount(): { texts: number; digests: number; tokens: number } {
  return { texts: lines.length, digests: digests.size, tokens: tokens.size };
}
