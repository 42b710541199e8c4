/**
 * What a user pastes names where fluxhook is published, and nothing else: no `OWNER`, `<owner>` or
 * `<org>` to fill in, no other owner of the repository, the action, the image or the manifests, in
 * the documents and manifests a user copies from.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "./kustomize";
import { OWNER } from "./owner";

/** The files a user reads and pastes from: the documents, the Dockerfile, action.yml, deploy/ and examples/. */
const PASTED_FROM = [
  "README.md",
  "CONTRIBUTING.md",
  "SECURITY.md",
  "CHANGELOG.md",
  "Dockerfile",
  "action.yml",
  "action/README.md",
  "deploy",
  "examples",
];

function files(path: string): string[] {
  const full = join(REPO, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).flatMap((name) => files(join(path, name)));
}

/** A placeholder for the owner, with what it looked like. */
const PLACEHOLDERS: readonly RegExp[] = [
  /\bOWNER\b/,
  /<(?:your[-_ ]?)?(?:owner|org|organi[sz]ation|user|git[-_ ]?host)>/i,
  /<your [^>]*(?:git|github|repo|org)[^>]*>/i,
  /\bYOUR[-_]?(?:ORG|OWNER|USER)\b/,
];

/** Where an owner is named: group 1 is the owner. Dots may be escaped (a regular expression in YAML). */
const OWNER_REFERENCES: readonly RegExp[] = [
  /ghcr\\?\.io\/([^/\s"'`)\\]+)\/fluxhook\b/g,
  /github\\?\.com\/([^/\s"'`)\\]+)\/fluxhook\b/g,
  /raw\\?\.githubusercontent\\?\.com\/([^/\s"'`)\\]+)\/fluxhook\b/g,
  /uses:\s*([^/\s"'`]+)\/fluxhook@/g,
];

export interface Finding {
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

/** Every owner placeholder and every owner other than fluxhook's in a text. */
export function ownerFindings(text: string): Finding[] {
  const found: Finding[] = [];
  text.split("\n").forEach((line, i) => {
    if (PLACEHOLDERS.some((pattern) => pattern.test(line)))
      found.push({ line: i + 1, text: line.trim(), why: "a placeholder for the owner" });
    for (const pattern of OWNER_REFERENCES)
      for (const m of line.matchAll(pattern))
        if (m[1] !== OWNER) found.push({ line: i + 1, text: line.trim(), why: `owner ${m[1]} instead of ${OWNER}` });
  });
  return found;
}

describe("one owner in what users paste", () => {
  test("the scanner finds placeholders and other owners, and passes fluxhook's names", () => {
    const bad = [
      "- uses: OWNER/fluxhook@v1",
      "image: ghcr.io/<owner>/fluxhook:0.1.0",
      "  - https://<your git host>/<org>/fluxhook//deploy/base?ref=v0.1.0",
      "url: oci://ghcr.io/someone/fluxhook-manifests",
      "subject: ^https://github\\.com/octo-org/fluxhook/\\.github/workflows/release\\.yml@refs/tags/v",
      "curl -fsSLo cli.js https://raw.githubusercontent.com/acme/fluxhook/v1/action/dist/cli.js",
      "- uses: acme/fluxhook@v1",
    ];
    for (const line of bad) expect({ line, found: ownerFindings(line).length > 0 }).toEqual({ line, found: true });
    const good = [
      "- uses: fluxhook/fluxhook@v1",
      "url: oci://ghcr.io/fluxhook/fluxhook-manifests",
      "subject: ^https://github\\.com/fluxhook/fluxhook/\\.github/workflows/release\\.yml@refs/tags/v",
      "docker buildx build -t registry.example.com/fluxhook:0.1.0 .",
      "image: ghcr.io/fluxcd/notification-controller:v1.9.3",
    ];
    for (const line of good) expect({ line, found: ownerFindings(line) }).toEqual({ line, found: [] });
  });

  test.each(PASTED_FROM.flatMap(files).map((f) => [f] as const))("%s", (file) => {
    const findings = ownerFindings(readFileSync(join(REPO, file), "utf8"));
    expect(findings.map((f) => `${relative(".", file)}:${f.line}: ${f.why}: ${f.text}`)).toEqual([]);
  });
});
