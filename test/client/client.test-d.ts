import { describe, expectTypeOf, it } from 'vitest';
// The flagship services' message types come with the client (a program must be able to name them).
import type {
  FilesClient,
  KeepAliveResponse,
  Lease,
  ListDirectoryRequest,
  RemoteOpenRequest,
  RemoteOpenResponse,
  RemotePrintResponse,
} from '../../client/index.js';
import {
  type CallOptions,
  type ClientBase,
  type Code,
  createClient,
  createServiceClient,
  type LeasegateClient,
  openHandle,
  type RemoteHandle,
} from '../../client/index.js';

declare const client: LeasegateClient;

const greeterServices = {
  Greeter: {
    name: 'Greeter',
    localName: 'greeter',
    description: '',
    methods: {
      SayHello: {
        name: 'SayHello',
        localName: 'sayHello',
        request: 'HelloRequest',
        response: 'HelloResponse',
        idempotent: true,
        description: '',
      },
    },
  },
} as const;

interface GreeterClients<O = unknown> {
  greeter: { sayHello(request: { name: string }, options?: O): Promise<{ greeting: string }> };
}

describe('the typed client', () => {
  it('takes each method’s request type and call options, and resolves with its response type', () => {
    expectTypeOf(client.files.remoteOpen).parameter(0).toEqualTypeOf<RemoteOpenRequest>();
    expectTypeOf(client.files.remoteOpen).parameter(1).toEqualTypeOf<CallOptions | undefined>();
    expectTypeOf(client.files.remoteOpen).returns.resolves.toEqualTypeOf<RemoteOpenResponse>();
    expectTypeOf(client.leases.keepAlive).returns.resolves.toEqualTypeOf<KeepAliveResponse>();
    expectTypeOf(client.directories.listDirectory).parameter(0).toEqualTypeOf<ListDirectoryRequest>();
    expectTypeOf(client.files.remotePrint).returns.resolves.toHaveProperty('seq').toEqualTypeOf<number>();
  });

  it('rejects requests that miss a required field and methods that do not exist', () => {
    // @ts-expect-error: mode is required
    void client.files.remoteOpen({ path: 'a.txt' });
    // @ts-expect-error: no such method
    void client.files.remoteDelete({ handle: 'h' });
    // @ts-expect-error: timeoutMs is a number
    void client.directories.stat({ path: '/' }, { timeoutMs: '5s' });
  });

  it('is closable and disposable, and reports lost leases to typed listeners', () => {
    expectTypeOf(client.close).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(client).toExtend<AsyncDisposable>();
    client.on('leaseLost', (leaseId, error) => {
      expectTypeOf(leaseId).toEqualTypeOf<string>();
      expectTypeOf(error.code).toEqualTypeOf<Code>();
    });
    expectTypeOf(createClient).returns.toEqualTypeOf<LeasegateClient>();
  });

  it('adds the user’s own services to the flagship client', () => {
    const extended = createClient<GreeterClients<CallOptions>>({ services: greeterServices });
    expectTypeOf(extended.greeter.sayHello).returns.resolves.toEqualTypeOf<{ greeting: string }>();
    expectTypeOf(extended.files.remoteOpen).returns.resolves.toEqualTypeOf<RemoteOpenResponse>();
  });

  it('types a user’s service table with its generated interface', () => {
    const greeter = createServiceClient<GreeterClients<CallOptions>>(greeterServices, {
      baseUrl: 'http://127.0.0.1:1',
    });
    expectTypeOf(greeter).toEqualTypeOf<GreeterClients<CallOptions> & ClientBase>();
    expectTypeOf(greeter.greeter.sayHello).parameter(0).toEqualTypeOf<{ name: string }>();
  });

  it('derives method names from the table alone when no interface is given', () => {
    const untyped = createServiceClient(greeterServices, { baseUrl: 'http://127.0.0.1:1' });
    expectTypeOf(untyped.greeter.sayHello).returns.resolves.toEqualTypeOf<Record<string, unknown>>();
    // @ts-expect-error: no such method in the table
    void untyped.greeter.sayGoodbye;
  });

  it('gives openHandle a disposable handle object', () => {
    expectTypeOf(openHandle).returns.resolves.toEqualTypeOf<RemoteHandle>();
    expectTypeOf<RemoteHandle>().toExtend<AsyncDisposable>();
    expectTypeOf<RemoteHandle['lease']>().toEqualTypeOf<Lease>();
    expectTypeOf<RemoteHandle['print']>().returns.resolves.toEqualTypeOf<RemotePrintResponse>();
  });
});

describe('the types the client package exports', () => {
  it('names the services a LeasegateClient holds', () => {
    expectTypeOf(client.files).toExtend<FilesClient<CallOptions>>();
  });
});
