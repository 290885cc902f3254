/**
 * The call pipeline: a `Caller` sends one typed call; interceptors wrap it
 * (sequencing, lease tracking). `createUnaryCaller` is the innermost one:
 * idempotency key, deadline header, retries, transport and error mapping.
 */
import { randomUUID } from 'node:crypto';
import { RpcError } from '../common/rpc-error.js';
import type { MethodDescriptor, ServiceDescriptor } from '../common/service-table.js';
import { CallDeadline } from './deadline.js';
import { closedError, errorFromResponse, networkError } from './errors.js';
import type { CallOptions } from './options.js';
import type { Retrier } from './retry.js';
import type { HttpTransport } from './transport.js';

/** Which method a call is for. */
export interface CallTarget {
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
}

/** Sends one call and resolves with its response object. */
export type Caller = (target: CallTarget, request: object, options: CallOptions) => Promise<unknown>;

/** Wraps a caller with one concern (undici's interceptor shape). */
export type Interceptor = (next: Caller) => Caller;

/** What the innermost caller needs. */
export interface UnaryCallerParts {
  readonly transport: HttpTransport;
  readonly retrier: Retrier;
  /** Budget of calls that set no `timeoutMs`. */
  readonly timeoutMs: number;
  /** True once the client is closed: later calls fail with `canceled` reason `client_closed`. */
  readonly isClosed: () => boolean;
}

/** Parses a 200 reply's body; the contract says it is one JSON object. */
function parseResponse(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {
    // fall through to the error below
  }
  throw new RpcError({ code: 'internal', message: 'the server replied 200 without a JSON object' });
}

/**
 * The innermost caller. A non-idempotent call gets a fresh Idempotency-Key
 * (or the caller's) that every attempt reuses; each attempt sends the time
 * left of the overall deadline as Rpc-Timeout-Ms.
 */
export function createUnaryCaller(parts: UnaryCallerParts): Caller {
  return async ({ service, method }, request, options) => {
    if (parts.isClosed()) throw closedError();
    const deadline = new CallDeadline(options.timeoutMs ?? parts.timeoutMs, options.signal);
    const key = options.idempotencyKey ?? (method.idempotent ? undefined : randomUUID());
    const path = parts.transport.methodPath(service.name, method.name);
    const body = JSON.stringify(request);
    return parts.retrier.run(async () => {
      const stop = deadline.stopError();
      if (stop) throw stop;
      if (parts.isClosed()) throw closedError();
      const remaining = deadline.remainingMs();
      const timeout = Number.isFinite(remaining) ? String(Math.max(1, Math.floor(remaining))) : undefined;
      const attempt = deadline.attemptSignal();
      let reply: Awaited<ReturnType<HttpTransport['post']>>;
      try {
        reply = await parts.transport.post(path, body, key, timeout, attempt.signal);
      } catch (error) {
        throw deadline.stopError(error) ?? (parts.isClosed() ? closedError() : networkError(error));
      } finally {
        attempt.dispose();
      }
      if (reply.status === 200) return parseResponse(reply.text);
      throw errorFromResponse(reply.status, reply.headers, reply.text);
    }, deadline);
  };
}

/** Applies interceptors so that the first one listed is the outermost. */
export function intercept(caller: Caller, interceptors: readonly Interceptor[]): Caller {
  return interceptors.reduceRight<Caller>((next, interceptor) => interceptor(next), caller);
}
