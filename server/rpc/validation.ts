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

/**
 * The error to report. Ajv stops at the first error, except that a failed
 * `oneOf`/`anyOf` lists each branch's first error before its own: the branch
 * that got deepest into the value is most likely the one the caller meant,
 * and a `const` mismatch (a discriminator such as `kind`) says only that a
 * branch was not meant. (The first error named the first branch's missing
 * field for a value of the second branch with a bad number.)
 */
function mostTelling(errors: readonly ErrorObject[]): ErrorObject | undefined {
  let best: ErrorObject | undefined;
  let bestRank = -1;
  for (const error of errors) {
    if (error.keyword === 'oneOf' || error.keyword === 'anyOf') continue;
    const depth = error.instancePath.split('/').length;
    const rank = depth * 2 + (error.keyword === 'const' ? 0 : 1);
    if (rank > bestRank) {
      best = error;
      bestRank = rank;
    }
  }
  return best ?? errors[0];
}

/** Turns ajv errors into the contract's invalid_argument error that names the field. */
export function validationError(errors: readonly ErrorObject[] | null | undefined): RpcError {
  const first = errors ? mostTelling(errors) : undefined;
  if (first === undefined) return new RpcError({ code: 'invalid_argument', message: 'invalid request' });
  const field = fieldOf(first);
  const params = first.params as { allowedValues?: unknown[]; allowedValue?: unknown };
  const allowed = params.allowedValues ?? (first.keyword === 'const' ? [params.allowedValue] : undefined);
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
