/**
 * The shared pieces of the OpenAPI document: header parameters, response
 * headers, error responses (one per HTTP status the codes map to, plus 422)
 * and the bearer security scheme. They live in `components` and are `$ref`ed.
 */
import { type Code, codeInfo } from '../../common/codes.js';
import { errorBodyName } from '../error-body.js';
import type { JsonObject } from '../json.js';

/** `$ref` to a component. */
export function ref(kind: 'schemas' | 'parameters' | 'headers' | 'responses', name: string): JsonObject {
  return { $ref: `#/components/${kind}/${name}` };
}

const keyFormat =
  '1–255 printable ASCII characters, sent as a bare token or as a quoted structured-field string ("abc").';

/** `components.parameters`: the request headers of the contract. */
export function headerParameters(): JsonObject {
  const keySchema = { type: 'string', minLength: 1, maxLength: 255 };
  return {
    IdempotencyKey: {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: `Makes retries of this non-idempotent call safe: a retry with the same key gets the stored response (with Idempotent-Replayed: true) instead of running again. ${keyFormat} Reusing a key with another method or body is 422 (reason idempotency_key_reused).`,
      schema: keySchema,
    },
    IdempotencyKeyForIdempotentMethod: {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: `Optional: this method is idempotent, so a retry is safe without a key; with one, a retry gets the stored response (with Idempotent-Replayed: true). ${keyFormat}`,
      schema: keySchema,
    },
    RpcTimeoutMs: {
      name: 'Rpc-Timeout-Ms',
      in: 'header',
      required: false,
      description:
        "The caller's remaining time budget in milliseconds: past it the server gives up with deadline_exceeded (504), and it never starts work whose deadline has already passed.",
      schema: { type: 'integer', minimum: 1 },
    },
  };
}

/** `components.headers`: the response headers of the contract. */
export function responseHeaders(): JsonObject {
  return {
    IdempotentReplayed: {
      description:
        'true when this is the stored response of an earlier call with the same Idempotency-Key: the call did not run again.',
      schema: { type: 'boolean' },
    },
    LeaseRemainingMs: {
      description: 'On calls that touch a lease: milliseconds the lease has left after this call.',
      schema: { type: 'integer', minimum: 0 },
    },
    RetryAfter: {
      description: 'Seconds to wait before retrying.',
      schema: { type: 'integer', minimum: 0 },
    },
  };
}

/** Status added to the code table's: a reused idempotency key. */
const idempotencyKeyReusedStatus = 422;

const reasonPhrases: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  499: 'Client Closed Request',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const statusNotes: Readonly<Record<number, string>> = {
  400: ' Also reason idempotency_key_missing when the server requires an Idempotency-Key.',
  404: ' An unknown /v1 path answers unimplemented.',
  409: ' A call whose Idempotency-Key is still in use by a running call gets aborted, reason idempotency_key_in_use, with Retry-After.',
  422: 'invalid_argument, reason idempotency_key_reused: the Idempotency-Key was already used with another method or body.',
  429: ' Retry-After says when to try again.',
  503: ' Retry-After says when to try again, where waiting helps.',
};

/** Statuses that carry Retry-After. */
const retryAfterStatuses: ReadonlySet<number> = new Set([409, 429, 503]);

/** Every HTTP status an error reply can have: those of the code table, plus 422. */
export function errorStatuses(): number[] {
  const statuses = new Set<number>(Object.values(codeInfo).map((info) => info.httpStatus));
  statuses.add(idempotencyKeyReusedStatus);
  return [...statuses].sort((a, b) => a - b);
}

/** Name of the `components.responses` entry for an error status (`BadRequest`). */
export function errorResponseName(status: number): string {
  return reasonPhrases[status]?.replaceAll(' ', '') ?? `Status${status}`;
}

/** `components.responses`: one error response per status, each with the ErrorBody schema. */
export function errorResponses(): JsonObject {
  const responses: JsonObject = {};
  for (const status of errorStatuses()) {
    const codes = (Object.keys(codeInfo) as Code[]).filter((code) => codeInfo[code].httpStatus === status);
    const phrase = reasonPhrases[status] ?? `HTTP ${status}`;
    const description =
      codes.length > 0
        ? `${phrase}: ${codes.join(', ')}.${statusNotes[status] ?? ''}`
        : `${phrase}: ${statusNotes[status] ?? 'see the error body.'}`;
    responses[errorResponseName(status)] = {
      description,
      ...(retryAfterStatuses.has(status) ? { headers: { 'Retry-After': ref('headers', 'RetryAfter') } } : {}),
      content: { 'application/json': { schema: ref('schemas', errorBodyName) } },
    };
  }
  return responses;
}

/** `components.securitySchemes`: bearer tokens, used when the server has tokens configured. */
export function securitySchemes(): JsonObject {
  return {
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      description: 'Required when the server has tokens configured: the token names the principal.',
    },
  };
}
