/**
 * Where the CPU went, from a V8/Chrome `.cpuprofile` (what `bun --cpu-prof` writes): self time by
 * function and by file, top entries.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export async function summarizeProfile(path: string, top = 20): Promise<string> {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const file = frame.url
      ? frame.url.replace(/^.*\/(node_modules\/)/, "$1").replace(/^.*\/work\/[^/]+\//, "")
      : "(native)";
    const fn = `${frame.functionName || "(anonymous)"} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const pkg = file.startsWith("node_modules/")
      ? file
          .split("/")
          .slice(0, file.startsWith("node_modules/@") ? 3 : 2)
          .join("/")
      : file;
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + us);
  }
  const fmt = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  return `self time ${(total / 1e6).toFixed(2)} s in ${profile.samples.length} samples\nby function:\n${fmt(byFunction)}\nby file or package:\n${fmt(byFile)}`;
}
