import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttemptAbort } from '../../client/deadline.js';
import { createClient, type LeasegateClient, openHandle, RpcError } from '../../client/index.js';
import { resolveTransportOptions } from '../../client/options.js';
import { HttpTransport } from '../../client/transport.js';
import { services } from '../../generated/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const catchError = (promise: Promise<unknown>): Promise<RpcError> =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(RpcError);
      return error as RpcError;
    },
  );

describe.each(['tcp', 'unix'] as const)('the typed client over %s', (listen) => {
  let server: TestServer;
  let client: LeasegateClient;

  /** Where the server listens, as client options. */
  const address = () =>
    server.socketPath === undefined ? { baseUrl: server.url } : { socketPath: server.socketPath };

  beforeAll(async () => {
    server = await startTestServer({ unixSocket: listen === 'unix' });
    client = createClient(address());
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  it('has a function for every method of every generated service', () => {
    for (const service of Object.values(services)) {
      const methods = (client as unknown as Record<string, Record<string, unknown>>)[service.localName];
      for (const method of Object.values(service.methods))
        expect(typeof methods?.[method.localName]).toBe('function');
    }
  });

  it('makes, lists, describes and removes directories', async () => {
    await expect(client.directories.makeDirectory({ path: 'a/b/c', parents: true })).resolves.toEqual({});
    await client.directories.makeDirectory({ path: 'a/b/d' });
    await writeFile(join(server.root, 'a/b/file.txt'), 'hello');
    const stat = await client.directories.stat({ path: 'a/b/file.txt' });
    expect(stat).toMatchObject({ isDirectory: false, size: 5 });
    expect(Date.parse(stat.modifiedAt)).not.toBeNaN();
    const first = await client.directories.listDirectory({ path: 'a/b', pageSize: 2 });
    expect(first.entries.map((e) => e.name)).toEqual(['c', 'd']);
    expect(first.nextPageToken).toBeTypeOf('string');
    const second = await client.directories.listDirectory({
      path: 'a/b',
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect(second.entries.map((e) => [e.name, e.isDirectory, e.size])).toEqual([['file.txt', false, 5]]);
    await expect(client.directories.remove({ path: 'a', recursive: true })).resolves.toEqual({});
    await expect(catchError(client.directories.stat({ path: 'a' }))).resolves.toMatchObject({
      code: 'not_found',
    });
  });

  it('opens, prints, reads and closes files through handles', async () => {
    const { handle, lease } = await client.files.remoteOpen({
      path: 'notes.txt',
      mode: 'write',
      create: true,
    });
    expect(handle).toBeTypeOf('string');
    expect(lease).toMatchObject({ leaseId: expect.any(String), ttlMs: expect.any(Number) });
    expect(Date.parse(lease.expiresAt)).not.toBeNaN();
    await expect(client.files.remotePrint({ handle, data: 'one\n' })).resolves.toEqual({
      bytesWritten: 4,
      offset: 0,
      seq: 1,
    });
    await expect(
      client.files.remotePrint({ handle, data: Buffer.from('two\n').toString('base64'), encoding: 'base64' }),
    ).resolves.toEqual({
      bytesWritten: 4,
      offset: 4,
      seq: 2,
    });
    await expect(client.files.remoteClose({ handle })).resolves.toEqual({});
    expect(await readFile(join(server.root, 'notes.txt'), 'utf8')).toBe('one\ntwo\n');

    const reader = await client.files.remoteOpen({ path: 'notes.txt', mode: 'read' });
    await expect(client.files.remoteRead({ handle: reader.handle, length: 4 })).resolves.toEqual({
      data: 'one\n',
      encoding: 'utf8',
      offset: 0,
      eof: false,
    });
    await expect(
      client.files.remoteRead({ handle: reader.handle, offset: 4, encoding: 'base64' }),
    ).resolves.toMatchObject({
      data: Buffer.from('two\n').toString('base64'),
      encoding: 'base64',
      offset: 4,
    });
    await client.files.remoteClose({ handle: reader.handle });
  });

  it('grants, inspects, renews and revokes a lease shared by handles', async () => {
    const { lease } = await client.leases.grant({ ttlMs: 60_000 });
    expect(lease.ttlMs).toBe(60_000);
    const a = await client.files.remoteOpen({
      path: 'shared-a.txt',
      mode: 'append',
      create: true,
      leaseId: lease.leaseId,
    });
    const b = await client.files.remoteOpen({
      path: 'shared-b.txt',
      mode: 'append',
      create: true,
      leaseId: lease.leaseId,
    });
    expect(a.lease.leaseId).toBe(lease.leaseId);
    const ttl = await client.leases.timeToLive({ leaseId: lease.leaseId });
    expect(new Set(ttl.handles)).toEqual(new Set([a.handle, b.handle]));
    expect(ttl.remainingMs).toBeGreaterThan(0);
    await expect(client.leases.keepAlive({ leaseId: lease.leaseId })).resolves.toMatchObject({
      lease: { leaseId: lease.leaseId },
    });
    expect(client.leaseIds).toContain(lease.leaseId);
    await expect(client.leases.revoke({ leaseId: lease.leaseId })).resolves.toEqual({});
    expect(client.leaseIds).not.toContain(lease.leaseId);
    const error = await catchError(client.files.remotePrint({ handle: a.handle, data: 'x' }));
    expect(error).toMatchObject({ code: 'failed_precondition', httpStatus: 400 });
    expect(['lease_revoked', 'lease_expired']).toContain(error.reason);
  });

  it.each([
    ['a missing file', () => client.directories.stat({ path: 'nope.txt' }), 'not_found', 404, undefined],
    [
      'a second mkdir',
      async () => {
        await client.directories.makeDirectory({ path: 'twice' });
        return client.directories.makeDirectory({ path: 'twice' });
      },
      'already_exists',
      409,
      undefined,
    ],
    [
      'a path outside the root',
      () => client.directories.stat({ path: '../etc/passwd' }),
      'permission_denied',
      403,
      'path_outside_root',
    ],
    ['a missing field', () => client.directories.stat({} as never), 'invalid_argument', 400, 'missing_field'],
    [
      'an unknown handle',
      () => client.files.remoteRead({ handle: 'no-such-handle' }),
      'not_found',
      404,
      undefined,
    ],
  ])(
    'turns %s into an RpcError with code, reason and HTTP status',
    async (_name, call, code, status, reason) => {
      const error = await catchError(call());
      expect(error).toMatchObject({ code, httpStatus: status });
      if (reason !== undefined) expect(error.reason).toBe(reason);
      expect(error.details.reason).toBe(error.reason);
    },
  );

  it('stops a request whose attempt signal (AttemptAbort) fired before it started, as an aborted AbortSignal does', async () => {
    const transport = new HttpTransport(resolveTransportOptions(address()));
    try {
      const path = transport.methodPath('Directories', 'Stat');
      expect(
        (await transport.post(path, '{"path":"/"}', undefined, undefined, new AttemptAbort())).status,
      ).toBe(200);
      const fired = new AttemptAbort();
      const reason = new Error('aborted before the request');
      fired.abort(reason);
      fired.abort(new Error('a second abort changes nothing'));
      expect(fired.aborted).toBe(true);
      await expect(transport.post(path, '{"path":"/"}', undefined, undefined, fired)).rejects.toBe(reason);
    } finally {
      await transport.close();
    }
  });

  it('closes a handle opened with openHandle at the end of an await using block', async () => {
    let handleId: string;
    {
      await using file = await openHandle(client, { path: 'disposable.txt', mode: 'append', create: true });
      handleId = file.handle;
      await Promise.all([file.print('a'), file.print('b'), file.print('c')]);
    }
    expect(await readFile(join(server.root, 'disposable.txt'), 'utf8')).toBe('abc');
    await expect(catchError(client.files.remoteRead({ handle: handleId }))).resolves.toMatchObject({
      code: 'not_found',
    });
  });
});

describe('failures below HTTP', () => {
  it('turns a refused TCP connection into unavailable with the socket error as cause', async () => {
    const server = await startTestServer();
    await server.close();
    await using client = createClient({
      baseUrl: server.url,
      retry: { maxAttempts: 2, initialBackoffMs: 1 },
    });
    const error = await catchError(client.directories.stat({ path: 'x' }));
    expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503 });
    expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('turns a missing Unix socket into unavailable with the socket error as cause', async () => {
    const server = await startTestServer({ unixSocket: true });
    await server.close();
    await using client = createClient({ socketPath: server.socketPath, retry: false });
    const error = await catchError(client.directories.stat({ path: 'x' }));
    expect(error).toMatchObject({ code: 'unavailable' });
    expect(error.cause).toMatchObject({ code: expect.stringMatching(/ENOENT|ECONNREFUSED/) });
  });

  describe('with a slow network', () => {
    let server: TestServer;
    let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
    beforeAll(async () => {
      server = await startTestServer();
      const { port } = new URL(server.url);
      proxy = await startFaultProxy({
        upstream: { host: '127.0.0.1', port: Number(port) },
        faults: { delay: 1 },
        minDelayMs: 400,
        maxDelayMs: 500,
      });
    });
    afterAll(async () => {
      await proxy.close();
      await server.close();
    });

    it('ends a call that outlives timeoutMs with deadline_exceeded', async () => {
      await using client = createClient({ baseUrl: proxy.url });
      const started = performance.now();
      const error = await catchError(client.directories.stat({ path: '/' }, { timeoutMs: 100 }));
      expect(error).toMatchObject({ code: 'deadline_exceeded', httpStatus: 504 });
      expect(performance.now() - started).toBeLessThan(350);
    });

    it('ends a call whose AbortSignal fires with canceled', async () => {
      await using client = createClient({ baseUrl: proxy.url });
      const error = await catchError(
        client.directories.stat({ path: '/' }, { signal: AbortSignal.timeout(50) }),
      );
      expect(error).toMatchObject({ code: 'canceled', httpStatus: 499 });
    });
  });
});

describe('print sequencing', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('numbers prints per handle in call order, and uses a seq the caller gives as is', async () => {
    await using client = createClient({ baseUrl: server.url });
    const a = await client.files.remoteOpen({ path: 'seq-a.txt', mode: 'append', create: true });
    const b = await client.files.remoteOpen({ path: 'seq-b.txt', mode: 'append', create: true });
    const results = await Promise.all([
      client.files.remotePrint({ handle: a.handle, data: '1' }),
      client.files.remotePrint({ handle: b.handle, data: '1' }),
      client.files.remotePrint({ handle: a.handle, data: '2' }),
    ]);
    expect(results.map((r) => r.seq)).toEqual([1, 1, 2]);
    const explicit = await client.files.remoteOpen({ path: 'seq-c.txt', mode: 'append', create: true });
    await expect(
      client.files.remotePrint({ handle: explicit.handle, data: 'x', seq: 2 }),
    ).rejects.toMatchObject({
      reason: 'sequence_gap',
    });
  });

  it('lets the prints after one that failed for good go on, in order (its seq is filled)', async () => {
    await using client = createClient({ baseUrl: server.url });
    const { handle } = await client.files.remoteOpen({
      path: 'not-poisoned.txt',
      mode: 'append',
      create: true,
    });
    const bad = client.files.remotePrint({ handle, data: '%%% not base64', encoding: 'base64' });
    const later = client.files.remotePrint({ handle, data: 'fine' }, { timeoutMs: 10_000 });
    await expect(bad).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(later).resolves.toMatchObject({ seq: 2, bytesWritten: 4 });
    expect(await readFile(join(server.root, 'not-poisoned.txt'), 'utf8')).toBe('fine');
  });
});

describe('a bearer token', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ tokenTable: { 'client-secret': { principal: 'dana' } } });
  });
  afterAll(async () => {
    await server.close();
  });

  it('is sent on every call with token, and its absence is unauthenticated', async () => {
    await using client = createClient({ baseUrl: server.url, token: 'client-secret' });
    await client.directories.makeDirectory({ path: 'dana' });
    expect(await client.directories.stat({ path: 'dana' })).toMatchObject({ isDirectory: true });
    await using anonymous = createClient({ baseUrl: server.url, retry: false });
    expect(await catchError(anonymous.directories.stat({ path: '/' }))).toMatchObject({
      code: 'unauthenticated',
    });
  });
});
