/**
 * @module control-channel
 * The test API server as a process: announce it, answer JSON-lines commands on stdin, and clean
 * up on SIGTERM/SIGINT. Shared by serve-fixture.ts (tests) and bench/servers/api.ts (benchmark),
 * which differ only in the commands they answer.
 */
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import type { KubeApiServer } from "./server";

export type Command = { cmd: string } & Record<string, unknown>;

/**
 * Prints `{"url":…,"kubeconfig":…}` on stdout, then answers each stdin line with
 * `{"ok":true,…result}` or `{"ok":false,"error":…}`, and runs until a signal arrives.
 */
export async function serveControlChannel(
  api: KubeApiServer,
  run: (api: KubeApiServer, command: Command) => unknown | Promise<unknown>,
): Promise<never> {
  const kubeconfig = api.writeKubeconfig();
  const shutdown = async () => {
    await api.close();
    rmSync(dirname(kubeconfig), { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.stdout.write(`${JSON.stringify({ url: api.url, kubeconfig })}\n`);

  for await (const line of console) {
    if (line.trim() === "") continue;
    try {
      const result = await run(api, JSON.parse(line) as Command);
      process.stdout.write(`${JSON.stringify({ ok: true, ...((result ?? {}) as object) })}\n`);
    } catch (error) {
      process.stdout.write(
        `${JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) })}\n`,
      );
    }
  }
  // stdin closed: keep serving until a signal arrives.
  return new Promise<never>(() => {});
}
