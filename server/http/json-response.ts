/**
 * @module server/http/json-response
 * Every answer of fluxhook's listeners is a small JSON document. Its size is kept beside the
 * Response so the response-size metric reads it without touching `Response.headers`, and the
 * common answer shares one prebuilt Headers: building headers per answer is a large part of the
 * cost of a 404 under Bun (bench/README.md). Bun sends Content-Length itself for a string body.
 */
const bodyBytes = new WeakMap<Response, number>();
const JSON_HEADERS = new Headers({ "content-type": "application/json" });

/**
 * Prebuilt Headers for the few extra headers answers carry (`allow: POST`, `retry-after: N`): at
 * default flags a flood of bad signatures is answered 429 with Retry-After, one Headers each.
 */
const EXTRA_HEADERS = new Map<string, Headers>();
/** Distinct extras kept prebuilt; retry-after values are a few small integers. */
const EXTRA_HEADERS_KEPT = 64;

function headersWith(extra: Record<string, string>): Headers {
  let key = "";
  for (const name in extra) key += `${name}\n${extra[name]}\n`;
  let headers = EXTRA_HEADERS.get(key);
  if (!headers) {
    headers = new Headers({ "content-type": "application/json", ...extra });
    if (EXTRA_HEADERS.size < EXTRA_HEADERS_KEPT) EXTRA_HEADERS.set(key, headers);
  }
  return headers;
}

export function jsonResponse(status: number, body: string, extra?: Record<string, string>): Response {
  const headers = extra && Object.keys(extra).length > 0 ? headersWith(extra) : JSON_HEADERS;
  const res = new Response(body, { status, headers });
  bodyBytes.set(res, Buffer.byteLength(body));
  return res;
}

/** The body size of an answer: what jsonResponse recorded, else its declared `content-length`. */
export function responseBytes(res: Response): number {
  return bodyBytes.get(res) ?? Number(res.headers.get("content-length") ?? 0);
}
