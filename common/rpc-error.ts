import { type Code, codeInfo, isCode } from './codes.js';

/** The JSON error body of the wire contract. */
export interface ErrorBody {
  code: Code;
  message: string;
  details?: ErrorDetails;
}

/** `details` of an error body: `reason` names the precise cause, other keys add facts (`field`, ...). */
export interface ErrorDetails {
  reason?: string;
  field?: string;
  [key: string]: unknown;
}

/** What an RpcError is built from. */
export interface RpcErrorOptions {
  code: Code;
  message: string;
  reason?: string;
  details?: ErrorDetails;
  cause?: unknown;
  /** HTTP status when it differs from the code's usual one (422 for a reused idempotency key). */
  httpStatus?: number;
  /** Seconds to send as Retry-After, where waiting helps. */
  retryAfterSeconds?: number;
}

/** The one error class of leasegate, on the server and in the client. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: Code;
  readonly reason: string | undefined;
  readonly details: ErrorDetails;
  readonly httpStatus: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(options: RpcErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.reason = options.reason ?? options.details?.reason;
    this.details = { ...options.details, ...(this.reason === undefined ? {} : { reason: this.reason }) };
    this.httpStatus = options.httpStatus ?? codeInfo[options.code].httpStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The wire form of this error. */
  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (Object.keys(this.details).length > 0) body.details = this.details;
    return body;
  }

  /** Rebuilds an error from a wire body (client side); anything unrecognised becomes `unknown`. */
  static fromBody(body: unknown, httpStatus: number): RpcError {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Partial<ErrorBody>;
    const code = isCode(b.code) ? b.code : 'unknown';
    const details = typeof b.details === 'object' && b.details !== null ? b.details : undefined;
    return new RpcError({
      code,
      message: typeof b.message === 'string' ? b.message : `HTTP ${httpStatus}`,
      ...(details ? { details } : {}),
      httpStatus,
    });
  }

  /** Normalises anything thrown into an RpcError (unknown errors become `internal`, keeping the original as cause). */
  static from(error: unknown): RpcError {
    if (error instanceof RpcError) return error;
    return new RpcError({ code: 'internal', message: 'internal error', cause: error });
  }
}
