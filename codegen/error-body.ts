/**
 * The built-in `ErrorBody` definition every generator run adds to the bundle:
 * the contract's error body, with its code enum taken from common/codes.ts so
 * the schema, the documents and the runtime share one list.
 */
import { allCodes } from '../common/codes.js';
import type { JsonObject } from './json.js';

/** Name of the built-in error body definition (reserved: a user's schemas may not define it). */
export const errorBodyName = 'ErrorBody';

/** The JSON Schema of the wire error body. */
export function errorBodySchema(): JsonObject {
  return {
    type: 'object',
    description:
      'The body of every error reply: a code from a closed set, a message for humans and optional details for programs.',
    properties: {
      code: {
        type: 'string',
        enum: [...allCodes],
        description:
          "What went wrong, in gRPC's canonical set of codes (snake_case, as in the Connect protocol).",
      },
      message: {
        type: 'string',
        description:
          'What went wrong, for humans. Programs branch on `code` and `details.reason`, never on this text.',
      },
      details: {
        type: 'object',
        description: 'Facts for programs: `reason` names the precise cause; other keys add facts.',
        properties: {
          reason: {
            type: 'string',
            description: 'The precise cause, in snake_case (lease_expired, idempotency_key_reused, ...).',
          },
          field: { type: 'string', description: 'The request field at fault, for validation errors.' },
        },
        additionalProperties: true,
      },
    },
    required: ['code', 'message'],
  };
}
