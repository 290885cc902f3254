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
    expect((await client.Directories_MakeDirectory?.(null, { path: 'oa' }))?.status).toBe(200);
    const list = await client.Directories_ListDirectory?.(null, { path: '/' });
    expect((list?.data.entries as { name: string }[]).map((e) => e.name)).toContain('oa');

    const opened = await client.Files_RemoteOpen?.(null, {
      path: 'oa/notes.txt',
      mode: 'write',
      create: true,
    });
    const handle = opened?.data.handle as string;
    const key = { 'Idempotency-Key': 'oa-print-1' };
    const first = await client.Files_RemotePrint?.(key, { handle, data: 'hello\n' });
    const again = await client.Files_RemotePrint?.(key, { handle, data: 'hello\n' });
    expect(first?.data).toEqual({ bytesWritten: 6, offset: 0, seq: 1 });
    expect(again?.data).toEqual(first?.data);
    expect((await client.Files_RemoteClose?.(null, { handle }))?.status).toBe(200);
    expect(await readFile(join(s.root, 'oa/notes.txt'), 'utf8')).toBe('hello\n');

    const reading = await client.Files_RemoteOpen?.(null, { path: 'oa/notes.txt', mode: 'read' });
    const read = await client.Files_RemoteRead?.(null, { handle: reading?.data.handle });
    expect(read?.data).toMatchObject({ data: 'hello\n', offset: 0, eof: true });
  });

  it('gets the contract error body and status for a failed call', async () => {
    const failure = await client.Files_RemotePrint?.(null, { handle: 'h_nope', data: 'x' }).then(
      () => undefined,
      (error: AxiosError) => error,
    );
    expect(failure?.response?.status).toBe(404);
    expect(failure?.response?.data).toMatchObject({ code: 'not_found' });
  });
});
