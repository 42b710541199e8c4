/**
 * Test certificates made at test time with openssl: a CA and a server certificate for 127.0.0.1.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string) {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "fluxhook-pki-"));
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "1",
      "-subj",
      "/CN=fluxhook test CA",
    ],
    dir,
  );
  openssl(
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    dir,
  );
  Bun.write(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
    ],
    dir,
  );
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { dir, caFile: join(dir, "ca.crt"), ca: read("ca.crt"), cert: read("server.crt"), key: read("server.key") };
}
