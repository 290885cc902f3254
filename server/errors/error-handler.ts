import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { codeInfo } from '../../common/codes.js';
import { Header } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import { validationError } from '../rpc/validation.js';

/**
 * Maps Fastify's own errors (body parsing, limits, validation) to the
 * contract's codes. `bodyLimit` (the route's, in bytes) goes into the answer
 * to a body over it. That answer has no Retry-After: waiting does not help
 * (the contract's rule, which the typed client follows by not retrying it).
 */
export function toRpcError(error: unknown, bodyLimit?: number): RpcError {
  if (error instanceof RpcError) return error;
  const e = error as Partial<FastifyError> & { validation?: unknown[] };
  if (Array.isArray(e.validation)) return validationError(e.validation as never);
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RpcError({
        code: 'resource_exhausted',
        message:
          bodyLimit === undefined
            ? 'request body is larger than the server accepts'
            : `request body is larger than the server accepts (${bodyLimit} bytes: --body-limit)`,
        details:
          bodyLimit === undefined
            ? { reason: 'body_too_large' }
            : { reason: 'body_too_large', limitBytes: bodyLimit },
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RpcError({
        code: 'invalid_argument',
        message: 'request body is empty: send a JSON object',
        details: { reason: 'empty_body' },
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new RpcError({
        code: 'invalid_argument',
        message: 'request body is not valid JSON',
        details: { reason: 'malformed_json' },
      });
    case 'FST_ERR_BAD_URL':
      return new RpcError({
        code: 'invalid_argument',
        message: 'the request URL is not valid (a malformed percent-encoding)',
        details: { reason: 'malformed_url' },
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RpcError({
        code: 'invalid_argument',
        message: 'send Content-Type: application/json',
        details: { reason: 'unsupported_media_type' },
      });
    default:
      break;
  }
  if (error instanceof SyntaxError || e.statusCode === 400) {
    return new RpcError({
      code: 'invalid_argument',
      message: 'request body is not valid JSON',
      details: { reason: 'malformed_json' },
    });
  }
  return RpcError.from(error);
}

/** Sends an RpcError in the per-method HTTP form. */
export function sendError(reply: FastifyReply, error: RpcError): FastifyReply {
  reply.rpcCode = error.code;
  if (error.retryAfterSeconds !== undefined) reply.header(Header.RetryAfter, String(error.retryAfterSeconds));
  return reply.code(error.httpStatus).type('application/json').send(error.toBody());
}

/**
 * Sends an error that stopped a `POST /jsonrpc` request before any call ran
 * (authentication, body limit, rate limit) as a JSON-RPC response with id null,
 * so JSON-RPC clients can read it; the HTTP status stays the contract's.
 */
export function sendJsonRpcError(reply: FastifyReply, error: RpcError): FastifyReply {
  reply.rpcCode = error.code;
  if (error.retryAfterSeconds !== undefined) reply.header(Header.RetryAfter, String(error.retryAfterSeconds));
  const body = { code: codeInfo[error.code].jsonRpcCode, message: error.message, data: error.toBody() };
  return reply
    .code(error.httpStatus)
    .type('application/json')
    .send({ jsonrpc: '2.0', id: null, error: body });
}

/**
 * 5xx codes a client or the moment causes, not a fault of the server: a call
 * past its deadline, a server shutting down or its redo log refusing writes.
 * They are logged at warn, without a stack: at error with one, a load test
 * with short deadlines buried the real faults.
 */
const expectedServerCodes: ReadonlySet<string> = new Set(['deadline_exceeded', 'unavailable']);

/**
 * 4xx codes an operator wants to see: a request without valid credentials, or
 * reaching for what its principal may not (a read-only token writing, a path
 * out of the root). Logged at warn, so that a probe shows in the log.
 */
const refusalCodes: ReadonlySet<string> = new Set(['unauthenticated', 'permission_denied']);

/**
 * Logs a request or call that failed with a 5xx: the expected ones (above) at
 * warn with their code and reason, any other (internal, unknown, data_loss)
 * at error with the thrown value and its stack. Of 4xx, only refusals (above),
 * at warn; the rest are the caller's to see.
 */
export function logFailure(
  log: FastifyBaseLogger,
  error: unknown,
  rpcError: RpcError,
  fields: Record<string, unknown> = {},
): void {
  if (rpcError.httpStatus < 500) {
    if (refusalCodes.has(rpcError.code)) {
      const { code, reason, message } = rpcError;
      log.warn({ ...fields, code, reason, message }, 'request refused');
    }
    return;
  }
  if (expectedServerCodes.has(rpcError.code)) {
    const { code, reason, message } = rpcError;
    log.warn({ ...fields, code, reason, message }, 'request failed');
  } else {
    log.error({ ...fields, err: error }, 'request failed');
  }
}

/** The server's one error handler: every error leaves as the contract's error body. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const rpcError = toRpcError(error, request.routeOptions.bodyLimit);
    logFailure(request.log, error, rpcError, { remoteAddress: request.ip });
    if (request.routeOptions.config?.rpcMethod === 'jsonrpc') return sendJsonRpcError(reply, rpcError);
    return sendError(reply, rpcError);
  });
}
