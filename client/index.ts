/**
 * leasegate/client: the typed client of the flagship services, and the
 * generic runtime that gives any generated service table a typed client.
 */

export { Code } from '../common/codes.js';
export type { ErrorBody, ErrorDetails } from '../common/rpc-error.js';
export { RpcError } from '../common/rpc-error.js';
export type { Caller, CallTarget, Interceptor } from './caller.js';
export type { LeasegateClient, LeasegateClientExtras } from './create-client.js';
export { createClient } from './create-client.js';
export type { RemoteHandle } from './handle.js';
export { openHandle } from './handle.js';
export type {
  CallOptions,
  ClientOptions,
  LeaseLostListener,
  RetryPolicy,
  RetryThrottlePolicy,
  TransportOptions,
} from './options.js';
export { clientDefaults } from './options.js';
export type { ClientBase, ServiceClientOptions, TableClients } from './service-client.js';
export { createServiceClient } from './service-client.js';
