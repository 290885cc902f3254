/**
 * leasegate/client: the typed client of the flagship services, and the
 * generic runtime that gives any generated service table a typed client.
 */

export { Code } from '../common/codes.js';
export type { ErrorBody, ErrorDetails } from '../common/rpc-error.js';
export { RpcError } from '../common/rpc-error.js';
export type { MethodDescriptor, ServiceDescriptor, ServiceTable } from '../common/service-table.js';
export type {
  Clients,
  DirectoriesClient,
  FilesClient,
  LeasesClient,
  MethodName,
  MethodTypes,
} from '../generated/services.js';
// The flagship services' messages and client interfaces, so that a program can name them
// (`RemoteOpenRequest`, `Lease`, `FilesClient`) rather than dig them out of method signatures.
export type * from '../generated/types.js';
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
