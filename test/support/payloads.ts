/**
 * Real GitHub webhook payloads (@octokit/webhooks-examples), as the bytes a sender would post.
 */
import examples from "@octokit/webhooks-examples";

/** The first example of a GitHub event, serialised compactly as GitHub sends it. */
export function githubExample(event: string, index = 0): string {
  const entry = (examples as { name: string; examples: unknown[] }[]).find((e) => e.name === event);
  const example = entry?.examples[index];
  if (example === undefined) throw new Error(`no @octokit/webhooks-examples payload for ${event}[${index}]`);
  return JSON.stringify(example);
}
