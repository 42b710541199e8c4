/**
 * @module server/providers
 * One validator per receiver type, in one table. A type missing from the table is not served:
 * its Receivers are marked not Ready (ValidationFailed) instead of answering with a stub.
 */
import type { ReceiverType } from "../../shared";
import { validateGeneric } from "./generic";
import { validateGenericHmac } from "./generic-hmac";
import { validateBitbucket, validateGitHub } from "./github";
import { validateGitLab, validateHarbor } from "./token-header";
import type { Validator } from "./types";

export const VALIDATORS: Partial<Record<ReceiverType, Validator>> = {
  generic: validateGeneric,
  "generic-hmac": validateGenericHmac,
  github: validateGitHub,
  gitlab: validateGitLab,
  bitbucket: validateBitbucket,
  harbor: validateHarbor,
};

export type { Validator, Validation, DeliveryRequest, ValidatorContext } from "./types";
