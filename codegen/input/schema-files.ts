/**
 * Schema files (`*.schema.json`): draft-07 files whose `definitions` all share
 * one namespace. They are merged into one bundle; every `$ref` must be
 * `#/definitions/<Name>` and name a definition of some file.
 */
import { Ajv } from 'ajv';
import { createAjv } from '../../common/ajv.js';
import { closeObjects } from '../../common/close-objects.js';
import { errorBodyName } from '../error-body.js';
import { CodegenError } from '../errors.js';
import { fieldOf, isJsonObject, type JsonObject, type JsonValue, pointerTo } from '../json.js';
import { pascalCaseName, reservedTypeNames } from '../names.js';
import { definitionNameOf, visitSchema } from '../schema-walk.js';
import { ajvError } from './read-json.js';

/** Definitions merged from every schema file, in file order, with the file each came from. */
export interface MergedDefinitions {
  readonly definitions: Record<string, JsonObject>;
  readonly fileOf: ReadonlyMap<string, string>;
}

/** Top-level keys a schema file may have; anything else would be silently lost, so it is an error. */
const allowedTopLevelKeys = new Set(['$schema', '$id', '$comment', 'title', 'description', 'definitions']);

const draft07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;

/** Merges the definitions of the schema files (given as `[file, parsed JSON]` in a stable order). */
export function mergeSchemaFiles(files: ReadonlyArray<readonly [string, JsonValue]>): MergedDefinitions {
  const metaValidator = new Ajv({ strict: false, validateFormats: false });
  const definitions: Record<string, JsonObject> = {};
  const fileOf = new Map<string, string>();
  for (const [file, json] of files) {
    if (!isJsonObject(json)) throw new CodegenError({ file, message: 'must hold a JSON object' });
    if (json.$schema !== undefined && (typeof json.$schema !== 'string' || !draft07.test(json.$schema))) {
      throw new CodegenError({
        file,
        field: '$schema',
        message: 'must be "http://json-schema.org/draft-07/schema#" (the generator reads draft-07 schemas)',
      });
    }
    for (const key of Object.keys(json)) {
      if (!allowedTopLevelKeys.has(key)) {
        throw new CodegenError({
          file,
          field: key,
          message: 'is not read by the generator: put every message under "definitions"',
        });
      }
    }
    if (!isJsonObject(json.definitions)) {
      throw new CodegenError({ file, field: 'definitions', message: 'must be an object of named messages' });
    }
    if (!metaValidator.validateSchema(json)) throw ajvError(file, metaValidator.errors);
    for (const [name, schema] of Object.entries(json.definitions)) {
      checkDefinitionName(file, name, fileOf);
      if (!isJsonObject(schema)) {
        throw new CodegenError({ file, field: `definitions.${name}`, message: 'must be a schema object' });
      }
      definitions[name] = schema;
      fileOf.set(name, file);
    }
  }
  return { definitions, fileOf };
}

function checkDefinitionName(file: string, name: string, fileOf: ReadonlyMap<string, string>): void {
  const field = `definitions.${name}`;
  if (!pascalCaseName.test(name)) {
    throw new CodegenError({
      file,
      field,
      message: 'must be a PascalCase name (ASCII letters and digits, starting with an upper-case letter)',
    });
  }
  if (name === errorBodyName || reservedTypeNames.has(name)) {
    throw new CodegenError({ file, field, message: `"${name}" is reserved by the generator; rename it` });
  }
  const first = fileOf.get(name);
  if (first !== undefined) {
    throw new CodegenError({
      file,
      field,
      message: `is defined twice (also in ${first}); all schema files share one namespace of definition names`,
    });
  }
}

/**
 * Checks every `$ref` of every definition: it must be `#/definitions/<Name>`
 * naming a definition of the bundle (refs to other files are written the same
 * way, since the files share one namespace). `$id` inside a definition would
 * change what its refs mean, so it is refused too.
 */
export function checkReferences(merged: MergedDefinitions): void {
  for (const [name, schema] of Object.entries(merged.definitions)) {
    const file = merged.fileOf.get(name);
    const base = pointerTo('/definitions', name);
    visitSchema(schema, (node: JsonObject, pointer: string) => {
      if (node.$id !== undefined) {
        throw new CodegenError({
          file,
          field: fieldOf(pointerTo(base + pointer, '$id')),
          message: '$id is not supported inside definitions (all definitions live in one bundle)',
        });
      }
      if (node.$ref === undefined) return;
      const field = fieldOf(pointerTo(base + pointer, '$ref'));
      const target = typeof node.$ref === 'string' ? definitionNameOf(node.$ref) : undefined;
      if (target === undefined) {
        throw new CodegenError({
          file,
          field,
          message: `${JSON.stringify(node.$ref)} is not a reference the generator can bundle; write "#/definitions/<Name>"`,
        });
      }
      if (!Object.hasOwn(merged.definitions, target)) {
        throw new CodegenError({
          file,
          field,
          message: `refers to "${target}", which no *.schema.json file defines`,
        });
      }
    });
  }
}

/**
 * Refuses what the server would take without a word and then get wrong:
 * a `format` Ajv does not know (it would skip the check: "datetime" for
 * "date-time"), and a `required` field that an object's `properties` do not
 * declare where unknown fields are dropped (see common/close-objects.ts:
 * the server would demand the field and then drop it, so no request could
 * ever carry it to the implementation).
 */
export function checkKeywords(id: string, merged: MergedDefinitions): void {
  const known = Object.keys(createAjv().formats);
  const [closed] = closeObjects([{ $id: id, definitions: merged.definitions }]);
  for (const [name, schema] of Object.entries(closed?.definitions ?? {})) {
    const file = merged.fileOf.get(name);
    const base = pointerTo('/definitions', name);
    visitSchema(schema as JsonValue, (node: JsonObject, pointer: string) => {
      if (typeof node.format === 'string' && !known.includes(node.format)) {
        throw new CodegenError({
          file,
          field: fieldOf(pointerTo(base + pointer, 'format')),
          message: `unknown format ${JSON.stringify(node.format)}; known: ${known.join(', ')}`,
        });
      }
      if (node.additionalProperties !== false || node.patternProperties !== undefined) return;
      const declared = isJsonObject(node.properties) ? node.properties : {};
      const required = Array.isArray(node.required) ? node.required : [];
      const missing = required.find((field) => typeof field === 'string' && !Object.hasOwn(declared, field));
      if (missing !== undefined) {
        throw new CodegenError({
          file,
          field: fieldOf(pointerTo(base + pointer, 'required')),
          message: `requires "${missing}", which its properties do not declare (unknown fields are dropped, so no request could carry it)`,
        });
      }
    });
  }
}

/** Compiles every definition with the server's Ajv setup, so a bad `pattern` or keyword fails here, not at startup. */
export function checkCompiles(id: string, merged: MergedDefinitions): void {
  const ajv = createAjv([{ $id: id, definitions: merged.definitions }]);
  for (const name of Object.keys(merged.definitions)) {
    try {
      ajv.compile({ $ref: `${id}#/definitions/${name}` });
    } catch (cause) {
      throw new CodegenError({
        file: merged.fileOf.get(name),
        field: `definitions.${name}`,
        message: `does not compile: ${(cause as Error).message}`,
        cause,
      });
    }
  }
}
