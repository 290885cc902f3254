/**
 * The generic runtime of typed clients: it walks a generated service table and
 * gives every method of every service a function `(request, options?) =>
 * Promise<response>` under its camelCase names. No per-method logic is
 * generated; the types come from the generated `Clients` interfaces.
 */
import type { ServiceTable } from '../common/service-table.js';
import { type Caller, createUnaryCaller, type Interceptor, intercept } from './caller.js';
import { type CallOptions, resolveTransportOptions, type TransportOptions } from './options.js';
import { Retrier } from './retry.js';
import { HttpTransport } from './transport.js';

/** What every client has besides its services. */
export interface ClientBase {
  /** Closes the connections (in-flight calls finish first); later calls fail with `canceled`. */
  close(): Promise<void>;
  /** `await using client = createClient(...)` closes it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The client type derived from a service table alone, for tables without
 * generated interfaces: names are typed, requests and responses are plain objects.
 */
export type TableClients<T extends ServiceTable, O = CallOptions> = {
  -readonly [S in keyof T as T[S]['localName']]: {
    -readonly [M in keyof T[S]['methods'] as T[S]['methods'][M]['localName']]: (
      request: object,
      options?: O,
    ) => Promise<Record<string, unknown>>;
  };
};

/** Transport options plus interceptors around the innermost caller. */
export interface ServiceClientOptions extends TransportOptions {
  /** Wrap every call (the first listed is the outermost). */
  interceptors?: readonly Interceptor[];
}

/** A caller with its transport, before services are attached. */
export interface ClientRuntime {
  /** Sends one call through retries and transport (no interceptors). */
  readonly call: Caller;
  /**
   * The same, for the client's own background calls (the lease keeper's
   * KeepAlives): retried alike, but outside the retry throttle. The keeper
   * backs off on its own, and its failures during an outage (a few a second
   * with short TTLs) emptied the bucket that decides whether the user's own
   * calls, a print sent during a restart, are retried.
   */
  readonly backgroundCall: Caller;
  /** Default budget of calls, in ms. */
  readonly timeoutMs: number;
  close(): Promise<void>;
}

/** Builds the transport, retrier and innermost caller of one client. */
export function createRuntime(options: TransportOptions): ClientRuntime {
  const resolved = resolveTransportOptions(options);
  const transport = new HttpTransport(resolved);
  let closed = false;
  const caller = (retrier: Retrier) =>
    createUnaryCaller({ transport, retrier, timeoutMs: resolved.timeoutMs, isClosed: () => closed });
  return {
    call: caller(new Retrier(resolved.retry)),
    backgroundCall: caller(new Retrier({ ...resolved.retry, throttle: undefined })),
    timeoutMs: resolved.timeoutMs,
    async close() {
      if (closed) return;
      closed = true;
      await transport.close();
    },
  };
}

/** Attaches one function per method of `table` to a new object, each sending through `caller`. */
export function buildServiceClients(
  table: ServiceTable,
  caller: Caller,
  reserved: readonly string[] = [],
): object {
  const clients: Record<string, Record<string, unknown>> = {};
  for (const service of Object.values(table)) {
    if (reserved.includes(service.localName) || Object.hasOwn(clients, service.localName)) {
      throw new TypeError(`service name "${service.localName}" is taken`);
    }
    const methods: Record<string, unknown> = {};
    for (const method of Object.values(service.methods)) {
      const target = { service, method };
      methods[method.localName] = (request: object, options?: CallOptions) =>
        caller(target, request, options ?? {});
    }
    clients[service.localName] = methods;
  }
  return clients;
}

/**
 * A typed client for any generated service table: pass the generated
 * `Clients` interface to get its request and response types
 * (`createServiceClient<MyClients>(myServices, { baseUrl })`); without it the
 * type is derived from the table's names.
 */
export function createServiceClient<const T extends ServiceTable>(
  table: T,
  options: ServiceClientOptions,
): TableClients<T> & ClientBase;
export function createServiceClient<C extends object>(
  table: ServiceTable,
  options: ServiceClientOptions,
): C & ClientBase;
export function createServiceClient(table: ServiceTable, options: ServiceClientOptions): object {
  const runtime = createRuntime(options);
  const caller = intercept(runtime.call, options.interceptors ?? []);
  const close = () => runtime.close();
  return Object.assign(buildServiceClients(table, caller, ['close']), {
    close,
    [Symbol.asyncDispose]: close,
  });
}
