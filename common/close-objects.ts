/**
 * How unknown request fields are dropped: the validator's copy of a schema
 * bundle gets `additionalProperties: false` on every object schema that lists
 * its `properties` and says nothing of other properties, and Ajv removes what
 * such a schema does not list (`removeAdditional: true`).
 *
 * Not on schemas that take part in a composition (oneOf, anyOf, allOf, not,
 * if/then/else), nor on anything under one or referred to from under one:
 * Ajv runs every branch on the same object, so a branch that does not match
 * (or an allOf part, which lists only its own fields) would delete the fields
 * of the branch that does. Ajv's `removeAdditional: "all"`, used before, did
 * exactly that: a valid `oneOf` value was refused or lost its fields, an
 * `allOf` object was refused, and a map (`additionalProperties: {schema}`)
 * came out empty. Objects there keep unknown fields; the implementation's
 * types do not name them.
 */
import type { SchemaBundle } from './service-table.js';

type Node = Record<string, unknown>;

const compositions = ['oneOf', 'anyOf', 'allOf', 'not', 'if', 'then', 'else'] as const;
/** Keywords holding one subschema, or an array of them, that are not compositions. */
const singles = ['items', 'additionalItems', 'additionalProperties', 'contains', 'propertyNames'] as const;
const maps = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'] as const;

const isNode = (value: unknown): value is Node =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every subschema of `node`, each with whether it sits in a composition of `node`. */
function* children(node: Node): Generator<[Node, boolean]> {
  for (const key of compositions) {
    const value = node[key];
    if (Array.isArray(value)) for (const s of value) if (isNode(s)) yield [s, true];
    if (isNode(value)) yield [value, true];
  }
  for (const key of singles) {
    const value = node[key];
    if (Array.isArray(value)) for (const s of value) if (isNode(s)) yield [s, false];
    if (isNode(value)) yield [value, false];
  }
  for (const key of maps) {
    const value = node[key];
    if (isNode(value)) for (const s of Object.values(value)) if (isNode(s)) yield [s, false];
  }
}

const composes = (node: Node): boolean => compositions.some((key) => node[key] !== undefined);

/**
 * The validator's copies of `bundles`, with unknown fields closed off as
 * described above. The bundles themselves (which the docs show) are left as
 * they are.
 */
export function closeObjects(bundles: readonly SchemaBundle[]): SchemaBundle[] {
  const copies = bundles.map((b) => structuredClone(b) as SchemaBundle);
  const byId = new Map(copies.map((b) => [b.$id, b]));
  /** The definition a `$ref` names, in the bundle it is written in or the one its URI names. */
  const target = (ref: string, from: SchemaBundle): Node | undefined => {
    const at = ref.indexOf('#/definitions/');
    if (at < 0) return undefined;
    const bundle = at === 0 ? from : byId.get(ref.slice(0, at));
    const definition = bundle?.definitions[ref.slice(at + '#/definitions/'.length)];
    return isNode(definition) ? definition : undefined;
  };

  // First the schemas that any composition reaches (through $refs too), then close the others.
  const composed = new Set<Node>();
  const reach = (node: Node, inside: boolean, bundle: SchemaBundle): void => {
    if (inside) {
      if (composed.has(node)) return;
      composed.add(node);
    }
    const ref = node.$ref;
    if (inside && typeof ref === 'string') {
      const t = target(ref, bundle);
      if (t !== undefined) reach(t, true, bundle);
    }
    const self = inside || composes(node);
    for (const [child, viaComposition] of children(node)) reach(child, self || viaComposition, bundle);
  };
  for (const bundle of copies)
    for (const definition of Object.values(bundle.definitions))
      if (isNode(definition)) reach(definition, false, bundle);

  const close = (node: Node): void => {
    if (
      !composed.has(node) &&
      !composes(node) &&
      isNode(node.properties) &&
      node.additionalProperties === undefined &&
      node.patternProperties === undefined &&
      node.unevaluatedProperties === undefined
    )
      node.additionalProperties = false;
    for (const [child] of children(node)) close(child);
  };
  for (const bundle of copies)
    for (const definition of Object.values(bundle.definitions)) if (isNode(definition)) close(definition);
  return copies;
}
