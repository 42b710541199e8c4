/**
 * Socket-free requests to the receiver app (`app.handle`) as Bun's router would hand them over:
 * served through `listen`, Bun's router matches the raw request-target and sets `request.params`;
 * `app.handle` goes through Elysia's router only, which the app answers 404 (its fallback). Here
 * the request's URL is taken as the raw request-target.
 */
import { STATUS_QUERY_SUFFIX, WEBHOOK_PATH_PREFIX } from "../../shared";
import { requestTarget } from "../../server/delivery/delivery";

/** `request`, with the params Bun's router sets when its path matches `/hook/:digest` or `/hook/:digest/status`. */
export function routed(request: Request): Request {
  const target = requestTarget(request.url);
  const query = target.indexOf("?");
  let path = query < 0 ? target : target.slice(0, query);
  if (path.endsWith(STATUS_QUERY_SUFFIX)) path = path.slice(0, -STATUS_QUERY_SUFFIX.length);
  if (!path.startsWith(WEBHOOK_PATH_PREFIX)) return request;
  const digest = path.slice(WEBHOOK_PATH_PREFIX.length);
  if (digest === "" || digest.includes("/")) return request;
  Object.defineProperty(request, "params", { value: { digest: decodeURIComponent(digest) } });
  return request;
}
