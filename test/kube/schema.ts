/**
 * @module schema
 * What kube-apiserver checks of a custom resource's status against its CRD's structural schema,
 * for the kinds the store gives one (registry.ts KindSpec.statusSchema): a write the schema
 * refuses is a 422 Invalid with a cause per field, worded as kube-apiserver words the common
 * ones. Not done, as listed in README.md: defaulting, pruning of unknown fields, CEL rules
 * (x-kubernetes-validations), and the spec (tests seed specs a real API server would refuse on
 * purpose, to test what fluxhook does with them).
 */
import Ajv, { type ErrorObject } from "ajv";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import type { StatusCause } from "./errors";

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
// OpenAPI's integer formats, which kube-apiserver checks through the type alone.
ajv.addFormat("int32", true).addFormat("int64", true);

export type StatusValidator = (status: unknown) => StatusCause[];

/** A JSON pointer inside `status` as kube-apiserver names a field: `status.conditions[0].reason`. */
function fieldOf(instancePath: string, property?: string): string {
  const parts = instancePath.split("/").slice(1);
  if (property !== undefined) parts.push(property);
  return parts.reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : `${path}.${part}`), "status");
}

function causeOf(error: ErrorObject, status: unknown): StatusCause {
  if (error.keyword === "required") {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return { reason: "FieldValueRequired", field: fieldOf(error.instancePath, missing), message: "Required value" };
  }
  const value = error.instancePath
    .split("/")
    .slice(1)
    .reduce<unknown>((v, part) => (v as Record<string, unknown> | undefined)?.[part], status);
  if (error.keyword === "enum") {
    const allowed = (error.params as { allowedValues: unknown[] }).allowedValues
      .map((v) => JSON.stringify(v))
      .join(", ");
    return {
      reason: "FieldValueNotSupported",
      field: fieldOf(error.instancePath),
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed}`,
    };
  }
  return {
    reason: "FieldValueInvalid",
    field: fieldOf(error.instancePath),
    message: `Invalid value: ${JSON.stringify(value)}: ${error.message ?? error.keyword}`,
  };
}

/** A validator for a status against the `status` property of a CRD version's openAPIV3Schema. */
export function statusValidator(statusSchema: object): StatusValidator {
  const validate = ajv.compile(statusSchema);
  return (status) =>
    status === undefined || validate(status) ? [] : (validate.errors ?? []).map((e) => causeOf(e, status));
}

/** The status schema of `kind`'s `version` in a CRD manifest file (YAML, one or more documents). */
export function crdStatusSchema(file: string, kind: string, version: string): object {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const crd = doc.toJSON() as {
      spec?: { names?: { kind?: string }; versions?: { name: string; schema?: { openAPIV3Schema?: any } }[] };
    } | null;
    if (crd?.spec?.names?.kind !== kind) continue;
    const schema = crd.spec.versions?.find((v) => v.name === version)?.schema?.openAPIV3Schema?.properties?.status;
    if (schema) return schema;
  }
  throw new Error(`no status schema for ${kind} ${version} in ${file}`);
}
