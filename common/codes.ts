/**
 * The closed set of wire error codes (gRPC's canonical codes in snake_case, as
 * the Connect protocol spells them) and, in one table the compiler forces to be
 * complete, each code's HTTP status, JSON-RPC error number and retryability.
 */
export const Code = {
  Canceled: 'canceled',
  Unknown: 'unknown',
  InvalidArgument: 'invalid_argument',
  DeadlineExceeded: 'deadline_exceeded',
  NotFound: 'not_found',
  AlreadyExists: 'already_exists',
  PermissionDenied: 'permission_denied',
  ResourceExhausted: 'resource_exhausted',
  FailedPrecondition: 'failed_precondition',
  Aborted: 'aborted',
  OutOfRange: 'out_of_range',
  Unimplemented: 'unimplemented',
  Internal: 'internal',
  Unavailable: 'unavailable',
  DataLoss: 'data_loss',
  Unauthenticated: 'unauthenticated',
} as const;

/** One of the wire error codes. */
export type Code = (typeof Code)[keyof typeof Code];

/** How one code appears on each transport, and whether a client may retry it. */
export interface CodeInfo {
  /** HTTP status of the per-method transport. */
  readonly httpStatus: number;
  /** JSON-RPC `error.code` (application range -32000..-32099, or the spec's own). */
  readonly jsonRpcCode: number;
  /** Whether the typed client retries it by default (the call may not have run). */
  readonly retryable: boolean;
}

/** Code → transport mapping; `satisfies` makes a missing code a compile error. */
export const codeInfo = {
  canceled: { httpStatus: 499, jsonRpcCode: -32001, retryable: false },
  unknown: { httpStatus: 500, jsonRpcCode: -32002, retryable: false },
  invalid_argument: { httpStatus: 400, jsonRpcCode: -32602, retryable: false },
  deadline_exceeded: { httpStatus: 504, jsonRpcCode: -32003, retryable: false },
  not_found: { httpStatus: 404, jsonRpcCode: -32004, retryable: false },
  already_exists: { httpStatus: 409, jsonRpcCode: -32005, retryable: false },
  permission_denied: { httpStatus: 403, jsonRpcCode: -32006, retryable: false },
  resource_exhausted: { httpStatus: 429, jsonRpcCode: -32007, retryable: true },
  failed_precondition: { httpStatus: 400, jsonRpcCode: -32008, retryable: false },
  aborted: { httpStatus: 409, jsonRpcCode: -32009, retryable: false },
  out_of_range: { httpStatus: 400, jsonRpcCode: -32010, retryable: false },
  unimplemented: { httpStatus: 501, jsonRpcCode: -32011, retryable: false },
  internal: { httpStatus: 500, jsonRpcCode: -32603, retryable: false },
  unavailable: { httpStatus: 503, jsonRpcCode: -32012, retryable: true },
  data_loss: { httpStatus: 500, jsonRpcCode: -32013, retryable: false },
  unauthenticated: { httpStatus: 401, jsonRpcCode: -32014, retryable: false },
} as const satisfies Record<Code, CodeInfo>;

/** Every code, in table order. */
export const allCodes: readonly Code[] = Object.values(Code);

/** Whether a string is one of the wire codes. */
export function isCode(value: unknown): value is Code {
  return typeof value === 'string' && Object.hasOwn(codeInfo, value);
}

/** The code a bare HTTP status stands for, for replies that carry no error body (proxies, 502s). */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 409:
      return Code.Aborted;
    case 422:
      return Code.InvalidArgument;
    case 429:
      return Code.ResourceExhausted;
    case 499:
      return Code.Canceled;
    case 501:
      return Code.Unimplemented;
    case 502:
    case 503:
      return Code.Unavailable;
    case 504:
      return Code.DeadlineExceeded;
    default:
      return status >= 500 ? Code.Internal : Code.Unknown;
  }
}

/** JSON-RPC 2.0 specification error numbers (protocol errors, not application ones). */
export const JsonRpcError = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
} as const;
