/**
 * A third-party JSON-RPC 2.0 client (the `json-rpc-2.0` package, wired to
 * fetch exactly as its README shows) against `POST /jsonrpc` of a real server.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JSONRPCClient, JSONRPCErrorException } from 'json-rpc-2.0';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeInfo } from '../../common/codes.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let client: JSONRPCClient;

beforeAll(async () => {
  s = await startTestServer();
  // The package README's HTTP wiring, unchanged but for the URL.
  client = new JSONRPCClient((jsonRPCRequest) =>
    fetch(`${s.url}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(jsonRPCRequest),
    }).then((response) => {
      if (response.status === 200) {
        return response.json().then((jsonRPCResponse) => client.receive(jsonRPCResponse));
      }
      if (jsonRPCRequest.id !== undefined) return Promise.reject(new Error(response.statusText));
    }),
  );
});
afterAll(async () => {
  await s.close();
});

describe('the json-rpc-2.0 client', () => {
  it('runs the seed flow: mkdir, list, open, print, close, read back', async () => {
    expect(await client.request('Directories.MakeDirectory', { path: 'third-party' })).toEqual({});
    expect(await client.request('Directories.ListDirectory', { path: 'third-party' })).toEqual({
      entries: [],
    });
    const { handle } = await client.request('Files.RemoteOpen', {
      path: 'third-party/log.txt',
      mode: 'append',
      create: true,
    });
    expect(await client.request('Files.RemotePrint', { handle, data: 'hello from json-rpc-2.0\n' })).toEqual({
      bytesWritten: 24,
      offset: 0,
      seq: 1,
    });
    expect(await client.request('Files.RemoteClose', { handle })).toEqual({});
    expect(await readFile(join(s.root, 'third-party/log.txt'), 'utf8')).toBe('hello from json-rpc-2.0\n');
    const reader = await client.request('Files.RemoteOpen', { path: 'third-party/log.txt', mode: 'read' });
    expect(await client.request('Files.RemoteRead', { handle: reader.handle })).toMatchObject({
      data: 'hello from json-rpc-2.0\n',
      eof: true,
    });
  });

  it('sees contract errors as JSONRPCErrorException with the code and data.code', async () => {
    const error = await Promise.resolve(client.request('Directories.Stat', { path: 'missing' })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JSONRPCErrorException);
    const e = error as JSONRPCErrorException;
    expect(e.code).toBe(codeInfo.not_found.jsonRpcCode);
    expect(e.data).toMatchObject({ code: 'not_found', details: { reason: 'no_such_file' } });
  });

  it('gets -32601 for an unknown method and -32602 for bad params', async () => {
    await expect(client.request('Directories.Chmod', { path: '/' })).rejects.toMatchObject({ code: -32601 });
    await expect(client.request('Directories.Stat', { path: 7 })).rejects.toMatchObject({
      code: -32602,
      data: { code: 'invalid_argument', details: { field: 'path' } },
    });
  });

  it('sends notifications (the 204 reply resolves them) and batches', async () => {
    client.notify('Directories.MakeDirectory', { path: 'notified' });
    await expect
      .poll(() => client.request('Directories.Stat', { path: 'notified' }))
      .toMatchObject({ isDirectory: true });
    const responses = await client.requestAdvanced([
      { jsonrpc: '2.0', id: 1, method: 'Directories.Stat', params: { path: 'notified' } },
      { jsonrpc: '2.0', id: 2, method: 'Leases.Grant', params: { ttlMs: 2_000 } },
    ]);
    expect(responses).toEqual([
      { jsonrpc: '2.0', id: 1, result: expect.objectContaining({ isDirectory: true }) },
      { jsonrpc: '2.0', id: 2, result: { lease: expect.objectContaining({ ttlMs: 2_000 }) } },
    ]);
  });

  it('discovers the methods with rpc.discover', async () => {
    const doc = await client.request('rpc.discover', {});
    expect(doc.methods.map((m: { name: string }) => m.name)).toContain('Files.RemoteOpen');
  });
});
