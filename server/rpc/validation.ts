import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { RpcError } from '../../common/rpc-error.js';
import type { SchemaBundle } from '../../common/service-table.js';

// ajv-formats ships CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * The one Ajv instance of a server, configured as Fastify configures its own
 * (defaults applied, no type coercion) except that unknown request fields are
 * dropped (forward compatibility, as gRPC ignores unknown fields). Fastify's
 * routes and the JSON-RPC transport compile their validators from it.
 */
export function createAjv(bundles: readonly SchemaBundle[]): Ajv {
  const ajv = new Ajv({
    removeAdditional: 'all',
    useDefaults: true,
    coerceTypes: false,
    allErrors: false,
    strict: false,
  });
  addFormats(ajv);
  for (const bundle of bundles) ajv.addSchema(bundle as object);
  return ajv;
}

/** The field an ajv error is about, as a dotted path (`entries.0.name`), or undefined for the whole body. */
export function fieldOf(error: ErrorObject): string | undefined {
  const parts = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const missing = (error.params as { missingProperty?: string }).missingProperty;
  if (missing !== undefined) parts.push(missing);
  return parts.length > 0 ? parts.join('.') : undefined;
}

/** Turns ajv errors into the contract's invalid_argument error that names the field. */
export function validationError(errors: readonly ErrorObject[] | null | undefined): RpcError {
  const first = errors?.[0];
  if (first === undefined) return new RpcError({ code: 'invalid_argument', message: 'invalid request' });
  const field = fieldOf(first);
  const allowed = (first.params as { allowedValues?: unknown[] }).allowedValues;
  const text = first.keyword === 'required' ? 'is required' : `${first.message ?? 'is invalid'}`;
  const suffix = allowed ? ` (${allowed.map((v) => JSON.stringify(v)).join(', ')})` : '';
  return new RpcError({
    code: 'invalid_argument',
    message: field === undefined ? `request ${text}${suffix}` : `${field}: ${text}${suffix}`,
    details: {
      reason: first.keyword === 'required' ? 'missing_field' : 'invalid_field',
      ...(field === undefined ? {} : { field }),
    },
  });
}

/** Compiles the validator of one message of a bundle. */
export function compileMessage(ajv: Ajv, bundle: SchemaBundle, message: string): ValidateFunction {
  return ajv.compile({ $ref: `${bundle.$id}#/definitions/${message}` });
}
