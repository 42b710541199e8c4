/**
 * @module test/deploy/markdown
 * The fenced code blocks of a Markdown document, for tests that run or render what the
 * documents tell users to paste.
 */

/** The fenced code blocks of a Markdown text, in order, with their info string. */
export function codeBlocks(markdown: string): { lang: string; text: string }[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, text: m[2]! }));
}
