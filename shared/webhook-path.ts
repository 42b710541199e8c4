/**
 * @module shared/webhook-path
 * The receiver URL path, computed exactly as Flux's notification-controller computes it
 * (`api/v1/receiver_types.go`): "/hook/" + lowercase hex sha256(token + name + namespace).
 * The three parts are concatenated without a separator, as upstream does; changing that would
 * move every existing receiver's URL.
 */
import { createHash } from "node:crypto";

/** Prefix of every receiver path. */
export const WEBHOOK_PATH_PREFIX = "/hook/";

/** Lowercase hex sha256 of token + name + namespace: the secret part of the receiver URL. */
export function webhookDigest(token: string | Uint8Array, name: string, namespace: string): string {
  return createHash("sha256").update(token).update(name).update(namespace).digest("hex");
}

/** The receiver's path, `/hook/<digest>`. generic-oidc receivers use an empty token. */
export function webhookPath(token: string | Uint8Array, name: string, namespace: string): string {
  return WEBHOOK_PATH_PREFIX + webhookDigest(token, name, namespace);
}
