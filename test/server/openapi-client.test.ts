/**
 * A third-party OpenAPI client, openapi-client-axios, driven only by the
 * document the server serves at /openapi.json: it builds one method per
 * operationId and runs the seed's flow against the real server, with an
 * Idempotency-Key header parameter, and gets the contract's error body on a
 * failure.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AxiosError } from 'axios';
import { OpenAPIClientAxios } from 'openapi-client-axios';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

type Operation = (
  params?: unknown,
  data?: unknown,
) => Promise<{ status: number; data: Record<string, unknown> }>;

let s: TestServer;
let client: Record<string, Operation>;

/** Calls the operation the client built for `operationId`. */
function call(operationId: string, params: unknown, data: unknown) {
  const operation = client[operationId];
  if (operation === undefined) throw new Error(`the client has no method ${operationId}`);
  return operation(params, data);
}

beforeAll(async () => {
  s = await startTestServer();
  const api = new OpenAPIClientAxios({
    definition: `${s.url}/openapi.json`,
    axiosConfigDefaults: { baseURL: s.url },
  });
  client = (await api.init()) as unknown as Record<string, Operation>;
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe('openapi-client-axios against the served document', () => {
  it('has a method for every operation of the document', () => {
    for (const id of ['Directories_MakeDirectory', 'Files_RemotePrint', 'Leases_Grant', 'Leases_Revoke']) {
      expect(typeof client[id], id).toBe('function');
    }
  });

  it('runs MakeDirectory, ListDirectory, RemoteOpen, RemotePrint (keyed, replayed), RemoteRead and RemoteClose', async () => {
    expect((await call('Directories_MakeDirectory', null, { path: 'oa' })).status).toBe(200);
    const list = await call('Directories_ListDirectory', null, { path: '/' });
    expect((list.data.entries as { name: string }[]).map((e) => e.name)).toContain('oa');

    const opened = await call('Files_RemoteOpen', null, {
      path: 'oa/notes.txt',
      mode: 'write',
      create: true,
    });
    const handle = opened.data.handle as string;
    const key = { 'Idempotency-Key': 'oa-print-1' };
    const first = await call('Files_RemotePrint', key, { handle, data: 'hello\n' });
    const again = await call('Files_RemotePrint', key, { handle, data: 'hello\n' });
    expect(first.data).toEqual({ bytesWritten: 6, offset: 0, seq: 1 });
    expect(again.data).toEqual(first.data);
    expect((await call('Files_RemoteClose', null, { handle })).status).toBe(200);
    expect(await readFile(join(s.root, 'oa/notes.txt'), 'utf8')).toBe('hello\n');

    const reading = await call('Files_RemoteOpen', null, { path: 'oa/notes.txt', mode: 'read' });
    const read = await call('Files_RemoteRead', null, { handle: reading.data.handle });
    expect(read.data).toMatchObject({ data: 'hello\n', offset: 0, eof: true });
  });

  it('gets the contract error body and status for a failed call', async () => {
    const failure = await call('Files_RemotePrint', null, { handle: 'h_nope', data: 'x' }).then(
      () => undefined,
      (error: AxiosError) => error,
    );
    expect(failure?.response?.status).toBe(404);
    expect(failure?.response?.data).toMatchObject({ code: 'not_found' });
  });
});
