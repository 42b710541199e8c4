/**
 * @module server/api/secret
 * The few keys of a Secret that receivers use. Only these are kept in memory. In a cluster the
 * Secrets are watched as metadata only (PartialObjectMetadata): such a Secret is `pending` until
 * receivers/secret-cache.ts has read it, which it does only for the Secrets Receivers reference.
 */

/** Keys read from a Receiver's Secret: `token` for every type, `email` and `audience` for gcr. */
export const SECRET_KEYS = ["token", "email", "audience"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

export type SecretData = Readonly<Partial<Record<SecretKey, Buffer>>>;

export interface SecretRecord {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** Known to exist, data not read yet (metadata only). */
  readonly pending: boolean;
  readonly data: SecretData;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads a Secret object (base64 `data`, as the API serves it; `stringData` too, for manifests). */
export function readSecret(obj: unknown): SecretRecord | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const { name, namespace, resourceVersion } = obj.metadata;
  if (typeof name !== "string" || typeof namespace !== "string") return undefined;
  const version = typeof resourceVersion === "string" ? resourceVersion : "";
  if (obj.kind === "PartialObjectMetadata")
    return { namespace, name, resourceVersion: version, pending: true, data: {} };
  const data: Partial<Record<SecretKey, Buffer>> = {};
  const encoded = isObject(obj.data) ? obj.data : {};
  const plain = isObject(obj.stringData) ? obj.stringData : {};
  for (const key of SECRET_KEYS) {
    const p = plain[key];
    const e = encoded[key];
    if (typeof p === "string") data[key] = Buffer.from(p, "utf8");
    else if (typeof e === "string") data[key] = Buffer.from(e, "base64");
  }
  return { namespace, name, resourceVersion: version, pending: false, data };
}
