/**
 * A keyword-aware walk over JSON Schema (draft-07, plus the 2019-09/2020-12
 * spellings): only keywords that hold subschemas are entered, so data such as
 * `enum`, `const`, `default` and `examples` is never mistaken for a schema.
 */
import { isJsonObject, type JsonObject, type JsonValue, pointerTo } from './json.js';

/** Keywords whose value is one subschema. */
const singleSchemaKeywords = new Set([
  'additionalItems',
  'additionalProperties',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contentSchema',
]);

/** Keywords whose value maps names to subschemas. */
const schemaMapKeywords = new Set([
  'properties',
  'patternProperties',
  'definitions',
  '$defs',
  'dependentSchemas',
  'dependencies',
]);

/** Keywords whose value is an array of subschemas. */
const schemaArrayKeywords = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);

/** Called once per (object) subschema, children first; returns the node to put in its place. */
export type SchemaVisitor = (schema: JsonObject, pointer: string) => JsonObject;

/**
 * Returns a copy of `schema` in which every object subschema (the root
 * included, children before parents) is replaced by what `visit` returns.
 * Boolean schemas and non-schema values are copied as they are.
 */
export function transformSchema(schema: JsonValue, visit: SchemaVisitor, pointer = ''): JsonValue {
  if (!isJsonObject(schema)) return schema;
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    const at = pointerTo(pointer, key);
    if (singleSchemaKeywords.has(key) || (key === 'items' && !Array.isArray(value))) {
      copy[key] = transformSchema(value, visit, at);
    } else if (schemaArrayKeywords.has(key) || (key === 'items' && Array.isArray(value))) {
      copy[key] = Array.isArray(value)
        ? value.map((item, i) => transformSchema(item, visit, pointerTo(at, i)))
        : value;
    } else if (schemaMapKeywords.has(key) && isJsonObject(value)) {
      const map: JsonObject = {};
      for (const [name, sub] of Object.entries(value)) {
        // `dependencies` may also hold arrays of property names; those are not schemas.
        map[name] = Array.isArray(sub) ? sub : transformSchema(sub, visit, pointerTo(at, name));
      }
      copy[key] = map;
    } else {
      copy[key] = structuredClone(value);
    }
  }
  return visit(copy, pointer);
}

/** Calls `visit` on every object subschema of `schema`, for checks that change nothing. */
export function visitSchema(schema: JsonValue, visit: (schema: JsonObject, pointer: string) => void): void {
  transformSchema(schema, (node, pointer) => {
    visit(node, pointer);
    return node;
  });
}

/** The prefix of a reference to a definition of the bundle. */
export const definitionRefPrefix = '#/definitions/';

/** The definition name a `$ref` points at, or undefined when it is not `#/definitions/<Name>`. */
export function definitionNameOf(ref: string): string | undefined {
  if (!ref.startsWith(definitionRefPrefix)) return undefined;
  const name = ref.slice(definitionRefPrefix.length);
  return name === '' || name.includes('/') ? undefined : name;
}

/** A copy of `schema` whose `#/definitions/X` refs point at `<prefix>X` instead (for OpenAPI and OpenRPC). */
export function rewriteDefinitionRefs(schema: JsonValue, prefix: string): JsonValue {
  return transformSchema(schema, (node) => {
    const name = typeof node.$ref === 'string' ? definitionNameOf(node.$ref) : undefined;
    return name === undefined ? node : { ...node, $ref: `${prefix}${name}` };
  });
}
