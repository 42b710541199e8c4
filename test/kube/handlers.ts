/**
 * @module handlers
 * The REST verbs: one function per route type, turning a routed request into store calls and a
 * JSON response. Errors are thrown as KubeApiError and rendered by the server in one place.
 */
import { apiGroupDocument, apiGroupList, apiResourceList, apiVersions, versionInfo } from "./discovery";
import {
  badRequest,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  resourceDetails,
  unsupportedMediaType,
} from "./errors";
import { isObject } from "./json";
import { applyJsonPatch, applyMergePatch, JsonPatchError } from "./patch";
import type { KindInfo, KindRegistry } from "./registry";
import type { Route } from "./router";
import { EVERYTHING, parseFieldSelector, parseLabelSelector, type Selector } from "./selectors";
import type { DeletePreconditions, ObjectStore, Subresource } from "./store";
import type { KubeObject } from "./types";
import type { ListPager, Page } from "./pager";
import type { WatchHub, WatchStart } from "./watch";
import { watchResponse } from "./watch-stream";

export interface HandlerContext {
  readonly registry: KindRegistry;
  readonly store: ObjectStore;
  readonly hub: WatchHub;
  readonly pager: ListPager;
  readonly bookmarkIntervalMs: number;
  /** host:port, for the APIVersions document. */
  readonly serverAddress: string;
}

export interface ApiRequest {
  readonly method: string;
  readonly url: URL;
  readonly request: Request;
  readonly watch: boolean;
}

type ObjectRoute = Extract<Route, { type: "object" }>;
type CollectionRoute = Extract<Route, { type: "collection" }>;

export const MERGE_PATCH = "application/merge-patch+json";
export const STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json";
export const JSON_PATCH = "application/json-patch+json";
export const APPLY_PATCH = "application/apply-patch+yaml";

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}

/** The media type without parameters, lower-cased; "" when absent. */
export function mediaType(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

function parseYaml(text: string): unknown {
  if (typeof Bun === "undefined" || !Bun.YAML) throw unsupportedMediaType("application/yaml");
  try {
    return Bun.YAML.parse(text);
  } catch (error) {
    throw badRequest(`error converting YAML to JSON: ${(error as Error).message}`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Read a create/update body: JSON (also when no content type is given) or YAML. */
async function readObjectBody(request: Request): Promise<unknown> {
  const type = mediaType(request);
  const text = await request.text();
  if (type === "" || type === "application/json" || type === "*/*") return parseJson(text);
  if (type === "application/yaml") return parseYaml(text);
  throw unsupportedMediaType(type);
}

function selectorOf(url: URL, info: KindInfo, extraField?: string): Selector {
  const labels = parseLabelSelector(url.searchParams.get("labelSelector"));
  const fields = parseFieldSelector(url.searchParams.get("fieldSelector"), info.fieldSelectors);
  if (extraField) fields.push({ field: "metadata.name", op: "=", value: extraField });
  return labels.length === 0 && fields.length === 0 ? EVERYTHING : { labels, fields };
}

/**
 * Metadata-only answers, as the real API server gives them for an Accept header of
 * `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` (lists) or
 * `…;as=PartialObjectMetadata;…` (objects and watch events): kind, apiVersion and metadata only.
 */
function wantsMetadataOnly(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  return /as=PartialObjectMetadata(List)?\b/.test(accept) && /g=meta\.k8s\.io/.test(accept) && /v=v1\b/.test(accept);
}

const metadataOnly = (object: KubeObject): KubeObject =>
  ({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata }) as KubeObject;

/** A watch event line with its object cut to metadata (Status and bookmark objects pass as they are). */
function metadataOnlyLine(line: string): string {
  const event = JSON.parse(line) as { type: string; object: KubeObject };
  if (event.type === "ERROR" || event.type === "BOOKMARK") return line;
  return `${JSON.stringify({ type: event.type, object: metadataOnly(event.object) })}\n`;
}

function listOf(ctx: HandlerContext, info: KindInfo, items: KubeObject[], page?: Page) {
  const metadata: Record<string, unknown> = {
    resourceVersion: String(page?.resourceVersion ?? ctx.store.resourceVersion),
  };
  if (page?.continue) metadata.continue = page.continue;
  if (page?.remainingItemCount !== undefined) metadata.remainingItemCount = page.remainingItemCount;
  return { kind: info.listKind, apiVersion: info.apiVersion, metadata, items };
}

/** A list, paged when `limit` asks for it (pager.ts). */
function list(ctx: HandlerContext, req: ApiRequest, info: KindInfo, namespace: string | undefined) {
  const limit = nonNegativeInt(req.url, "limit") ?? 0;
  const token = req.url.searchParams.get("continue");
  const query = `${info.key}|${namespace ?? ""}|${req.url.searchParams.get("labelSelector") ?? ""}|${req.url.searchParams.get("fieldSelector") ?? ""}`;
  const page = token
    ? ctx.pager.next(query, token, limit)
    : ctx.pager.first(
        query,
        ctx.store.list(info, namespace, selectorOf(req.url, info)),
        ctx.store.resourceVersion,
        limit,
      );
  if (wantsMetadataOnly(req.request)) {
    const list = listOf(ctx, info, page.items.map(metadataOnly), page);
    // kube-apiserver encodes an empty PartialObjectMetadataList's items as null (a nil Go slice).
    return {
      ...list,
      kind: "PartialObjectMetadataList",
      apiVersion: "meta.k8s.io/v1",
      items: list.items.length ? list.items : null,
    };
  }
  return listOf(ctx, info, page.items, page);
}

function nonNegativeInt(url: URL, param: string): number | undefined {
  const raw = url.searchParams.get(param);
  if (raw === null || raw === "") return undefined;
  if (!/^\d+$/.test(raw)) throw badRequest(`invalid ${param} "${raw}": must be a non-negative integer`);
  return Number(raw);
}

function watch(
  ctx: HandlerContext,
  req: ApiRequest,
  info: KindInfo,
  namespace: string | undefined,
  name?: string,
): Response {
  const selector = selectorOf(req.url, info, name);
  const rv = req.url.searchParams.get("resourceVersion");
  // "", absent and "0" all mean: start with the current state, then follow.
  const start: WatchStart =
    rv === null || rv === "" || rv === "0"
      ? { initial: ctx.store.list(info, namespace, selector) }
      : { afterRv: nonNegativeInt(req.url, "resourceVersion")! };
  return watchResponse({
    hub: ctx.hub,
    filter: { info, namespace, selector },
    start,
    bookmarkIntervalMs: req.url.searchParams.get("allowWatchBookmarks") === "true" ? ctx.bookmarkIntervalMs : undefined,
    timeoutSeconds: nonNegativeInt(req.url, "timeoutSeconds"),
    signal: req.request.signal,
    transform: wantsMetadataOnly(req.request) ? metadataOnlyLine : undefined,
  });
}

async function collection(ctx: HandlerContext, req: ApiRequest, route: CollectionRoute): Promise<Response> {
  const { info, namespace } = route;
  switch (req.method) {
    case "GET":
      if (req.watch || route.legacyWatch) return watch(ctx, req, info, namespace);
      return json(list(ctx, req, info, namespace));
    case "POST":
      if (info.namespaced && namespace === undefined) throw methodNotAllowed(req.method);
      return json(ctx.store.create(info, namespace, await readObjectBody(req.request)), 201);
    case "DELETE":
      return json(listOf(ctx, info, ctx.store.deleteCollection(info, namespace, selectorOf(req.url, info))));
    default:
      throw methodNotAllowed(req.method);
  }
}

/** Build the patched object for one of the supported patch types. */
async function patcherFor(req: ApiRequest, route: ObjectRoute): Promise<(current: KubeObject) => unknown> {
  const type = mediaType(req.request);
  const text = await req.request.text();
  switch (type) {
    case MERGE_PATCH:
    case STRATEGIC_MERGE_PATCH: {
      const patch = parseJson(text);
      if (!isObject(patch)) throw badRequest(`a ${type} body must be a JSON object`);
      return (current) => applyMergePatch(current, patch);
    }
    case JSON_PATCH: {
      const ops = parseJson(text);
      return (current) => {
        try {
          return applyJsonPatch(current, ops);
        } catch (error) {
          if (!(error instanceof JsonPatchError)) throw error;
          if (error.malformed) throw badRequest(error.message);
          throw invalid(
            route.info.kind,
            route.name,
            [{ reason: "FieldValueInvalid", message: error.message }],
            route.info.group,
          );
        }
      };
    }
    default:
      throw unsupportedMediaType(type);
  }
}

/** Simplified server-side apply: create when absent, merge-patch semantics otherwise. No field ownership. */
async function apply(ctx: HandlerContext, req: ApiRequest, route: ObjectRoute): Promise<Response> {
  const { info, namespace, name } = route;
  if (!req.url.searchParams.get("fieldManager")) {
    throw badRequest(
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
  }
  const text = await req.request.text();
  const body = text.trimStart().startsWith("{") ? parseJson(text) : parseYaml(text);
  if (!isObject(body)) throw badRequest("an apply patch must be an object");
  if (body.apiVersion !== info.apiVersion || body.kind !== info.kind) {
    throw badRequest(`apply patch must set apiVersion "${info.apiVersion}" and kind "${info.kind}"`);
  }
  const metadata = isObject(body.metadata) ? body.metadata : {};
  if (metadata.name !== undefined && metadata.name !== name) {
    throw badRequest(`the name of the object (${String(metadata.name)}) does not match the name on the URL (${name})`);
  }
  if (!ctx.store.read(info, namespace, name)) {
    if (route.subresource) throw pathNotFound();
    return json(ctx.store.create(info, namespace, { ...body, metadata: { ...metadata, name } }), 201);
  }
  return json(ctx.store.patch(info, namespace, name, (current) => applyMergePatch(current, body), route.subresource));
}

async function deletePreconditions(request: Request): Promise<DeletePreconditions> {
  const text = await request.text();
  if (text.trim() === "") return {};
  const options = parseJson(text);
  if (!isObject(options)) throw badRequest("DeleteOptions must be a JSON object");
  const pre = isObject(options.preconditions) ? options.preconditions : {};
  return {
    uid: typeof pre.uid === "string" ? pre.uid : undefined,
    resourceVersion: typeof pre.resourceVersion === "string" ? pre.resourceVersion : undefined,
  };
}

async function object(ctx: HandlerContext, req: ApiRequest, route: ObjectRoute): Promise<Response> {
  const { info, namespace, name } = route;
  const sub: Subresource | undefined = route.subresource;
  switch (req.method) {
    case "GET": {
      if ((req.watch || route.legacyWatch) && !sub) return watch(ctx, req, info, namespace, name);
      const found = ctx.store.read(info, namespace, name);
      if (!found) throw notFound(info, name);
      return json(found);
    }
    case "PUT":
      return json(ctx.store.replace(info, namespace, name, await readObjectBody(req.request), sub));
    case "PATCH":
      if (mediaType(req.request) === APPLY_PATCH) return apply(ctx, req, route);
      return json(ctx.store.patch(info, namespace, name, await patcherFor(req, route), sub));
    case "DELETE": {
      if (sub) throw methodNotAllowed(req.method);
      const { object: last, deleted } = ctx.store.delete(info, namespace, name, await deletePreconditions(req.request));
      // Built-in (core) kinds answer a finished delete with a Status; custom resources with the object.
      if (deleted && info.group === "") {
        const details = { ...resourceDetails(info, name), uid: last.metadata.uid };
        return json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details });
      }
      return json(last);
    }
    default:
      throw methodNotAllowed(req.method);
  }
}

const ROOT_PATHS = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"];

/** Dispatch a routed request. */
export async function handle(ctx: HandlerContext, req: ApiRequest, route: Route): Promise<Response> {
  // Refusing beats silently persisting a write the client meant as a dry run.
  if (req.method !== "GET" && req.url.searchParams.has("dryRun"))
    throw badRequest("dryRun is not supported by the test API server");
  if (route.type === "collection") return collection(ctx, req, route);
  if (route.type === "object") return object(ctx, req, route);
  if (req.method !== "GET") throw methodNotAllowed(req.method);
  switch (route.type) {
    case "root":
      return json({ paths: [...ROOT_PATHS, ...ctx.registry.groups().map((g) => `/apis/${g}`)] });
    case "version":
      return json(versionInfo());
    case "health":
      return new Response("ok", { headers: { "content-type": "text/plain" } });
    case "apiVersions":
      return json(apiVersions(ctx.serverAddress));
    case "apiGroupList":
      return json(apiGroupList(ctx.registry));
    case "apiGroup":
      return json(apiGroupDocument(ctx.registry, route.group) ?? throwNotFound());
    case "resourceList":
      return json(apiResourceList(ctx.registry, route.group, route.version) ?? throwNotFound());
  }
}

function throwNotFound(): never {
  throw pathNotFound();
}
