/**
 * @module action/preflight
 * What is checked before anything is sent that parsing alone cannot check: the route to the
 * receiver is taken (a proxy variable that is no http:// or https:// proxy is refused, in a dry
 * run too: a dry run that accepts what the real run refuses would mislead), and the files the
 * inputs name are read (the payload, CA certificates, the client certificate and key). Every
 * problem is returned, not only the first, so that main.ts reports them with the inputs' own.
 */
import { readFile } from "node:fs/promises";
import * as tls from "node:tls";
import type { PayloadSource, PemSource, PreflightSources } from "./inputs";
import { checkPayload } from "./request";
import { selectProxy, type Route, type TlsMaterial } from "./transport";
import { Input } from "./vocabulary";

/** What the requests and the transport need from files: read once, before anything is sent. */
export interface Material {
  /** The payload's exact bytes: never decoded and re-encoded, so the signature covers what is sent. */
  readonly payload: Uint8Array;
  readonly tls: TlsMaterial;
}

export type Preflight =
  | { readonly ok: true; readonly material: Material; readonly route: Route }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Expected failures (an unreadable file, a bad payload) are values, reported with the inputs' errors. */
type Loaded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** Takes the route and reads every file `sources` names; what is undefined there was refused by parsing. */
export async function preflight(sources: PreflightSources): Promise<Preflight> {
  const errors: string[] = [];
  const keep = <T>(loaded: Loaded<T>): T | undefined => {
    if (loaded.ok) return loaded.value;
    errors.push(loaded.error);
    return undefined;
  };
  const route = sources.target === undefined ? undefined : keep(takeRoute(new URL(sources.target), sources));
  const payload = sources.payload === undefined ? undefined : keep(await loadPayload(sources.payload));
  const extraCa: string[] = [];
  for (const source of sources.tls.ca) {
    const pem = keep(await loadPem(source, source.kind === "file" ? Input.caFile : Input.ca, "certificate"));
    if (pem !== undefined) extraCa.push(pem);
  }
  // Read only as a pair: one without the other is an input error already.
  const { clientCert: certSource, clientKey: keySource } = sources.tls;
  const clientCert = certSource && keySource && keep(await loadPem(certSource, Input.clientCert, "certificate"));
  const clientKey = certSource && keySource && keep(await loadPem(keySource, Input.clientKey, "private key"));

  if (errors.length > 0 || route === undefined || payload === undefined) return { ok: false, errors };
  const nodeExtraCaPem = await nodeExtraCa(extraCa, sources.tls.nodeExtraCaCerts);
  return { ok: true, route, material: { payload, tls: { extraCa, clientCert, clientKey, nodeExtraCaPem } } };
}

function takeRoute(target: URL, sources: PreflightSources): Loaded<Route> {
  const route = selectProxy(target, sources.proxy);
  return route.kind === "invalid"
    ? { ok: false, error: `${route.variable} is set but is not an http:// or https:// proxy URL.` }
    : { ok: true, value: route };
}

const errorCode = (err: unknown) => (err as { code?: string }).code ?? String(err);

async function loadPayload(source: PayloadSource): Promise<Loaded<Uint8Array>> {
  let bytes: Uint8Array;
  if (source.kind === "inline") bytes = new TextEncoder().encode(source.text);
  else {
    try {
      bytes = new Uint8Array(await readFile(source.path));
    } catch (err) {
      return { ok: false, error: `Cannot read the payload from "${source.path}" (${source.from}): ${errorCode(err)}.` };
    }
  }
  const check = checkPayload(bytes);
  return check.ok ? { ok: true, value: bytes } : { ok: false, error: `Cannot send the payload: ${check.reason}.` };
}

/** What a PEM of each kind contains. */
const PEM = {
  certificate: "-----BEGIN CERTIFICATE-----",
  "private key": "PRIVATE KEY-----",
} as const;

async function loadPem(source: PemSource, input: string, holds: keyof typeof PEM): Promise<Loaded<string>> {
  let pem: string;
  if (source.kind === "inline") pem = source.pem;
  else {
    try {
      pem = await readFile(source.path, "utf8");
    } catch (err) {
      return { ok: false, error: `Cannot read \`${input}\` from "${source.path}" (${errorCode(err)}).` };
    }
  }
  return pem.includes(PEM[holds])
    ? { ok: true, value: pem }
    : { ok: false, error: `\`${input}\` does not hold a PEM ${holds}.` };
}

/**
 * The NODE_EXTRA_CA_CERTS file, when an explicit CA list would drop it: older Node cannot list it
 * with its defaults (transport.ts `trustAnchors`). Unreadable, it is left out, as Node leaves it.
 */
async function nodeExtraCa(extraCa: readonly string[], path: string | undefined): Promise<string | undefined> {
  const listsDefaults = typeof (tls as { getCACertificates?: unknown }).getCACertificates === "function";
  if (extraCa.length === 0 || listsDefaults || !path) return undefined;
  return readFile(path, "utf8").catch(() => undefined);
}
