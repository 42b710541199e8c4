/**
 * @module server/http/json-response
 * Every answer of fluxhook's listeners is a small JSON document. Its size is kept beside the
 * Response so the response-size metric reads it without touching `Response.headers`, and the
 * common answer shares one prebuilt Headers: building headers per answer was a large part of the
 * cost of a 404 under Bun (bench/README.md). Bun sends Content-Length itself for a string body.
 */
const bodyBytes = new WeakMap<Response, number>();
const JSON_HEADERS = new Headers({ "content-type": "application/json" });

export function jsonResponse(status: number, body: string, extra?: Record<string, string>): Response {
  const headers =
    extra && Object.keys(extra).length > 0 ? { "content-type": "application/json", ...extra } : JSON_HEADERS;
  const res = new Response(body, { status, headers });
  bodyBytes.set(res, Buffer.byteLength(body));
  return res;
}

/** The body size of an answer: what jsonResponse recorded, else its declared `content-length`. */
export function responseBytes(res: Response): number {
  return bodyBytes.get(res) ?? Number(res.headers.get("content-length") ?? 0);
}
