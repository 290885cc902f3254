/** Schema components shared by the OpenAPI and OpenRPC builders. */
import type { ServiceDefinitions } from '../../common/service-table.js';
import { errorBodyName, errorBodySchema } from '../error-body.js';
import type { JsonObject, JsonValue } from '../json.js';
import { rewriteDefinitionRefs } from '../schema-walk.js';

/** The bundle's definitions as document components: refs rewritten to `<prefix><Name>`, ErrorBody always present. */
export function componentSchemas(defs: ServiceDefinitions, prefix: string): JsonObject {
  const definitions = defs.schemas.definitions as Readonly<Record<string, JsonValue>>;
  const schemas: JsonObject = {};
  for (const [name, schema] of Object.entries(definitions)) {
    schemas[name] = rewriteDefinitionRefs(schema, prefix);
  }
  if (!Object.hasOwn(schemas, errorBodyName)) schemas[errorBodyName] = errorBodySchema();
  return schemas;
}

/** A message of the bundle as a JSON object (the loader guarantees requests and responses are objects). */
export function messageSchema(defs: ServiceDefinitions, name: string): JsonObject {
  const schema = (defs.schemas.definitions as Readonly<Record<string, JsonValue>>)[name];
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new Error(`the schema bundle has no message named ${name}`);
  }
  return schema;
}
