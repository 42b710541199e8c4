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
import {
  acrRepository,
  bitbucketRepository,
  dockerhubRepository,
  gcrRepository,
  githubRepository,
  githubShapedRepository,
  gitlabRepository,
  harborRepository,
  oidcRepository,
  quayRepository,
  type RepositoryExtractor,
} from "./repository";
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
  /**
   * Where a validated delivery names its repository, for `fluxhook.io/route-by: repository`
   * (repository.ts); undefined when its deliveries name none routing can match.
   */
  readonly repository: RepositoryExtractor | undefined;
}

export const PROVIDERS: Readonly<Record<ReceiverType, Provider>> = {
  generic: {
    validate: validateGeneric,
    credential: "url-only",
    authenticateQuery: urlOnlyQuery,
    repository: githubShapedRepository,
  },
  "generic-hmac": {
    validate: validateGenericHmac,
    credential: "body-signature",
    authenticateQuery: hmacSignatureQuery,
    repository: githubShapedRepository,
  },
  "generic-oidc": {
    validate: validateGenericOidc,
    credential: "header",
    authenticateQuery: oidcQuery,
    repository: oidcRepository,
  },
  github: {
    validate: validateGitHub,
    credential: "body-signature",
    authenticateQuery: hubSignatureQuery,
    repository: githubRepository,
  },
  gitlab: {
    validate: validateGitLab,
    credential: "header",
    authenticateQuery: gitlabQuery,
    repository: gitlabRepository,
  },
  bitbucket: {
    validate: validateBitbucket,
    credential: "body-signature",
    authenticateQuery: hubSignatureQuery,
    repository: bitbucketRepository,
  },
  harbor: {
    validate: validateHarbor,
    credential: "header",
    authenticateQuery: harborQuery,
    repository: harborRepository,
  },
  dockerhub: {
    validate: validateDockerHub,
    credential: "url-only",
    authenticateQuery: urlOnlyQuery,
    repository: dockerhubRepository,
  },
  quay: { validate: validateQuay, credential: "url-only", authenticateQuery: urlOnlyQuery, repository: quayRepository },
  gcr: { validate: validateGcr, credential: "header", authenticateQuery: gcrQuery, repository: gcrRepository },
  nexus: {
    validate: validateNexus,
    credential: "body-signature",
    authenticateQuery: nexusSignatureQuery,
    repository: undefined,
  },
  acr: { validate: validateAcr, credential: "url-only", authenticateQuery: urlOnlyQuery, repository: acrRepository },
  cdevents: {
    validate: validateCDEvents,
    credential: "url-only",
    authenticateQuery: urlOnlyQuery,
    repository: undefined,
  },
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
