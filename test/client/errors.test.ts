import { describe, expect, it } from 'vitest';
import { errorFromResponse, networkError, parseRetryAfter } from '../../client/errors.js';
import { RpcError } from '../../client/index.js';

describe('error replies', () => {
  it.each([
    [
      404,
      { code: 'not_found', message: 'no such file', details: { reason: 'file_not_found', field: 'path' } },
      'not_found',
      'file_not_found',
    ],
    [
      422,
      { code: 'invalid_argument', message: 'reused', details: { reason: 'idempotency_key_reused' } },
      'invalid_argument',
      'idempotency_key_reused',
    ],
    [
      409,
      { code: 'aborted', message: 'in use', details: { reason: 'idempotency_key_in_use' } },
      'aborted',
      'idempotency_key_in_use',
    ],
    [500, { code: 'made_up', message: 'what' }, 'unknown', undefined],
  ])(
    'rebuilds a %i wire body into an RpcError with its code, reason and status',
    (status, body, code, reason) => {
      const error = errorFromResponse(status, {}, JSON.stringify(body));
      expect(error).toBeInstanceOf(RpcError);
      expect(error).toMatchObject({ code, reason, httpStatus: status, message: body.message });
    },
  );

  it.each([
    [502, 'unavailable'],
    [503, 'unavailable'],
    [504, 'deadline_exceeded'],
    [429, 'resource_exhausted'],
    [401, 'unauthenticated'],
    [500, 'internal'],
  ])('falls back to the status alone for a %i without a wire body', (status, code) => {
    expect(errorFromResponse(status, {}, '<html>Bad Gateway</html>')).toMatchObject({
      code,
      httpStatus: status,
    });
  });

  it('keeps Retry-After as retryAfterSeconds', () => {
    const error = errorFromResponse(
      503,
      { 'retry-after': '3' },
      JSON.stringify({ code: 'unavailable', message: 'busy' }),
    );
    expect(error.retryAfterSeconds).toBe(3);
  });

  it.each([
    ['0', 0],
    [' 12 ', 12],
    [new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), 30],
    ['soon', undefined],
    [undefined, undefined],
  ])('reads Retry-After %j as %j seconds', (value, seconds) => {
    expect(parseRetryAfter(value, Date.UTC(2030, 0, 1))).toBe(seconds);
  });

  it('turns any network failure into unavailable, keeping it as cause', () => {
    const cause = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const error = networkError(cause);
    expect(error).toMatchObject({ code: 'unavailable', reason: 'network_error', httpStatus: 503 });
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('ECONNRESET');
  });
});
