/**
 * `npm run build:openapi`: writes the receiver's OpenAPI description (server/http/openapi.ts) to
 * server/http/openapi.json, formatted as Biome formats it. test/server/openapi.test.ts fails when the
 * committed file differs from what this writes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { receiverOpenApi } from "../server/http/openapi";

const file = join(import.meta.dir, "../server/http/openapi.json");
writeFileSync(file, `${JSON.stringify(receiverOpenApi(), null, 2)}\n`);
const biome = Bun.spawnSync(["npx", "biome", "format", "--write", file], { stdout: "inherit", stderr: "inherit" });
process.exit(biome.exitCode ?? 1);
