import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { RpcError } from '../../common/rpc-error.js';
import type { SchemaBundle } from '../../common/service-table.js';

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
