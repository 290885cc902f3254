/**
 * `createClient`: the typed client of the flagship services (Directories,
 * Files, Leases). It is the generic runtime plus two interceptors: the lease
 * keeper and the RemotePrint sequencer.
 */
import { EventEmitter } from 'node:events';
import type { RpcError } from '../common/rpc-error.js';
import { clientMemberNames } from '../common/service-table.js';
import { type Clients, services } from '../generated/index.js';
import type { Interceptor } from './caller.js';
import { intercept } from './caller.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { CallOptions, ClientOptions, LeaseLostListener } from './options.js';
import { PrintSequencer } from './sequencer.js';
import { buildServiceClients, type ClientBase, createRuntime } from './service-client.js';

/** What the flagship client has besides its services. */
export interface LeasegateClientExtras extends ClientBase {
  /** Revokes the leases this client still holds (best effort), then closes the connections. */
  close(): Promise<void>;
  /** Listens for leases the client was keeping alive and lost (expired, revoked elsewhere, unreachable). */
  on(event: 'leaseLost', listener: LeaseLostListener): void;
  /** Removes a listener added with `on`. */
  off(event: 'leaseLost', listener: LeaseLostListener): void;
  /** Ids of the leases this client holds and keeps alive now. */
  readonly leaseIds: readonly string[];
}

/** The flagship client: every method of every service, plus `close`, events and `await using`. */
export type LeasegateClient<Extra extends object = object> = Clients<CallOptions> &
  Extra &
  LeasegateClientExtras;

/**
 * Creates the typed client: `client.files.remoteOpen(req, opts?)` and so on,
 * with retries, idempotency keys, print sequencing and lease keep-alive.
 * Pass `services` (and the `Extra` type) to add your own generated services.
 */
export function createClient<Extra extends object = object>(
  options: ClientOptions = {},
): LeasegateClient<Extra> {
  const runtime = createRuntime(options);
  const events = new EventEmitter();
  const sequencer = new PrintSequencer(runtime.timeoutMs);
  const keeper = new LeaseKeeper({
    call: runtime.backgroundCall,
    leases: services.Leases,
    keepAlive: options.leaseKeepAlive !== false,
    onLost: (leaseId: string, error: RpcError) => events.emit('leaseLost', leaseId, error),
    onHandlesEnded: (handles) => {
      for (const handle of handles) sequencer.forget(handle);
    },
  });
  if (options.onLeaseLost) events.on('leaseLost', options.onLeaseLost);
  const interceptors: Interceptor[] = [keeper.interceptor, sequencer.interceptor];
  const caller = intercept(runtime.call, interceptors);
  for (const name of Object.keys(options.services ?? {}))
    if (Object.hasOwn(services, name) && options.services?.[name] !== services[name as keyof typeof services])
      throw new TypeError(`service ${name} is one of leasegate's own services: rename yours`);
  const clients = buildServiceClients({ ...services, ...options.services }, caller, clientMemberNames);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= keeper.close().then(() => runtime.close());
    return closing;
  };
  const extras: LeasegateClientExtras = {
    close,
    [Symbol.asyncDispose]: close,
    on: (event, listener) => void events.on(event, listener),
    off: (event, listener) => void events.off(event, listener),
    get leaseIds() {
      return keeper.leaseIds;
    },
  };
  return Object.defineProperties(clients, Object.getOwnPropertyDescriptors(extras)) as LeasegateClient<Extra>;
}
