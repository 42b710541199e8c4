/**
 * @module server/providers
 * One validator per receiver type, in one table covering every type of the Receiver CRD. The
 * table's type makes a missing entry a compile error.
 */
import type { ReceiverType } from "../../shared";
import { validateCDEvents } from "./cdevents";
import { validateGcr } from "./gcr";
import { validateGeneric } from "./generic";
import { validateGenericHmac } from "./generic-hmac";
import { validateGenericOidc } from "./generic-oidc";
import { validateBitbucket, validateGitHub } from "./github";
import { validateNexus } from "./nexus";
import { validateAcr, validateDockerHub, validateQuay } from "./registries";
import { validateGitLab, validateHarbor } from "./token-header";
import type { Validator } from "./types";

export const VALIDATORS: Readonly<Record<ReceiverType, Validator>> = {
  generic: validateGeneric,
  "generic-hmac": validateGenericHmac,
  "generic-oidc": validateGenericOidc,
  github: validateGitHub,
  gitlab: validateGitLab,
  bitbucket: validateBitbucket,
  harbor: validateHarbor,
  dockerhub: validateDockerHub,
  quay: validateQuay,
  gcr: validateGcr,
  nexus: validateNexus,
  acr: validateAcr,
  cdevents: validateCDEvents,
};

/**
 * What authenticates a delivery of each type, beyond its secret URL: a signature over the raw body,
 * a credential in a header (a token, an ID token), or nothing (as in Flux). Duplicate and replay
 * detection and the failure-budget checks decide by it (delivery/delivery.ts).
 */
export type Credential = "body-signature" | "header" | "url-only";

export const CREDENTIALS: Readonly<Record<ReceiverType, Credential>> = {
  generic: "url-only",
  "generic-hmac": "body-signature",
  "generic-oidc": "header",
  github: "body-signature",
  gitlab: "header",
  bitbucket: "body-signature",
  harbor: "header",
  dockerhub: "url-only",
  quay: "url-only",
  gcr: "header",
  nexus: "body-signature",
  acr: "url-only",
  cdevents: "url-only",
};

export type { Validator, Validation, DeliveryRequest, ValidatorContext } from "./types";
