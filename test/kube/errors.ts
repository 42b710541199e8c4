/**
 * @module errors
 * Kubernetes `Status` failures. Every error the server answers is one of these, with the
 * reason, message wording and `details` the real API server uses, because clients (and
 * client-node's `ApiException`) branch on `code` and `reason`, and humans read `message`.
 */

/** The `reason` values this server produces. */
export type StatusReason =
  | "BadRequest"
  | "NotFound"
  | "MethodNotAllowed"
  | "AlreadyExists"
  | "Conflict"
  | "Expired"
  | "UnsupportedMediaType"
  | "Invalid"
  | "TooManyRequests"
  | "InternalError"
  | "ServiceUnavailable"
  | "Timeout";

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** As in the real API server, this is the resource (plural), e.g. `secrets`. */
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** The `meta/v1` Status object. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** Default reason for an HTTP status, used by fault injection and unexpected errors. */
export const REASON_BY_CODE: Readonly<Record<number, StatusReason>> = {
  400: "BadRequest",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** What a resource is called in messages: `secrets` or `receivers.notification.toolkit.fluxcd.io`. */
export interface ResourceName {
  /** Plural resource name. */
  plural: string;
  /** API group, `""` for core. */
  group: string;
}

/** An API failure: thrown anywhere below the HTTP layer, turned into a Status response there. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  toStatus(): Status {
    return failureStatus(this.code, this.reason, this.message, this.details);
  }
}

/** Build a Failure Status. */
export function failureStatus(code: number, reason: StatusReason, message: string, details?: StatusDetails): Status {
  const status: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  if (details) status.details = details;
  return status;
}

function qualified(resource: ResourceName): string {
  return resource.group ? `${resource.plural}.${resource.group}` : resource.plural;
}

/** `details` naming one object, as the real server fills it. */
export function resourceDetails(resource: ResourceName, name: string): StatusDetails {
  return resource.group ? { name, group: resource.group, kind: resource.plural } : { name, kind: resource.plural };
}

export function notFound(resource: ResourceName, name: string): KubeApiError {
  return new KubeApiError(
    404,
    "NotFound",
    `${qualified(resource)} "${name}" not found`,
    resourceDetails(resource, name),
  );
}

export function alreadyExists(resource: ResourceName, name: string): KubeApiError {
  return new KubeApiError(
    409,
    "AlreadyExists",
    `${qualified(resource)} "${name}" already exists`,
    resourceDetails(resource, name),
  );
}

/** Optimistic-concurrency failure, worded like the API server so log-reading humans recognise it. */
export function conflict(resource: ResourceName, name: string, why?: string): KubeApiError {
  const reason = why ?? "the object has been modified; please apply your changes to the latest version and try again";
  return new KubeApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(resource)} "${name}": ${reason}`,
    resourceDetails(resource, name),
  );
}

/** 422: the object (or patch result) is not acceptable. */
export function invalid(kind: string, name: string, causes: StatusCause[], group = ""): KubeApiError {
  const text = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(", ");
  const details: StatusDetails = { name, kind, causes };
  if (group) details.group = group;
  return new KubeApiError(422, "Invalid", `${kind} "${name}" is invalid: ${text}`, details);
}

export function badRequest(message: string): KubeApiError {
  return new KubeApiError(400, "BadRequest", message);
}

export function pathNotFound(): KubeApiError {
  return new KubeApiError(404, "NotFound", "the server could not find the requested resource", {});
}

export function methodNotAllowed(method: string): KubeApiError {
  const message = `the server does not allow this method on the requested resource (${method})`;
  return new KubeApiError(405, "MethodNotAllowed", message, {});
}

export function unsupportedMediaType(contentType: string): KubeApiError {
  const accepted = "application/json, application/yaml, and the merge, strategic-merge, JSON and apply patch types";
  return new KubeApiError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: ${accepted} (got "${contentType}")`,
  );
}

/** The watch-cache answer for a resourceVersion older than the retained history. */
export function expired(requested: number, oldest: number): KubeApiError {
  return new KubeApiError(410, "Expired", `too old resource version: ${requested} (${oldest})`);
}
