/**
 * @module server/jwt/types
 * The verdict of a token check: the verified claims, or a reason safe to send back.
 */
export type TokenCheck = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: string };
