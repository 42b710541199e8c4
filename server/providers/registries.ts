/**
 * @module server/providers/registries
 * `dockerhub`, `quay` and `acr`: container registries whose webhooks carry no signature. As in
 * Flux, nothing is authenticated (the secret URL is the only protection), but the body must
 * decode into the payload Flux expects, with Go's rules (server/providers/json-decode.ts): the
 * first JSON value is read, unknown fields are ignored, `null` is accepted, an empty body or a
 * field of the wrong type is refused. CEL's `req` sees the body untouched.
 */
import { conforms, firstJsonValue, type Shape } from "./json-decode";
import { accept, refuse, type Validator } from "./types";

/** The payloads Flux decodes (notification-controller receiver_handlers.go). */
export const REGISTRY_PAYLOADS = {
  dockerhub: { push_data: { tag: "string" }, repository: { repo_url: "string" } },
  quay: { docker_url: "string", updated_tags: ["string"] },
  acr: { action: "string", target: { repository: "string", tag: "string" } },
} as const satisfies Record<string, Shape>;

const NAMES = { dockerhub: "DockerHub", quay: "Quay", acr: "ACR" } as const;

function decodesAs(type: keyof typeof REGISTRY_PAYLOADS): Validator {
  return (request) => {
    const decoded = firstJsonValue(request.body);
    const problem = decoded.ok ? conforms(decoded.value, REGISTRY_PAYLOADS[type]) : decoded.error;
    if (problem) return refuse(`cannot decode ${NAMES[type]} webhook payload: ${problem}`);
    return accept(request);
  };
}

export const validateDockerHub: Validator = decodesAs("dockerhub");
export const validateQuay: Validator = decodesAs("quay");
export const validateAcr: Validator = decodesAs("acr");
