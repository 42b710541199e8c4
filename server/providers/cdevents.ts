/**
 * @module server/providers/cdevents
 * `cdevents`: the body must be a valid CDEvent of spec v0.4.1 (what Flux's cdevents sdk-go `v04`
 * accepts), and `spec.events` filters on the `Ce-Type` header. No authentication, as in Flux.
 *
 * There is no CDEvents SDK for JavaScript, so validation uses the spec's own JSON schemas
 * (vendored in ./cdevents-schemas, Apache-2.0, from cdevents/spec v0.4.1, bundled into the
 * executable) with Ajv, a maintained
 * JSON Schema 2020-12 validator. sdk-go validates the event after decoding it into Go structs and
 * encoding it again; that round trip is reproduced before validating, from the schema itself:
 *
 *   - unknown fields are dropped (Go ignores them), and field names match case-insensitively;
 *   - a missing required field gets Go's zero value (`""`, `{}`, the zero time), so a missing
 *     `subject.content` passes (Go emits `{}`) while a missing `context.id` fails (`""` is too
 *     short);
 *   - formats are checked as Go's decoding does: `timestamp` must be RFC 3339 (time.Time), and
 *     URI references only need to be parseable (url.Parse); the schemas' `uri` format on
 *     `schemaUri` is an annotation, but sdk-go refuses any `schemaUri` it has no schema for,
 *     which with Flux is all of them.
 *
 * The event type comes from `context.type` (`dev.cdevents.<subject>.<predicate>.<version>`, or a
 * `dev.cdeventsx.<tool>-<subject>…` custom type); the schema's enum then pins the exact version.
 * CEL's `req` sees the body untouched.
 */
import Ajv2020, { type AnySchemaObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { Header } from "../../shared";
import { CDEVENTS_SCHEMAS } from "./cdevents-schemas";
import { checkEvent } from "./events";
import { wholeJsonValue } from "./json-decode";
import { accept, refuse, type Validator } from "./types";

/** The spec release sdk-go's v04 package validates against. */
export const CDEVENTS_SPEC_VERSION = "0.4.1";
const SCHEMA_BASE = `https://cdevents.dev/${CDEVENTS_SPEC_VERSION}/schema`;

/** sdk-go's type patterns (pkg/api/types.go CDEventsTypeRegex, CDEventsCustomTypeRegex). */
const EVENT_TYPE = /^dev\.cdevents\.([a-z]+)\.([a-z]+)\.(.*)$/;
const CUSTOM_EVENT_TYPE = /^dev\.cdeventsx\.([a-z]+)-([a-z]+)\.([a-z]+)\.(.*)$/;

/** Go's zero time.Time, as json.Marshal writes it. */
const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

interface Schemas {
  readonly ajv: Ajv2020;
  readonly byId: ReadonlyMap<string, AnySchemaObject>;
  readonly compiled: Map<string, ValidateFunction>;
}

let schemas: Schemas | undefined;

/** Registers the vendored schemas once, on the first CDEvent; each is compiled on first use. */
function loadSchemas(): Schemas {
  if (schemas) return schemas;
  const ajv = new Ajv2020({ allErrors: false, strict: false });
  addFormats(ajv, ["date-time"]);
  // url.Parse refuses only control characters and bad percent-escapes.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what the format refuses
  ajv.addFormat("uri-reference", (s: string) => !/[\x00-\x1f\x7f]/.test(s) && !/%(?![0-9a-fA-F]{2})/.test(s));
  ajv.addFormat("uri", true);
  const byId = new Map<string, AnySchemaObject>();
  for (const schema of CDEVENTS_SCHEMAS as AnySchemaObject[]) {
    byId.set(schema.$id!, schema);
    ajv.addSchema(schema);
  }
  schemas = { ajv, byId, compiled: new Map() };
  return schemas;
}

/** The value of `name` in a decoded object as Go finds it: exact, else case-insensitive. */
function keyOf(obj: Json, name: string): string | undefined {
  if (name in obj) return name;
  return Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
}

function zeroValue(schema: AnySchemaObject): unknown {
  if (schema.type === "object") return {};
  if (schema.type === "string") return schema.format === "date-time" ? GO_ZERO_TIME : "";
  return undefined;
}

/**
 * The event as sdk-go re-encodes it after decoding it into its structs (see the module comment),
 * derived from the schema: declared properties kept (renamed to their declared spelling),
 * undeclared ones dropped, missing required ones set to their zero value.
 */
function roundTrip(value: unknown, schema: AnySchemaObject | undefined): unknown {
  if (!schema) return value;
  if (Array.isArray(value) && isObject(schema.items))
    return value.map((v) => roundTrip(v, schema.items as AnySchemaObject));
  if (!isObject(value) || !isObject(schema.properties)) return value;
  const properties = schema.properties as Record<string, AnySchemaObject>;
  const out: Json = {};
  for (const [name, propertySchema] of Object.entries(properties)) {
    const key = keyOf(value, name);
    if (key !== undefined && value[key] !== null) out[name] = roundTrip(value[key], propertySchema);
    else if (((schema.required ?? []) as string[]).includes(name)) {
      const zero = zeroValue(propertySchema);
      if (zero !== undefined) out[name] = roundTrip(zero, propertySchema);
    }
  }
  if (schema.additionalProperties !== false) {
    for (const [k, v] of Object.entries(value))
      if (!(k in out) && !Object.keys(properties).some((n) => n.toLowerCase() === k.toLowerCase())) out[k] = v;
  }
  return out;
}

/** undefined when `body` is a valid CDEvent, else why not. */
export function validateCDEvent(body: Uint8Array): string | undefined {
  const decoded = wholeJsonValue(body);
  if (!decoded.ok) return decoded.error;
  const event = decoded.value;
  if (event !== null && !isObject(event))
    return `cannot unmarshal ${Array.isArray(event) ? "array" : typeof event} into a CDEvent`;
  const context = isObject(event) ? event[keyOf(event, "context") ?? ""] : undefined;
  if (context !== undefined && context !== null && !isObject(context))
    return "cannot unmarshal the context of the CDEvent";
  const rawType = isObject(context) ? context[keyOf(context, "type") ?? ""] : undefined;
  if (rawType !== undefined && rawType !== null && typeof rawType !== "string")
    return `cannot parse event type ${JSON.stringify(rawType)}`;
  const type = (rawType as string | null | undefined) ?? "";
  if (type === "") return "unknown event type: the context has no type";

  let schemaId: string;
  const standard = EVENT_TYPE.exec(type);
  if (standard) schemaId = `${SCHEMA_BASE}/${standard[1]}-${standard[2]}-event`;
  else if (CUSTOM_EVENT_TYPE.test(type)) schemaId = `${SCHEMA_BASE}/custom`;
  else return `cannot parse event type ${type}`;

  const { ajv, byId, compiled } = loadSchemas();
  const schema = byId.get(schemaId);
  if (!schema) return `unknown event type ${type}`;
  const schemaUri = isObject(context) ? context[keyOf(context, "schemaUri") ?? ""] : undefined;
  if (typeof schemaUri === "string" && schemaUri !== "")
    return `schema with id ${schemaUri} could not be found in the local registry`;

  let validate = compiled.get(schemaId);
  if (!validate) {
    validate = ajv.getSchema(schemaId)!;
    compiled.set(schemaId, validate);
  }
  if (validate(roundTrip(event, schema))) return undefined;
  return ajv.errorsText(validate.errors, { dataVar: "event", separator: "; " });
}

export const validateCDEvents: Validator = (request, { spec }) => {
  const problem = validateCDEvent(request.body);
  if (problem) return refuse(`unable to validate CDEvent event: ${problem}`);
  const event = request.headers.get(Header.ceType);
  const refused = checkEvent(spec.events, event, Header.ceType);
  if (refused) return refuse(refused);
  return accept(request, event ?? undefined);
};
