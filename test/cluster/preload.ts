/** Preloaded into the cluster tier (test/cluster/bunfig.toml): the shared control plane stops after the last test. */
import { afterAll } from "bun:test";
import { stopSharedPlane } from "./plane";

afterAll(async () => {
  await stopSharedPlane();
});
