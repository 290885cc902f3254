import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { closeObjects } from './close-objects.js';
import type { SchemaBundle } from './service-table.js';

// ajv-formats ships CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * An Ajv instance configured as the server validates requests: as Fastify
 * configures its own (defaults applied, no type coercion) except that unknown
 * request fields are dropped (forward compatibility, as gRPC ignores unknown
 * fields) where that is safe (see close-objects.ts: `bundles` are added as
 * the copies it makes). The server compiles its validators from one; the code
 * generator compiles every definition with one, so that a schema the server
 * would refuse at startup fails `npm run gen` instead.
 */
export function createAjv(bundles: readonly SchemaBundle[] = []): Ajv {
  const ajv = new Ajv({
    removeAdditional: true,
    useDefaults: true,
    coerceTypes: false,
    allErrors: false,
    strict: false,
  });
  addFormats(ajv);
  const ids = new Set<string>();
  for (const { $id } of bundles) {
    if (ids.has($id))
      throw new Error(`two schema bundles have the $id "${$id}": generate each with its own --id`);
    ids.add($id);
  }
  for (const bundle of closeObjects(bundles)) ajv.addSchema(bundle as object);
  return ajv;
}
