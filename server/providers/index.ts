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

export type { Validator, Validation, DeliveryRequest, ValidatorContext } from "./types";
