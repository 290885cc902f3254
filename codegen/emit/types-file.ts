/**
 * Emits `types.ts` with json-schema-to-typescript, compiled once over the whole
 * bundle so that shared messages are declared once, each under its own name.
 */
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import type { JsonObject } from '../json.js';
import { definitionNameOf, transformSchema } from '../schema-walk.js';
import { bannerComment } from './ts-source.js';

/** Name of the throw-away root type json-schema-to-typescript declares for the bundle itself. */
const rootName = 'LeasegateCodegenBundleRoot';

/**
 * The bundle as json-schema-to-typescript should see it. Two rewrites keep one
 * exported type per definition, named exactly as the definition:
 * - `{"$ref": "#/definitions/X", ...}` becomes `{"tsType": "X", ...}`: draft-07
 *   ignores a ref's siblings, but the library would dereference and clone the
 *   target (declaring `X1`, or inlining it) whenever a `description` sits next
 *   to the ref; with `tsType` the property keeps its own TSDoc and type `X`.
 * - a definition's `title` is forced to its name and nested `title`s are dropped,
 *   since the library names types after titles.
 */
export function typesCompilerInput(definitions: Readonly<Record<string, JsonObject>>): JsonObject {
  const prepared: JsonObject = {};
  for (const [name, schema] of Object.entries(definitions)) {
    const copy = transformSchema(schema, (node, pointer) => {
      const { title: _title, ...rest } = node;
      const target = typeof rest.$ref === 'string' ? definitionNameOf(rest.$ref) : undefined;
      const described = withLimits(rest);
      const { $ref: _ref, ...withoutRef } = described;
      const result: JsonObject = target === undefined ? described : { ...withoutRef, tsType: target };
      // The definition itself: named by its key. Other titles would declare extra types.
      return pointer === '' ? { title: name, ...result } : result;
    });
    prepared[name] = copy;
  }
  return { title: rootName, type: 'object', additionalProperties: false, definitions: prepared };
}

/**
 * A described node's description with what its schema allows that the type
 * cannot say (bounds, lengths) and its default as TSDoc's `@defaultValue`, so
 * that an editor shows them beside the field: a caller saw `pageSize?: number`
 * and nothing of 1..1000 or of the 100 it gets when leaving it out.
 */
function withLimits(node: JsonObject): JsonObject {
  if (typeof node.description !== 'string') return node;
  const notes: string[] = [];
  const range = (low: unknown, high: unknown, unit: string) => {
    const has = (v: unknown) => typeof v === 'number';
    if (has(low) && has(high)) notes.push(`From ${low} to ${high}${unit}.`);
    else if (has(low)) notes.push(`At least ${low}${unit}.`);
    else if (has(high)) notes.push(`At most ${high}${unit}.`);
  };
  range(node.minimum, node.maximum, '');
  range(node.minLength, node.maxLength, ' characters');
  range(node.minItems, node.maxItems, ' items');
  if (node.default !== undefined) notes.push(`@defaultValue ${JSON.stringify(node.default)}`);
  if (notes.length === 0) return node;
  return { ...node, description: `${node.description}\n\n${notes.join('\n')}` };
}

/** The source of types.ts: one exported interface or type per definition, TSDoc from descriptions. */
export async function emitTypesFile(
  definitions: Readonly<Record<string, JsonObject>>,
  source: string,
): Promise<string> {
  const output = await compile(typesCompilerInput(definitions) as JSONSchema, rootName, {
    bannerComment: bannerComment(source),
    additionalProperties: false,
    unreachableDefinitions: true,
    declareExternallyReferenced: true,
    strictIndexSignatures: false,
    unknownAny: true,
    // minItems/maxItems stay validation rules: `string[]`, not a union of tuples of every length up to 20.
    ignoreMinAndMaxItems: true,
    format: true,
    style: { singleQuote: true, bracketSpacing: true, trailingComma: 'all', printWidth: 110, semi: true },
    cwd: '/',
  });
  return checkTypes(cleanUp(output), Object.keys(definitions));
}

/** Drops the root type and the library's "referenced by" notes, which name that throw-away root. */
function cleanUp(output: string): string {
  const root = new RegExp(`export interface ${rootName} \\{\\}\\n`);
  if (!root.test(output))
    throw new Error(`json-schema-to-typescript output changed: no empty ${rootName} to drop`);
  return output
    .replace(root, '')
    .replace(
      /\n \*\n \* This interface was referenced by `\w+`'s JSON-Schema\n \* via the `definition` "\w+"\./g,
      '',
    )
    .replace(
      /\/\*\*\n \* This interface was referenced by `\w+`'s JSON-Schema\n \* via the `definition` "\w+"\.\n \*\/\n/g,
      '',
    )
    .replace(/\n{3,}/g, '\n\n');
}

/** Fails loudly unless every definition got its own type under its own name (no `Lease1`). */
function checkTypes(output: string, names: readonly string[]): string {
  const declared = new Set(
    [...output.matchAll(/^export (?:interface|type|enum|const enum) (\w+)/gm)].map((m) => m[1] ?? ''),
  );
  const missing = names.filter((name) => !declared.has(name));
  const renamed = [...declared].filter(
    (name) => /\d$/.test(name) && !names.includes(name) && names.includes(name.replace(/\d+$/, '')),
  );
  if (missing.length > 0 || renamed.length > 0 || output.includes(rootName)) {
    throw new Error(
      `json-schema-to-typescript did not declare one type per definition (missing: ${missing.join(', ') || 'none'}; renamed: ${renamed.join(', ') || 'none'})`,
    );
  }
  return output;
}
