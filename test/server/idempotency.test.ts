/**
 * Idempotency keys over both transports (contract section 6): each rule as its
 * own test, against a real server, real files and a user-level slow service.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordOverheadBytes } from '../../server/idempotency/memory-store.js';
import { ManualClock } from '../../server/index.js';
import { printAnswerBody } from '../../server/redo-log/records.js';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';
import { type Effects, send, slowService, statusOf } from './idempotency-fixtures.js';

const effects: Effects = new Map();
let s: TestServer;
let n = 0;
/** A key never used before in this file. */
const fresh = (label = 'k') => `${label}-${++n}-${Date.now()}`;

beforeAll(async () => {
  s = await startTestServer({ services: [slowService(effects)] });
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe.each(transports)('idempotency keys over %s', (t) => {
  const dir = `idem-${t}`;
  const openAppend = async (name: string) => {
    const r = await send(s, t, 'Files.RemoteOpen', { path: `${dir}/${name}`, mode: 'append', create: true });
    expect(r.ok).toBe(true);
    return r.result.handle as string;
  };
  const content = (name: string) => readFile(join(s.root, dir, name), 'utf8');

  beforeAll(async () => {
    await mkdir(join(s.root, dir), { recursive: true });
  });

  it('replays a completed call with Idempotent-Replayed: true and does not run it again', async () => {
    const handle = await openAppend('replay.txt');
    const key = fresh();
    const first = await send(s, t, 'Files.RemotePrint', { handle, data: 'once\n' }, key);
    const again = await send(s, t, 'Files.RemotePrint', { handle, data: 'once\n' }, key);
    expect(first).toMatchObject({
      status: 200,
      ok: true,
      replayed: false,
      result: { bytesWritten: 5, offset: 0, seq: 1 },
    });
    expect(again).toMatchObject({ status: 200, ok: true, replayed: true });
    expect(again.text).toBe(first.text);
    expect(await content('replay.txt')).toBe('once\n');
  });

  it('accepts the key as a quoted structured-field string and as a bare token alike', async () => {
    const handle = await openAppend('quoted.txt');
    const key = fresh('quoted');
    const first = await send(s, t, 'Files.RemotePrint', { handle, data: 'q\n' }, `"${key}"`);
    const again = await send(s, t, 'Files.RemotePrint', { handle, data: 'q\n' }, key);
    expect([first.replayed, again.replayed]).toEqual([false, true]);
    expect(await content('quoted.txt')).toBe('q\n');
  });

  it('replays a deterministic error without running the call again', async () => {
    const path = `${dir}/exists-${t}`;
    await mkdir(join(s.root, path));
    const key = fresh();
    const first = await send(s, t, 'Directories.MakeDirectory', { path }, key);
    expect(first).toMatchObject({ status: statusOf(t, 409), code: 'already_exists', replayed: false });
    await rm(join(s.root, path), { recursive: true });
    const again = await send(s, t, 'Directories.MakeDirectory', { path }, key);
    expect(again).toMatchObject({ status: statusOf(t, 409), code: 'already_exists', replayed: true });
    expect(again.text).toBe(first.text);
    await expect(stat(join(s.root, path))).rejects.toThrow(); // the replay made nothing
  });

  it('makes a duplicate that arrives while the first call runs wait, then replays its answer', async () => {
    const tag = fresh('wait');
    const key = fresh();
    const first = send(s, t, 'Slow.Sleep', { tag, ms: 300 }, key);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const duplicate = await send(s, t, 'Slow.Sleep', { tag, ms: 300 }, key);
    const answered = await first;
    expect(answered).toMatchObject({ ok: true, replayed: false, result: { tag, count: 1 } });
    expect(duplicate).toMatchObject({ ok: true, replayed: true, result: { tag, count: 1 } });
    expect(effects.get(tag)).toBe(1);
  });

  it('answers 409 idempotency_key_in_use with Retry-After when the duplicate deadline passes first', async () => {
    const tag = fresh('inuse');
    const key = fresh();
    const first = send(s, t, 'Slow.Sleep', { tag, ms: 400 }, key);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const duplicate = await send(s, t, 'Slow.Sleep', { tag, ms: 400 }, key, { 'rpc-timeout-ms': '100' });
    expect(duplicate).toMatchObject({
      status: statusOf(t, 409),
      ok: false,
      code: 'aborted',
      reason: 'idempotency_key_in_use',
      retryAfter: '1',
    });
    await first;
    const retried = await send(s, t, 'Slow.Sleep', { tag, ms: 400 }, key);
    expect(retried).toMatchObject({ ok: true, replayed: true, result: { tag, count: 1 } });
    expect(effects.get(tag)).toBe(1);
  });

  it('answers 422 idempotency_key_reused for the same key with another body', async () => {
    const handle = await openAppend('reused-body.txt');
    const key = fresh();
    expect((await send(s, t, 'Files.RemotePrint', { handle, data: 'a\n' }, key)).ok).toBe(true);
    const other = await send(s, t, 'Files.RemotePrint', { handle, data: 'b\n' }, key);
    expect(other).toMatchObject({
      status: statusOf(t, 422),
      code: 'invalid_argument',
      reason: 'idempotency_key_reused',
      field: 'Idempotency-Key',
      replayed: false,
    });
    expect(await content('reused-body.txt')).toBe('a\n');
  });

  it('answers 422 idempotency_key_reused for the same key with another method', async () => {
    const tag = fresh('method');
    const key = fresh();
    expect((await send(s, t, 'Slow.Bump', { tag }, key)).ok).toBe(true);
    const other = await send(s, t, 'Slow.Sleep', { tag }, key);
    expect(other).toMatchObject({
      status: statusOf(t, 422),
      code: 'invalid_argument',
      reason: 'idempotency_key_reused',
    });
    expect(effects.get(tag)).toBe(1);
  });

  it('fingerprints the validated request: unknown fields, defaults and key order do not matter', async () => {
    const tag = fresh('validated');
    const key = fresh();
    const first = await send(s, t, 'Slow.Sleep', { tag }, key);
    const again = await send(s, t, 'Slow.Sleep', { ms: 0, tag, ignored: true }, key);
    expect([first.ok, again.replayed]).toEqual([true, true]);
    expect(effects.get(tag)).toBe(1);
  });

  it('stores nothing for a validation failure: a fixed request with the same key runs', async () => {
    const handle = await openAppend('invalid.txt');
    const key = fresh();
    const invalid = await send(s, t, 'Files.RemotePrint', { handle }, key);
    expect(invalid).toMatchObject({ ok: false, code: 'invalid_argument', field: 'data' });
    const badBase64 = await send(s, t, 'Files.RemotePrint', { handle, data: '!!', encoding: 'base64' }, key);
    expect(badBase64).toMatchObject({ ok: false, code: 'invalid_argument', reason: 'invalid_base64' });
    const fixed = await send(s, t, 'Files.RemotePrint', { handle, data: 'fixed\n' }, key);
    expect(fixed).toMatchObject({ status: 200, ok: true, replayed: false });
    expect(await content('invalid.txt')).toBe('fixed\n');
  });

  it('replays a print after its handle was closed', async () => {
    const handle = await openAppend('closed.txt');
    const key = fresh();
    const first = await send(s, t, 'Files.RemotePrint', { handle, data: 'kept\n' }, key);
    expect((await send(s, t, 'Files.RemoteClose', { handle })).ok).toBe(true);
    const late = await send(s, t, 'Files.RemotePrint', { handle, data: 'kept\n' }, key);
    expect(late).toMatchObject({ status: 200, ok: true, replayed: true });
    expect(late.text).toBe(first.text);
    const unkeyed = await send(s, t, 'Files.RemotePrint', { handle, data: 'kept\n' });
    expect(unkeyed.ok).toBe(false);
    expect(await content('closed.txt')).toBe('kept\n');
  });

  it.runIf(t === 'http')(
    'stores the print answer recovery would rebuild (printAnswerBody), byte for byte',
    async () => {
      const handle = await openAppend('answer.txt');
      await send(s, t, 'Files.RemotePrint', { handle, data: 'first\n' });
      const keyed = await send(s, t, 'Files.RemotePrint', { handle, data: 'second\n' }, fresh());
      expect(keyed.ok).toBe(true);
      expect(keyed.text).toBe(printAnswerBody({ bytesWritten: 7, offset: 6, seq: 2 }));
    },
  );

  it('refuses a malformed key with 400 naming Idempotency-Key', async () => {
    // Too long, not ASCII, empty, an unterminated string, an escape RFC 8941 does not have, parameters.
    for (const bad of ['x'.repeat(256), 'caf\u00e9', ' ', '""', '"abc', '"a\\qb"', '"k1";x=1']) {
      const reply = await send(s, t, 'Slow.Bump', { tag: 'never' }, bad);
      expect(reply).toMatchObject({
        status: statusOf(t, 400),
        code: 'invalid_argument',
        field: 'Idempotency-Key',
      });
    }
    expect(effects.get('never')).toBeUndefined();
  });

  it('refuses an Idempotency-Key sent twice (Node joins the two with ", "), but takes one key holding ", "', async () => {
    const url = new URL(s.url);
    const tag = `twice-${t}`;
    const params = JSON.stringify({ tag });
    const body = t === 'http' ? params : `{"jsonrpc":"2.0","id":1,"method":"Slow.Bump","params":${params}}`;
    const path = t === 'http' ? '/v1/Slow/Bump' : '/jsonrpc';
    const twice = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: a\r\n` +
          `Idempotency-Key: b\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      let raw = '';
      socket.on('data', (d) => {
        raw += String(d);
      });
      socket.on('end', () => resolve(raw));
      socket.on('error', reject);
    });
    expect(twice).toContain('invalid_idempotency_key');
    expect(twice).toContain('more than once');
    expect(effects.get(tag)).toBeUndefined();
    const one = await send(s, t, 'Slow.Bump', { tag }, fresh('a, b'));
    expect(one.ok).toBe(true);
  });

  it('keeps a response header that matters (Lease-Remaining-Ms) in the replay', async () => {
    const handle = await openAppend('lease-header.txt');
    const key = fresh();
    const headers = async () => {
      const params = { handle, data: 'h\n' };
      const reply =
        t === 'http'
          ? await s.post('Files.RemotePrint', params, { 'idempotency-key': key })
          : await s.jsonrpc(
              { jsonrpc: '2.0', id: 1, method: 'Files.RemotePrint', params },
              { 'idempotency-key': key },
            );
      return reply.headers;
    };
    const first = await headers();
    const again = await headers();
    expect(first['lease-remaining-ms']).toBeDefined();
    expect(again['lease-remaining-ms']).toBe(first['lease-remaining-ms']);
  });
});

describe('a key on a JSON-RPC batch', () => {
  const batch = (tag: string) => [
    { jsonrpc: '2.0', id: 1, method: 'Slow.Bump', params: { tag } },
    { jsonrpc: '2.0', id: 2, method: 'Slow.Bump', params: { tag } },
    { jsonrpc: '2.0', method: 'Slow.Bump', params: { tag } },
  ];

  it('covers the whole batch: a retry replays every response and runs nothing', async () => {
    const tag = fresh('batch');
    const key = fresh();
    const first = await s.jsonrpc(batch(tag), { 'idempotency-key': key });
    const again = await s.jsonrpc(batch(tag), { 'idempotency-key': key });
    expect(first.body).toEqual([
      { jsonrpc: '2.0', id: 1, result: { tag, count: 1 } },
      { jsonrpc: '2.0', id: 2, result: { tag, count: 2 } },
    ]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.text).toBe(first.text);
    expect(effects.get(tag)).toBe(3);
  });

  it('refuses the batch with another body (a call added) as reused', async () => {
    const tag = fresh('batch-reused');
    const key = fresh();
    await s.jsonrpc(batch(tag), { 'idempotency-key': key });
    const longer = [...batch(tag), { jsonrpc: '2.0', id: 3, method: 'Slow.Bump', params: { tag } }];
    const reply = await s.jsonrpc(longer, { 'idempotency-key': key });
    const body = reply.body as { id: number; error: { data: { details: { reason: string } } } }[];
    expect(body.map((r) => [r.id, r.error.data.details.reason])).toEqual([
      [1, 'idempotency_key_reused'],
      [2, 'idempotency_key_reused'],
      [3, 'idempotency_key_reused'],
    ]);
    expect(effects.get(tag)).toBe(3);
  });

  it('stores a batch that is partly invalid once a call in it ran', async () => {
    const tag = fresh('partial');
    const key = fresh();
    const mixed = [
      { jsonrpc: '2.0', id: 1, method: 'Slow.Bump', params: { tag } },
      { jsonrpc: '2.0', id: 2, method: 'Slow.Bump', params: {} },
    ];
    await s.jsonrpc(mixed, { 'idempotency-key': key });
    const again = await s.jsonrpc(mixed, { 'idempotency-key': key });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(effects.get(tag)).toBe(1);
  });

  it('stores nothing for a batch in which no call ran', async () => {
    const tag = fresh('none-ran');
    const key = fresh();
    const invalid = [
      { jsonrpc: '2.0', id: 1, method: 'Slow.Bump', params: {} },
      { jsonrpc: '2.0', id: 2, method: 'No.Such' },
    ];
    const first = await s.jsonrpc(invalid, { 'idempotency-key': key });
    expect((first.body as unknown[]).length).toBe(2);
    const fixed = await s.jsonrpc(batch(tag), { 'idempotency-key': key });
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    expect(effects.get(tag)).toBe(3);
  });

  it('stores nothing for a parse error', async () => {
    const tag = fresh('parse');
    const key = fresh();
    const broken = await s.jsonrpc('[{"jsonrpc": "2.0",', { 'idempotency-key': key });
    expect((broken.body as { error: { code: number } }).error.code).toBe(-32700);
    const fixed = await s.jsonrpc(batch(tag), { 'idempotency-key': key });
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    expect(effects.get(tag)).toBe(3);
  });

  it('fingerprints what the server reads: an unknown envelope member, even nested thousands deep, is left out', async () => {
    const tag = fresh('envelope');
    const key = fresh();
    const call = { jsonrpc: '2.0', id: 1, method: 'Slow.Bump', params: { tag } };
    const deep = `${'['.repeat(6000)}${']'.repeat(6000)}`;
    const first = await s.jsonrpc(
      `{"jsonrpc":"2.0","id":1,"method":"Slow.Bump","params":{"tag":"${tag}"},"x":${deep}}`,
      {
        'idempotency-key': key,
      },
    );
    expect(first.body).toEqual({ jsonrpc: '2.0', id: 1, result: { tag, count: 1 } });
    const again = await s.jsonrpc({ ...call, junk: 1 }, { 'idempotency-key': key });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.text).toBe(first.text);
    // A batch item nested deep is answered Invalid Request; the valid call beside it runs.
    const batchKey = fresh();
    const mixed = await s.jsonrpc(`[${JSON.stringify(call)},${deep}]`, { 'idempotency-key': batchKey });
    expect(
      (mixed.body as { id: number | null; result?: unknown; error?: { code: number } }[]).map(
        (r) => r.error?.code ?? r.result,
      ),
    ).toEqual([{ tag, count: 2 }, -32600]);
    expect(effects.get(tag)).toBe(2);
  });

  it('does not confuse the same key on the two transports: the second is reused', async () => {
    const tag = fresh('cross');
    const key = fresh();
    expect((await send(s, 'http', 'Slow.Bump', { tag }, key)).ok).toBe(true);
    const overJsonRpc = await send(s, 'jsonrpc', 'Slow.Bump', { tag }, key);
    expect(overJsonRpc).toMatchObject({ code: 'invalid_argument', reason: 'idempotency_key_reused' });
    expect(effects.get(tag)).toBe(1);
  });
});

describe.each(transports)('--require-idempotency-key over %s', (t) => {
  const tagged: Effects = new Map();
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startTestServer({ requireIdempotencyKey: true, services: [slowService(tagged)] });
  });
  afterAll(async () => {
    await strict.close();
  });

  it('answers a non-idempotent call without a key with 400 idempotency_key_missing', async () => {
    const reply = await send(strict, t, 'Directories.MakeDirectory', { path: 'nokey' });
    expect(reply).toMatchObject({
      status: statusOf(t, 400),
      code: 'invalid_argument',
      reason: 'idempotency_key_missing',
      field: 'Idempotency-Key',
    });
    await expect(stat(join(strict.root, 'nokey'))).rejects.toThrow();
  });

  it('runs idempotent calls without a key, and non-idempotent ones with a key', async () => {
    expect((await send(strict, t, 'Directories.Stat', { path: '/' })).ok).toBe(true);
    expect((await send(strict, t, 'Directories.MakeDirectory', { path: `keyed-${t}` }, fresh())).ok).toBe(
      true,
    );
  });
});

describe('--require-idempotency-key on a JSON-RPC batch', () => {
  const tagged: Effects = new Map();
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startTestServer({ requireIdempotencyKey: true, services: [slowService(tagged)] });
  });
  afterAll(async () => {
    await strict.close();
  });

  it('refuses a whole JSON-RPC batch holding one non-idempotent call without a key', async () => {
    const reply = await strict.jsonrpc([
      { jsonrpc: '2.0', id: 1, method: 'Directories.Stat', params: { path: '/' } },
      { jsonrpc: '2.0', id: 2, method: 'Slow.Bump', params: { tag: 'batch' } },
    ]);
    const body = reply.body as { id: number; error: { data: { details: { reason: string } } } }[];
    expect(body.map((r) => [r.id, r.error.data.details.reason])).toEqual([
      [1, 'idempotency_key_missing'],
      [2, 'idempotency_key_missing'],
    ]);
    expect(tagged.get('batch')).toBeUndefined();
  });
});

describe.each(transports)('retention and bounds over %s', (t) => {
  it('runs a key again once its retention (default 24 h) has passed', async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ clock });
    try {
      const key = fresh();
      const mk = () => send(server, t, 'Directories.MakeDirectory', { path: 'kept' }, key);
      expect((await mk()).ok).toBe(true);
      clock.advance(24 * 3_600_000 - 1);
      expect(await mk()).toMatchObject({ ok: true, replayed: true });
      clock.advance(1);
      expect(await mk()).toMatchObject({ ok: false, code: 'already_exists', replayed: false });
    } finally {
      await server.close();
    }
  });

  it('honours --idempotency-retention-ms', async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ clock, idempotencyRetentionMs: 1_000 });
    try {
      const key = fresh();
      const mk = () => send(server, t, 'Directories.MakeDirectory', { path: 'short' }, key);
      expect((await mk()).ok).toBe(true);
      clock.advance(999);
      expect((await mk()).replayed).toBe(true);
      clock.advance(1);
      expect((await mk()).code).toBe('already_exists');
    } finally {
      await server.close();
    }
  });

  // A record accounts the overhead + key ("anonymous\n" + 6 characters) + 16 (fingerprint) + the stored
  // body: "{}" over HTTP, the 36-character JSON-RPC response. Two fit, three do not.
  const bodyLength = t === 'http' ? 2 : 36;
  it.each([
    ['entries', { idempotencyMaxEntries: 2 }],
    ['bytes', { idempotencyMaxBytes: 2 * (recordOverheadBytes + 16 + 16 + bodyLength) + 10 }],
  ])('evicts the oldest completed record first at the %s bound', async (_bound, limits) => {
    const server = await startTestServer(limits);
    try {
      const mk = (name: string, key: string) =>
        send(server, t, 'Directories.MakeDirectory', { path: name }, key);
      for (const [name, key] of [
        ['a', 'key-01'],
        ['b', 'key-02'],
        ['c', 'key-03'],
      ] as const) {
        expect((await mk(name, key)).ok).toBe(true);
      }
      expect(await mk('c', 'key-03')).toMatchObject({ ok: true, replayed: true });
      expect(await mk('b', 'key-02')).toMatchObject({ ok: true, replayed: true });
      // key-01 was the oldest: evicted, so its retry runs again (and finds the directory made).
      expect(await mk('a', 'key-01')).toMatchObject({ ok: false, code: 'already_exists', replayed: false });
    } finally {
      await server.close();
    }
  });
});

describe.each(transports)('keys scoped by principal over %s', (t) => {
  let scoped: TestServer;
  beforeAll(async () => {
    scoped = await startTestServer({
      tokenTable: { tokA: { principal: 'alice' }, tokB: { principal: 'bob' } },
    });
  });
  afterAll(async () => {
    await scoped.close();
  });

  it('keeps one record per principal for the same key', async () => {
    const key = 'shared-key';
    const as = (token: string, path: string) =>
      send(scoped, t, 'Directories.MakeDirectory', { path }, key, { authorization: `Bearer ${token}` });
    expect(await as('tokA', 'alice-dir')).toMatchObject({ ok: true, replayed: false });
    expect(await as('tokB', 'bob-dir')).toMatchObject({ ok: true, replayed: false });
    expect(await as('tokA', 'alice-dir')).toMatchObject({ ok: true, replayed: true });
    expect((await stat(join(scoped.root, 'bob-dir'))).isDirectory()).toBe(true);
  });
});
