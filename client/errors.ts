/**
 * Turns whatever a call can end with (an error reply, a network failure, a
 * deadline, an abort) into the one RpcError class, so callers branch on
 * `err.code` / `err.reason` only.
 */
import { codeFromHttpStatus } from '../common/codes.js';
import { Header } from '../common/headers.js';
import { RpcError } from '../common/rpc-error.js';

/** Response headers as undici hands them over. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Seconds a `Retry-After` value asks to wait (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(raw)) return Number(raw);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

/** The error of a non-200 reply: the wire body when there is one, else the HTTP status alone (proxies, 502s). */
export function errorFromResponse(status: number, headers: ResponseHeaders, text: string): RpcError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const retryAfterSeconds = parseRetryAfter(headers[Header.RetryAfter]);
  // A wire body (even with a code this client does not know, which becomes `unknown`), or something else
  // entirely (a proxy's HTML page), which only the status can explain.
  const wire =
    typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string';
  const base = wire
    ? RpcError.fromBody(body, status)
    : new RpcError({
        code: codeFromHttpStatus(status),
        message: `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`,
        httpStatus: status,
      });
  if (retryAfterSeconds === undefined) return base;
  return new RpcError({
    code: base.code,
    message: base.message,
    details: base.details,
    httpStatus: base.httpStatus,
    retryAfterSeconds,
  });
}

/** `canceled`: the caller's AbortSignal fired (its reason is kept as cause). */
export function canceledError(reason?: unknown): RpcError {
  return new RpcError({ code: 'canceled', message: 'call canceled by the caller', cause: reason });
}

/**
 * `deadline_exceeded`: the call's overall budget ran out on the client side;
 * reason `client_deadline` tells it from the server's own 504s
 * (deadline_passed_before_start / while_running).
 */
export function deadlineError(timeoutMs: number, cause?: unknown): RpcError {
  return new RpcError({
    code: 'deadline_exceeded',
    message: `deadline of ${Math.round(timeoutMs)} ms exceeded`,
    reason: 'client_deadline',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** `canceled`: the client was closed before or during the call. */
export function closedError(): RpcError {
  return new RpcError({ code: 'canceled', message: 'client closed', reason: 'client_closed' });
}

/**
 * A failure below HTTP (refused, reset, closed socket, DNS, ...): the request
 * may or may not have reached the server, so it is `unavailable`, keeping the
 * original error as cause.
 */
export function networkError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const text = error instanceof Error ? error.message : String(error);
  return new RpcError({
    code: 'unavailable',
    message: `network error${typeof code === 'string' ? ` (${code})` : ''}: ${text}`,
    reason: 'network_error',
    cause: error,
  });
}

/**
 * Errors by which the server says a lease (or a handle's lease) no longer exists: lease_expired,
 * lease_revoked, or a not_found that names the lease or handle (a bare 404, from a proxy say, does not).
 */
export function isLeaseGone(error: RpcError): boolean {
  if (error.code === 'not_found')
    return error.reason === 'lease_not_found' || error.reason === 'handle_not_found';
  return (
    error.code === 'failed_precondition' &&
    (error.reason === 'lease_expired' || error.reason === 'lease_revoked')
  );
}
