/** Emits `schemas.ts`: the schema bundle as a self-contained `as const` literal. */
import type { JsonObject } from '../json.js';
import { bannerComment, tsLiteral } from './ts-source.js';

/** The source of schemas.ts for a bundle. */
export function emitSchemasFile(
  bundle: { $id: string; definitions: Record<string, JsonObject> },
  source: string,
): string {
  return `${bannerComment(source)}

/**
 * The JSON Schema (draft-07) bundle of this run: every message under \`definitions\`,
 * refs written \`#/definitions/<Name>\`. Validators load it once under its \`$id\`.
 */
export const schemaBundle = ${tsLiteral({ $id: bundle.$id, definitions: bundle.definitions })} as const;
`;
}
