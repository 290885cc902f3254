/**
 * The JSON-RPC 2.0 specification's examples (section 7), adapted to
 * leasegate's methods, against `POST /jsonrpc` of a real server; and
 * `rpc.discover`.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeInfo } from '../../common/codes.js';
import { services } from '../../generated/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
  await mkdir(join(s.root, 'docs'), { recursive: true });
  await writeFile(join(s.root, 'docs/a.txt'), 'abc');
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

type Response = {
  jsonrpc: string;
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
};

/** Sends a JSON-RPC payload and returns the HTTP status and parsed reply. */
async function rpc(
  payload: unknown,
): Promise<{ status: number; body: unknown; text: string; type: unknown }> {
  const r = await s.jsonrpc(payload);
  return { status: r.status, body: r.body, text: r.text, type: r.headers['content-type'] };
}

const statOfDocs = { isDirectory: true, size: 0, modifiedAt: expect.any(String) };

describe('the specification’s examples', () => {
  it('rpc call with positional parameters: an array holding the request object', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: [{ path: 'docs' }], id: 1 });
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    expect(r.body).toEqual({ jsonrpc: '2.0', result: statOfDocs, id: 1 });
  });

  it('rpc call with named parameters, answered with the same id (number or string)', async () => {
    expect(
      (await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'docs' }, id: 3 })).body,
    ).toEqual({
      jsonrpc: '2.0',
      result: statOfDocs,
      id: 3,
    });
    expect(
      (await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'docs' }, id: 'four' })).body,
    ).toEqual({
      jsonrpc: '2.0',
      result: statOfDocs,
      id: 'four',
    });
  });

  it('a notification is run but never answered', async () => {
    const r = await rpc({
      jsonrpc: '2.0',
      method: 'Directories.MakeDirectory',
      params: { path: 'made-by-notification' },
    });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect((await stat(join(s.root, 'made-by-notification'))).isDirectory()).toBe(true);
  });

  it('a notification that fails is not answered either', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'nothing' } });
    expect([r.status, r.text]).toEqual([204, '']);
    const unknown = await rpc({ jsonrpc: '2.0', method: 'foobar' });
    expect([unknown.status, unknown.text]).toEqual([204, '']);
  });

  it('rpc call of a non-existent method: -32601', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'foobar', id: '1' });
    expect(r.body).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32601, message: 'Method not found' },
      id: '1',
    });
  });

  it('rpc call with invalid JSON: -32700 and id null', async () => {
    const r = await rpc('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
  });

  it('rpc call with an invalid Request object: -32600 and id null', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 1, params: 'bar' });
    expect(r.body).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32600, message: expect.stringMatching(/^Invalid Request/) },
      id: null,
    });
  });

  // The member at fault is named, in the message and as data.details.field (the contract's error body).
  it.each([
    [{ id: 1, method: 'Directories.Stat' }, 'jsonrpc', '"jsonrpc" must be "2.0"', 1],
    [{ jsonrpc: '1.0', id: 1, method: 'Directories.Stat' }, 'jsonrpc', '"jsonrpc" must be "2.0"', 1],
    [{ jsonrpc: '2.0', id: 'a', method: 5 }, 'method', '"method" must be a string', 'a'],
    [
      { jsonrpc: '2.0', id: { a: 1 }, method: 'Directories.Stat' },
      'id',
      '"id" must be a string, a number or null',
      null,
    ],
    [
      { jsonrpc: '2.0', id: 2, method: 'Directories.Stat', params: 'x' },
      'params',
      '"params" must be an object or an array',
      2,
    ],
  ])('an invalid Request %j names the member %s', async (request, field, problem, id) => {
    const r = await rpc(request);
    const message = `Invalid Request: ${problem}`;
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      jsonrpc: '2.0',
      id,
      error: {
        code: -32600,
        message,
        data: { code: 'invalid_argument', message, details: { reason: 'invalid_request', field } },
      },
    });
  });

  it('rpc call Batch with invalid JSON: one -32700 error', async () => {
    const r = await rpc(
      '[{"jsonrpc": "2.0", "method": "Directories.Stat", "params": {"path": "/"}, "id": "1"},{"jsonrpc": "2.0", "method"]',
    );
    expect(r.body).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
  });

  it('rpc call with an empty Array: one -32600 error', async () => {
    const r = await rpc([]);
    expect(r.body).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
    expect(Array.isArray(r.body)).toBe(false);
  });

  const notAnObjectMessage = 'Invalid Request: a request must be a JSON object';
  const notAnObject = {
    jsonrpc: '2.0',
    error: {
      code: -32600,
      message: notAnObjectMessage,
      data: { code: 'invalid_argument', message: notAnObjectMessage, details: { reason: 'invalid_request' } },
    },
    id: null,
  };

  it('rpc call with an invalid Batch (but not empty) [1]: an array of one -32600 error', async () => {
    const r = await rpc([1]);
    expect(r.body).toEqual([notAnObject]);
  });

  it('rpc call with an invalid Batch [1,2,3]: three -32600 errors', async () => {
    const r = await rpc([1, 2, 3]);
    expect(r.body).toEqual([notAnObject, notAnObject, notAnObject]);
  });

  it('rpc call Batch: calls, a notification, an invalid request and an unknown method', async () => {
    const r = await rpc([
      { jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'docs/a.txt' }, id: '1' },
      { jsonrpc: '2.0', method: 'Directories.MakeDirectory', params: [{ path: 'batch-notified' }] },
      { jsonrpc: '2.0', method: 'Directories.ListDirectory', params: { path: 'docs' }, id: '2' },
      { foo: 'boo' },
      { jsonrpc: '2.0', method: 'foo.get', params: { name: 'myself' }, id: '5' },
      { jsonrpc: '2.0', method: 'Leases.Grant', params: {}, id: '9' },
    ]);
    const body = r.body as Response[];
    expect(body).toHaveLength(5);
    const byId = new Map(body.map((x) => [x.id, x]));
    expect(byId.get('1')).toEqual({
      jsonrpc: '2.0',
      result: { isDirectory: false, size: 3, modifiedAt: expect.any(String) },
      id: '1',
    });
    expect(byId.get('2')?.result).toEqual({ entries: [expect.objectContaining({ name: 'a.txt' })] });
    expect(byId.get(null)).toMatchObject({ error: { code: -32600 } });
    expect(byId.get('5')).toMatchObject({ error: { code: -32601, message: 'Method not found' } });
    expect(byId.get('9')?.result).toEqual({ lease: expect.objectContaining({ ttlMs: 30_000 }) });
    expect((await stat(join(s.root, 'batch-notified'))).isDirectory()).toBe(true);
  });

  it('rpc call Batch (all notifications): nothing is returned', async () => {
    const r = await rpc([
      { jsonrpc: '2.0', method: 'Directories.MakeDirectory', params: { path: 'n1' } },
      { jsonrpc: '2.0', method: 'Directories.MakeDirectory', params: { path: 'n2' } },
    ]);
    expect([r.status, r.text]).toEqual([204, '']);
    expect((await stat(join(s.root, 'n2'))).isDirectory()).toBe(true);
  });
});

describe('beyond the examples', () => {
  it('refuses a batch of more than --max-batch-calls calls whole, running none; takes one of exactly that many', async () => {
    const mkdirs = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        jsonrpc: '2.0',
        method: 'Directories.MakeDirectory',
        params: { path: `${prefix}-${i}` },
        id: i,
      }));
    const over = await rpc(mkdirs('over', 101));
    expect(over.body).toMatchObject({
      id: null,
      error: { code: -32600, message: expect.stringContaining('100') },
    });
    await expect(stat(join(s.root, 'over-0'))).rejects.toThrow();
    const full = await rpc(mkdirs('full', 100));
    expect((full.body as Response[]).filter((x) => x.result !== undefined)).toHaveLength(100);
  });

  it('runs a batch in order, so a later call sees an earlier one’s effect', async () => {
    const r = await rpc([
      { jsonrpc: '2.0', method: 'Directories.MakeDirectory', params: { path: 'ordered' }, id: 1 },
      { jsonrpc: '2.0', method: 'Directories.MakeDirectory', params: { path: 'ordered/inner' }, id: 2 },
      { jsonrpc: '2.0', method: 'Directories.Remove', params: { path: 'ordered' }, id: 3 },
      { jsonrpc: '2.0', method: 'Directories.Remove', params: { path: 'ordered', recursive: true }, id: 4 },
    ]);
    const body = r.body as Response[];
    expect(body.map((x) => x.id)).toEqual([1, 2, 3, 4]);
    expect(body[0]?.result).toEqual({});
    expect(body[1]?.result).toEqual({});
    expect(body[2]?.error).toMatchObject({
      code: codeInfo.failed_precondition.jsonRpcCode,
      data: { code: 'failed_precondition' },
    });
    expect(body[3]?.result).toEqual({});
  });

  it('answers application errors in the -32000 range with data holding the contract error', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'nothing' }, id: 7 });
    expect(r.body).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: {
        code: codeInfo.not_found.jsonRpcCode,
        message: 'no such file or directory: /nothing',
        data: {
          code: 'not_found',
          message: 'no such file or directory: /nothing',
          details: expect.objectContaining({ reason: 'no_such_file' }),
        },
      },
    });
  });

  it('answers invalid params with -32602, data.code invalid_argument and the field', async () => {
    const r = await rpc({
      jsonrpc: '2.0',
      method: 'Files.RemoteOpen',
      params: { path: 'x', mode: 'sideways' },
      id: 8,
    });
    expect(r.body).toMatchObject({
      id: 8,
      error: { code: -32602, data: { code: 'invalid_argument', details: { field: 'mode' } } },
    });
  });

  it.each([
    ['positional params of two values', { params: [{ path: '/' }, { path: '/' }] }],
    ['positional params of a bare value', { params: ['/'] }],
  ])('answers %s with -32602', async (_name, extra) => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', id: 9, ...extra });
    expect(r.body).toMatchObject({ id: 9, error: { code: -32602 } });
  });

  it.each([
    ['a wrong version', { jsonrpc: '1.0', method: 'Directories.Stat', params: { path: '/' }, id: 1 }],
    ['no version', { method: 'Directories.Stat', params: { path: '/' }, id: 1 }],
    ['an object id', { jsonrpc: '2.0', method: 'Directories.Stat', params: { path: '/' }, id: { a: 1 } }],
    ['params that are a string', { jsonrpc: '2.0', method: 'Directories.Stat', params: 'x', id: 1 }],
    ['params that are null', { jsonrpc: '2.0', method: 'Directories.Stat', params: null, id: 1 }],
  ])('answers a request with %s with -32600', async (_name, payload) => {
    const r = await rpc(payload);
    expect(r.body).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 } });
  });

  it('answers a request whose id is null (not a notification) with id null', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'docs' }, id: null });
    expect(r.body).toEqual({ jsonrpc: '2.0', id: null, result: statOfDocs });
  });

  it('treats missing params as an empty object', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'Leases.Grant', id: 10 });
    expect(r.body).toMatchObject({ id: 10, result: { lease: { ttlMs: 30_000 } } });
  });

  it('never sends both result and error', async () => {
    const r = await rpc([
      { jsonrpc: '2.0', method: 'Directories.Stat', params: { path: '/' }, id: 1 },
      { jsonrpc: '2.0', method: 'Directories.Stat', params: { path: 'nope' }, id: 2 },
    ]);
    for (const x of r.body as Response[]) {
      expect(Object.keys(x).sort()).toEqual(
        x.id === 1 ? ['id', 'jsonrpc', 'result'] : ['error', 'id', 'jsonrpc'],
      );
    }
  });

  it('a batch can open, print to and close a file', async () => {
    const opened = (
      await rpc({
        jsonrpc: '2.0',
        method: 'Files.RemoteOpen',
        params: { path: 'batch.txt', mode: 'write', create: true },
        id: 1,
      })
    ).body as Response;
    const { handle } = opened.result as { handle: string };
    const r = await rpc([
      { jsonrpc: '2.0', method: 'Files.RemotePrint', params: { handle, data: 'one ' }, id: 1 },
      { jsonrpc: '2.0', method: 'Files.RemotePrint', params: { handle, data: 'two' }, id: 2 },
      { jsonrpc: '2.0', method: 'Files.RemoteClose', params: { handle }, id: 3 },
    ]);
    expect((r.body as Response[]).map((x) => x.result)).toEqual([
      { bytesWritten: 4, offset: 0, seq: 1 },
      { bytesWritten: 3, offset: 4, seq: 2 },
      {},
    ]);
    expect(await readFile(join(s.root, 'batch.txt'), 'utf8')).toBe('one two');
  });
});

describe('rpc.discover', () => {
  it('returns the OpenRPC document the server serves at /openrpc.json', async () => {
    const r = await rpc({ jsonrpc: '2.0', method: 'rpc.discover', id: 'd' });
    const doc = (r.body as Response).result as {
      openrpc: string;
      methods: { name: string }[];
      info: { title: string };
    };
    expect(doc.openrpc).toMatch(/^1\.\d+\.\d+$/);
    const served = (await s.send('GET', '/openrpc.json')).body;
    expect(doc).toEqual(served);
    const expected = Object.values(services).flatMap((svc) =>
      Object.keys(svc.methods).map((m) => `${svc.name}.${m}`),
    );
    expect(doc.methods.map((m) => m.name).sort()).toEqual(expected.sort());
  });
});
