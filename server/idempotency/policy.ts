import { RpcError } from '../../common/rpc-error.js';

/**
 * Whether an error answer is final, and so stored under its key. Not stored
 * are the answers a retry may turn into success and that had no effect:
 * invalid_argument (schema validation fails before the handler and never
 * reaches the store; the handlers' own argument checks also run before any
 * effect), unavailable, resource_exhausted (limits, rate limits, full disk),
 * aborted and canceled, deadline_exceeded before the call started, and
 * failed_precondition `sequence_gap` (the earlier prints have not arrived yet).
 * Everything else (not_found, already_exists, stale_sequence, lease_expired,
 * internal, ...) is stored, so a retry can never run the call twice.
 */
export function isFinal(error: RpcError): boolean {
  switch (error.code) {
    case 'invalid_argument':
    case 'unavailable':
    case 'resource_exhausted':
    case 'aborted':
    case 'canceled':
      return false;
    case 'deadline_exceeded':
      return error.reason !== 'deadline_passed_before_start';
    case 'failed_precondition':
      return error.reason !== 'sequence_gap';
    default:
      return true;
  }
}

/** The answer to a non-idempotent call without a key on a server that requires keys. */
export function keyMissingError(method: string): RpcError {
  return new RpcError({
    code: 'invalid_argument',
    message: `${method} is not idempotent and this server requires an Idempotency-Key for it`,
    details: { reason: 'idempotency_key_missing', field: 'Idempotency-Key' },
  });
}

/** The answer to a key first used for another request (method, transport or body). */
export function keyReusedError(): RpcError {
  return new RpcError({
    code: 'invalid_argument',
    message: 'this Idempotency-Key was first used for a different request: use a fresh key for a new request',
    details: { reason: 'idempotency_key_reused', field: 'Idempotency-Key' },
    httpStatus: 422,
  });
}

/** Seconds a duplicate is told to wait (Retry-After) when the first call is still running. */
export const inUseRetryAfterSeconds = 1;

/** The answer to a duplicate whose own deadline passed while the first call was still running. */
export function keyInUseError(): RpcError {
  return new RpcError({
    code: 'aborted',
    message:
      'a call with this Idempotency-Key is still running: retry after Retry-After seconds for its answer',
    details: { reason: 'idempotency_key_in_use' },
    retryAfterSeconds: inUseRetryAfterSeconds,
  });
}
