/**
 * @module server/providers
 * One record per receiver type, in one table covering every type of the Receiver CRD: everything
 * that differs between types is a field of its record, so a new type is one entry and a missing
 * field a compile error. Each field's value lives in the type's own module.
 */
import { RECEIVER_TYPES, type ReceiverType } from "../../shared";
import { validateCDEvents } from "./cdevents";
import { validateGcr } from "./gcr";
import { validateGeneric } from "./generic";
import { validateGenericHmac } from "./generic-hmac";
import { validateGenericOidc } from "./generic-oidc";
import { validateBitbucket, validateGitHub } from "./github";
import { validateNexus } from "./nexus";
import {
  gcrQuery,
  gitlabQuery,
  harborQuery,
  hmacSignatureQuery,
  hubSignatureQuery,
  nexusSignatureQuery,
  oidcQuery,
  urlOnlyQuery,
} from "./query-auth";
import { validateAcr, validateDockerHub, validateQuay } from "./registries";
import { validateGitLab, validateHarbor } from "./token-header";
import type { QueryAuthenticator, Validator } from "./types";

/**
 * What authenticates a delivery of a type, beyond its secret URL: a signature over the raw body,
 * a credential in a header (a token, an ID token), or nothing (as in Flux). Duplicate and replay
 * detection and the failure-budget checks decide by it (delivery/).
 */
export type Credential = "body-signature" | "header" | "url-only";

/** One receiver type, as fluxhook serves it. */
export interface Provider {
  /** Checks a delivery and decodes the payload its filters see (Flux's validation, in its words). */
  readonly validate: Validator;
  readonly credential: Credential;
  /** Checks a status query's credential: the delivery's, applied to the query (query-auth.ts). */
  readonly authenticateQuery: QueryAuthenticator;
}

export const PROVIDERS: Readonly<Record<ReceiverType, Provider>> = {
  generic: { validate: validateGeneric, credential: "url-only", authenticateQuery: urlOnlyQuery },
  "generic-hmac": {
    validate: validateGenericHmac,
    credential: "body-signature",
    authenticateQuery: hmacSignatureQuery,
  },
  "generic-oidc": { validate: validateGenericOidc, credential: "header", authenticateQuery: oidcQuery },
  github: { validate: validateGitHub, credential: "body-signature", authenticateQuery: hubSignatureQuery },
  gitlab: { validate: validateGitLab, credential: "header", authenticateQuery: gitlabQuery },
  bitbucket: { validate: validateBitbucket, credential: "body-signature", authenticateQuery: hubSignatureQuery },
  harbor: { validate: validateHarbor, credential: "header", authenticateQuery: harborQuery },
  dockerhub: { validate: validateDockerHub, credential: "url-only", authenticateQuery: urlOnlyQuery },
  quay: { validate: validateQuay, credential: "url-only", authenticateQuery: urlOnlyQuery },
  gcr: { validate: validateGcr, credential: "header", authenticateQuery: gcrQuery },
  nexus: { validate: validateNexus, credential: "body-signature", authenticateQuery: nexusSignatureQuery },
  acr: { validate: validateAcr, credential: "url-only", authenticateQuery: urlOnlyQuery },
  cdevents: { validate: validateCDEvents, credential: "url-only", authenticateQuery: urlOnlyQuery },
};

/** The types whose credential is `credential`. */
export const typesWith = (credential: Credential): ReadonlySet<string> =>
  new Set(RECEIVER_TYPES.filter((t) => PROVIDERS[t].credential === credential));

export type {
  Validator,
  Validation,
  DeliveryRequest,
  ValidatorContext,
  QueryAuthentication,
  QueryAuthenticator,
} from "./types";
