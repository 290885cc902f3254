/**
 * Fingerprints: the request tree in canonical order, told apart by value and
 * type; pinned values (a change would break replays across an upgrade); and a
 * record an older server logged with the first fingerprint still replaying.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../server/clock/clock.js';
import {
  canonicalJson,
  fingerprint,
  isLegacyFingerprint,
  legacyFingerprint,
  maxDepth,
} from '../../server/idempotency/fingerprint.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';
import { startTestServer } from '../helpers/server.js';

const fp = (request: unknown, method = 'Files.RemotePrint') => fingerprint('http', method, request);
const hex = (binary: string) => Buffer.from(binary, 'latin1').toString('hex');

describe('fingerprint', () => {
  it('is 16 latin1 characters, told apart from the 32 of the first fingerprint', () => {
    const value = fp({ handle: 'h', data: 'x' });
    expect(value).toHaveLength(16);
    expect([...value].every((c) => c.charCodeAt(0) < 256)).toBe(true);
    expect(isLegacyFingerprint(value)).toBe(false);
    expect(
      isLegacyFingerprint(legacyFingerprint('http', 'Files.RemotePrint', { handle: 'h', data: 'x' })),
    ).toBe(true);
  });

  it('refuses a request nested deeper than maxDepth with invalid_argument, and goes on working after', () => {
    const nest = (levels: number) => {
      let value: unknown = 'leaf';
      for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { v: value };
      return value;
    };
    expect(fp(nest(maxDepth))).toHaveLength(16);
    expect(() => fp(nest(maxDepth + 1))).toThrow(
      expect.objectContaining({ code: 'invalid_argument', reason: 'too_deep' }),
    );
    expect(() => fp(nest(20_000))).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(fp(nest(3))).toBe(fp(nest(3)));
  });

  it('does not depend on key order, on values JSON drops, or on the sign of zero', () => {
    const a = { handle: 'h_1', data: 'line\n', nested: { z: [1, { b: 2, a: 3 }], y: null } };
    const b = JSON.parse('{"nested":{"y":null,"z":[1,{"a":3,"b":2}]},"data":"line\\n","handle":"h_1"}');
    expect(fp(a)).toBe(fp(b));
    expect(fp({ ...a, gone: undefined, fn: () => 1 })).toBe(fp(a));
    expect(fp([undefined])).toBe(fp([null])); // as JSON writes an array
    expect(fp({ n: -0 })).toBe(fp({ n: 0 }));
  });

  it('tells apart every change of value, type, structure, method and transport', () => {
    const variants: unknown[] = [
      {},
      [],
      null,
      '',
      0,
      false,
      true,
      '0',
      'false',
      'null',
      1,
      1.5,
      2 ** 31,
      -1,
      '1',
      [1],
      ['1'],
      [[]],
      [{}],
      ['ab'],
      ['a', 'b'],
      { a: 'b' },
      { ab: '' },
      { a: { b: 1 } },
      { a: [], b: [] },
      { a: [[]] },
      'x'.repeat(63),
      'x'.repeat(64),
      `${'x'.repeat(63)}y`,
      'é',
      '\u00e9\u0000',
    ];
    const seen = new Map<string, unknown>();
    for (const v of variants) {
      const value = fp(v);
      expect(seen.get(value), `${JSON.stringify(v)} collides`).toBeUndefined();
      seen.set(value, v);
    }
    expect(fp({ a: 1 }, 'Files.RemoteRead')).not.toBe(fp({ a: 1 }));
    expect(fingerprint('jsonrpc', 'Files.RemotePrint', { a: 1 })).not.toBe(fp({ a: 1 }));
  });

  it('keeps its values (stored records are compared with them after a restart)', () => {
    expect(hex(fp({ handle: 'h_1', data: 'hello\n', seq: 3 }))).toBe('75234e7ad4760454d9f76250351be295');
    // Long enough for whole blocks, with characters beyond latin1.
    const long = {
      handle: 'h_Zx3kP9qLmN2vB7cR4tY8wA',
      data: `${'é'.repeat(33)}${'x'.repeat(200)}\n`,
      seq: 7,
    };
    expect(hex(fp(long))).toBe('e94e1a7e819a4f86edff7fa6c492f5b2');
    // The first fingerprint: SHA-256 of the canonical JSON, as logs written before the current one hold.
    expect(canonicalJson({ b: [1, { d: 'x', c: null }], a: true })).toBe(
      '{"a":true,"b":[1,{"c":null,"d":"x"}]}',
    );
    expect(
      hex(legacyFingerprint('http', 'Files.RemotePrint', { handle: 'h_1', data: 'hello\n', seq: 3 })),
    ).toBe('a5169fdb18c63eae141806d392bc0de28a1c15c4a8f4ab78d410164b964e9343');
  });

  it('hashes a request of megabytes like any other, and small ones the same after it', () => {
    // 1.5 million UTF-16 units: far more words than the reused array keeps between fingerprints.
    const big = { handle: 'h_1', data: 'ab'.repeat(750_000) };
    const first = fp(big);
    // The value the version before this one (which mixed blocks as they filled) gives.
    expect(hex(first)).toBe('e4a3c25d1129540727e17e6965f7b623');
    expect(fp({ handle: 'h_1', data: 'hello\n', seq: 3 })).toBe(
      fp({ seq: 3, data: 'hello\n', handle: 'h_1' }),
    );
    expect(hex(fp({ handle: 'h_1', data: 'hello\n', seq: 3 }))).toBe('75234e7ad4760454d9f76250351be295');
    expect(fp({ handle: 'h_1', data: 'ab'.repeat(750_000) })).toBe(first);
    expect(fp({ handle: 'h_1', data: `${'ab'.repeat(749_999)}ac` })).not.toBe(first);
    expect(fp({ handle: 'h_1', data: `${'ab'.repeat(750_000)}a` })).not.toBe(first);
  });
});

describe('a record logged with an earlier fingerprint (before an upgrade)', () => {
  const mkdirRequest = { path: 'old', parents: false };
  const rpc = (path: string) => ({
    jsonrpc: '2.0',
    id: 1,
    method: 'Directories.MakeDirectory',
    params: { path },
  });
  const cases = [
    {
      transport: 'http' as const,
      fingerprint: legacyFingerprint('http', 'Directories.MakeDirectory', mkdirRequest),
      body: '{}',
    },
    {
      transport: 'jsonrpc' as const,
      // The validated payload: params with their defaults.
      fingerprint: legacyFingerprint('jsonrpc', '', { ...rpc('old'), params: mkdirRequest }),
      body: '{"jsonrpc":"2.0","id":1,"result":{}}',
    },
    {
      // The second form of a JSON-RPC request's: the whole validated payload, before it covered
      // only what the server reads.
      transport: 'jsonrpc' as const,
      fingerprint: fingerprint('jsonrpc', '', { ...rpc('old'), params: mkdirRequest }),
      body: '{"jsonrpc":"2.0","id":1,"result":{}}',
    },
  ];

  it.each(cases)('replays for the same request and refuses another, over $transport', async (c) => {
    const dir = await mkdtemp(join(tmpdir(), 'leasegate-fingerprint-'));
    const root = join(dir, 'root');
    const stateDir = join(dir, 'state');
    await mkdir(root);
    await mkdir(stateDir);
    // What an older server logged: MakeDirectory {path: "old"} under key upgrade-1, answered.
    const { log } = RedoLog.open({ stateDir, root, fsync: 'never', clock: systemClock });
    log.idempotencyCompleted({
      scope: 'anonymous',
      key: 'upgrade-1',
      fingerprint: c.fingerprint,
      status: 200,
      body: c.body,
      leaseRemainingMs: undefined,
      completedAt: Date.now(),
    });
    log.flush();
    log.abandon(); // it stopped there (a crash: recovery reads the log)

    const server = await startTestServer({ root, stateDir });
    try {
      const headers = { 'idempotency-key': 'upgrade-1' };
      const send = (path: string) =>
        c.transport === 'http'
          ? server.post('Directories.MakeDirectory', { path }, headers)
          : server.jsonrpc(rpc(path), headers);
      const replay = await send('old');
      expect(replay.status).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.text).toBe(c.body);
      // Replayed, not run: the older server's answer is all there is.
      await expect(stat(join(server.root, 'old'))).rejects.toMatchObject({ code: 'ENOENT' });
      const other = await send('other');
      // HTTP says 422; JSON-RPC answers 200 with the error in its envelope.
      expect(other.status).toBe(c.transport === 'http' ? 422 : 200);
      expect(other.text).toContain('idempotency_key_reused');
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
