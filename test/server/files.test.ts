/**
 * The Files service over both transports: RemoteOpen's modes and flags,
 * RemotePrint in utf8 and base64, RemoteRead's offsets, lengths and encodings,
 * RemoteClose, and the leases handles live under.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe.each(transports)('Files over %s', (t) => {
  const dir = `files-${t}`;
  const at = (name: string) => join(s.root, dir, name);
  const p = (name: string) => `${dir}/${name}`;
  let n = 0;
  /** A fresh file name with the given content on disk (or none when content is undefined). */
  const fresh = async (content?: string | Buffer) => {
    const name = `f${++n}`;
    if (content !== undefined) await writeFile(at(name), content);
    return name;
  };
  const open = async (params: Record<string, unknown>) =>
    (await s.ok(t, 'Files.RemoteOpen', params)).handle as string;
  const print = (handle: string, data: string, encoding?: string) =>
    s.ok(t, 'Files.RemotePrint', { handle, data, ...(encoding ? { encoding } : {}) });

  beforeAll(async () => {
    await mkdir(join(s.root, dir), { recursive: true });
  });

  describe('RemoteOpen', () => {
    // [mode flags, file exists before?, data printed, content after | error [code, reason, field]]
    const table: [
      string,
      Record<string, unknown>,
      string | undefined,
      string,
      string | [string, string?, string?],
    ][] = [
      ['read of an existing file', { mode: 'read' }, 'abcdef', '', 'abcdef'],
      ['read of a missing file', { mode: 'read' }, undefined, '', ['not_found', 'no_such_file']],
      [
        'read with create',
        { mode: 'read', create: true },
        'x',
        '',
        ['invalid_argument', 'create_needs_write', 'create'],
      ],
      [
        'write of a missing file without create',
        { mode: 'write' },
        undefined,
        '',
        ['not_found', 'no_such_file'],
      ],
      ['write with create of a missing file', { mode: 'write', create: true }, undefined, 'XY', 'XY'],
      [
        'write of an existing file (overwrites from 0, keeps the tail)',
        { mode: 'write' },
        'abcdef',
        'XY',
        'XYcdef',
      ],
      ['write with truncate of an existing file', { mode: 'write', truncate: true }, 'abcdef', 'XY', 'XY'],
      [
        'write with create and truncate of an existing file',
        { mode: 'write', create: true, truncate: true },
        'abcdef',
        'Z',
        'Z',
      ],
      [
        'write with create and exclusive of a missing file',
        { mode: 'write', create: true, exclusive: true },
        undefined,
        'new',
        'new',
      ],
      [
        'write with create and exclusive of an existing file',
        { mode: 'write', create: true, exclusive: true },
        'old',
        '',
        ['already_exists', 'file_exists'],
      ],
      [
        'exclusive without create',
        { mode: 'write', exclusive: true },
        undefined,
        '',
        ['invalid_argument', 'exclusive_needs_create', 'exclusive'],
      ],
      ['append to an existing file', { mode: 'append' }, 'abc', 'def', 'abcdef'],
      ['append with create of a missing file', { mode: 'append', create: true }, undefined, 'log', 'log'],
      [
        'append of a missing file without create',
        { mode: 'append' },
        undefined,
        '',
        ['not_found', 'no_such_file'],
      ],
      [
        'append with truncate',
        { mode: 'append', truncate: true },
        'abc',
        '',
        ['invalid_argument', 'truncate_needs_write', 'truncate'],
      ],
      [
        'read with truncate',
        { mode: 'read', truncate: true },
        'abc',
        '',
        ['invalid_argument', 'truncate_needs_write', 'truncate'],
      ],
      ['an unknown mode', { mode: 'rw' }, 'abc', '', ['invalid_argument', 'invalid_field', 'mode']],
      ['no mode', {}, 'abc', '', ['invalid_argument', 'missing_field', 'mode']],
    ];

    it.each(table)('%s', async (_name, flags, before, data, expected) => {
      const name = await fresh(before);
      const r = await s.call(t, 'Files.RemoteOpen', { path: p(name), ...flags });
      if (Array.isArray(expected)) {
        expect([r.code, r.reason, r.field]).toEqual([expected[0], expected[1], expected[2] ?? r.field]);
        if (before === undefined) await expect(stat(at(name))).rejects.toThrow(/ENOENT/);
        else expect(await readFile(at(name), 'utf8')).toBe(before);
        return;
      }
      expect(r.ok).toBe(true);
      const handle = r.result.handle as string;
      if (data !== '') await print(handle, data);
      await s.ok(t, 'Files.RemoteClose', { handle });
      expect(await readFile(at(name), 'utf8')).toBe(expected);
    });

    it('refuses a folder and the root with is_a_directory', async () => {
      await mkdir(at('folder'), { recursive: true });
      for (const path of [p('folder'), '/']) {
        const r = await s.call(t, 'Files.RemoteOpen', { path, mode: 'read' });
        expect([r.code, r.reason]).toEqual(['failed_precondition', 'is_a_directory']);
      }
      const w = await s.call(t, 'Files.RemoteOpen', { path: p('folder'), mode: 'write', create: true });
      expect([w.code, w.reason]).toEqual(['failed_precondition', 'is_a_directory']);
    });

    it('answers not_a_directory when a file sits in the middle of the path', async () => {
      const name = await fresh('x');
      const r = await s.call(t, 'Files.RemoteOpen', {
        path: p(`${name}/inner`),
        mode: 'write',
        create: true,
      });
      expect([r.code, r.reason]).toEqual(['failed_precondition', 'not_a_directory']);
    });

    it('clamps leaseTtlMs to the server limits and defaults it to 30 s', async () => {
      const name = await fresh('');
      const ttl = async (extra: object) =>
        (
          (await s.ok(t, 'Files.RemoteOpen', { path: p(name), mode: 'read', ...extra })).lease as {
            ttlMs: number;
          }
        ).ttlMs;
      expect(await ttl({})).toBe(30_000);
      expect(await ttl({ leaseTtlMs: 5 })).toBe(1_000);
      expect(await ttl({ leaseTtlMs: 10_000_000 })).toBe(600_000);
      expect(await ttl({ leaseTtlMs: 4_321 })).toBe(4_321);
    });

    it('answers not_found naming leaseId for a lease that does not exist', async () => {
      const name = await fresh('');
      const r = await s.call(t, 'Files.RemoteOpen', { path: p(name), mode: 'read', leaseId: 'l_nope' });
      expect([r.code, r.reason, r.field]).toEqual(['not_found', 'lease_not_found', 'leaseId']);
    });

    it('gives unguessable handle and lease ids', async () => {
      const name = await fresh('');
      const r = await s.ok(t, 'Files.RemoteOpen', { path: p(name), mode: 'read' });
      const handle = r.handle as string;
      const leaseId = (r.lease as { leaseId: string }).leaseId;
      // At least 122 random bits: 21+ base64url characters after the prefix.
      expect(handle).toMatch(/^h_[\w-]{21,}$/);
      expect(leaseId).toMatch(/^l_[\w-]{21,}$/);
    });
  });

  describe('RemoteOpen of a FIFO', () => {
    // A FIFO (made on the server's disk; the API cannot make one) opened for reading or writing
    // blocked open(2) on a threadpool thread until a writer or reader came: a few wedged every
    // other file call. Each is refused at once, and the server goes on answering.
    it.each([['read'], ['write'], ['append']])('refuses mode %s with not_a_regular_file', async (mode) => {
      const name = await fresh();
      execFileSync('mkfifo', [at(name)]);
      const tries = await Promise.all(
        [1, 2, 3, 4, 5].map(() =>
          s.call(t, 'Files.RemoteOpen', { path: p(name), mode }, { 'rpc-timeout-ms': '2000' }),
        ),
      );
      for (const r of tries)
        expect([r.code, r.reason, r.field]).toEqual(['failed_precondition', 'not_a_regular_file', 'path']);
      expect(await s.ok(t, 'Directories.Stat', { path: p(name) })).toBeDefined();
    });
  });

  describe('RemotePrint', () => {
    it('writes utf8 text and counts bytes, not characters', async () => {
      const name = await fresh();
      const handle = await open({ path: p(name), mode: 'write', create: true });
      expect(await print(handle, 'héllo ✓\n')).toEqual({ bytesWritten: 11, offset: 0, seq: 1 });
      expect(await print(handle, 'more', 'utf8')).toEqual({ bytesWritten: 4, offset: 11, seq: 2 });
      await s.ok(t, 'Files.RemoteClose', { handle });
      expect(await readFile(at(name), 'utf8')).toBe('héllo ✓\nmore');
    });

    it('writes base64 data as raw bytes', async () => {
      const name = await fresh();
      const handle = await open({ path: p(name), mode: 'write', create: true });
      const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
      expect(await print(handle, bytes.toString('base64'), 'base64')).toMatchObject({
        bytesWritten: 5,
        offset: 0,
      });
      await s.ok(t, 'Files.RemoteClose', { handle });
      expect(await readFile(at(name))).toEqual(bytes);
    });

    it.each(['not base64!', 'A', 'QUJD=', '====', 'YQ==YQ=='])(
      'refuses malformed base64 %j with invalid_argument naming data, writing nothing',
      async (data) => {
        const name = await fresh();
        const handle = await open({ path: p(name), mode: 'write', create: true });
        const r = await s.call(t, 'Files.RemotePrint', { handle, data, encoding: 'base64' });
        expect([r.code, r.reason, r.field]).toEqual(['invalid_argument', 'invalid_base64', 'data']);
        expect((await stat(at(name))).size).toBe(0);
      },
    );

    it('refuses an unknown encoding, naming the field', async () => {
      const name = await fresh();
      const handle = await open({ path: p(name), mode: 'write', create: true });
      const r = await s.call(t, 'Files.RemotePrint', { handle, data: 'x', encoding: 'hex' });
      expect([r.code, r.field]).toEqual(['invalid_argument', 'encoding']);
    });

    it('appends at the end even when the file grew behind the handle', async () => {
      const name = await fresh('start\n');
      const handle = await open({ path: p(name), mode: 'append' });
      await writeFile(at(name), 'start\nsomeone else\n');
      expect(await print(handle, 'mine\n')).toMatchObject({ offset: 19 });
      expect(await readFile(at(name), 'utf8')).toBe('start\nsomeone else\nmine\n');
    });

    it('refuses a read handle with handle_not_writable', async () => {
      const name = await fresh('x');
      const handle = await open({ path: p(name), mode: 'read' });
      const r = await s.call(t, 'Files.RemotePrint', { handle, data: 'y' });
      expect([r.code, r.reason, r.field]).toEqual(['failed_precondition', 'handle_not_writable', 'handle']);
    });

    it('refuses a print with a sequence gap', async () => {
      const name = await fresh();
      const handle = await open({ path: p(name), mode: 'write', create: true });
      const r = await s.call(t, 'Files.RemotePrint', { handle, data: 'y', seq: 3 });
      expect([r.code, r.reason]).toEqual(['failed_precondition', 'sequence_gap']);
      expect(await s.ok(t, 'Files.RemotePrint', { handle, data: 'y', seq: 1 })).toMatchObject({ seq: 1 });
    });
  });

  describe('RemoteRead', () => {
    it('reads on from the handle position when no offset is given, then reports eof', async () => {
      const name = await fresh('0123456789');
      const handle = await open({ path: p(name), mode: 'read' });
      const read = (extra: object = {}) => s.ok(t, 'Files.RemoteRead', { handle, length: 4, ...extra });
      expect(await read()).toEqual({ data: '0123', encoding: 'utf8', offset: 0, eof: false });
      expect(await read()).toEqual({ data: '4567', encoding: 'utf8', offset: 4, eof: false });
      // An explicit offset reads there and leaves the position alone.
      expect(await read({ offset: 1 })).toEqual({ data: '1234', encoding: 'utf8', offset: 1, eof: false });
      expect(await read()).toEqual({ data: '89', encoding: 'utf8', offset: 8, eof: true });
      expect(await read()).toEqual({ data: '', encoding: 'utf8', offset: 10, eof: true });
      expect(await read({ offset: 1_000 })).toEqual({ data: '', encoding: 'utf8', offset: 1_000, eof: true });
    });

    it('reads 64 KiB when no length is given', async () => {
      const name = await fresh(Buffer.alloc(70_000, 'a'));
      const handle = await open({ path: p(name), mode: 'read' });
      const r = await s.ok(t, 'Files.RemoteRead', { handle });
      expect((r.data as string).length).toBe(65_536);
      expect(r.eof).toBe(false);
    });

    it('returns binary data in base64 when asked', async () => {
      const bytes = Buffer.from([0xff, 0x00, 0x80, 0x41]);
      const name = await fresh(bytes);
      const handle = await open({ path: p(name), mode: 'read' });
      const r = await s.ok(t, 'Files.RemoteRead', { handle, encoding: 'base64' });
      expect(r).toEqual({ data: bytes.toString('base64'), encoding: 'base64', offset: 0, eof: true });
    });

    it.each([
      [{ length: 0 }, 'length'],
      [{ length: 1_048_577 }, 'length'],
      [{ offset: -1 }, 'offset'],
      [{ offset: 2 ** 53 }, 'offset'], // beyond what a file position can be (a 500 from fs before)
      [{ offset: 1e300 }, 'offset'],
      [{ encoding: 'latin1' }, 'encoding'],
    ])('refuses %j naming %s', async (extra, field) => {
      const name = await fresh('x');
      const handle = await open({ path: p(name), mode: 'read' });
      const r = await s.call(t, 'Files.RemoteRead', { handle, ...extra });
      expect([r.code, r.field]).toEqual(['invalid_argument', field]);
    });

    it('refuses a write handle with handle_not_readable', async () => {
      const name = await fresh();
      const handle = await open({ path: p(name), mode: 'write', create: true });
      const r = await s.call(t, 'Files.RemoteRead', { handle });
      expect([r.code, r.reason]).toEqual(['failed_precondition', 'handle_not_readable']);
    });
  });

  describe('RemoteClose', () => {
    it('closes a handle: later calls with it answer not_found naming handle', async () => {
      const name = await fresh('x');
      const handle = await open({ path: p(name), mode: 'read' });
      await s.ok(t, 'Files.RemoteClose', { handle });
      for (const method of ['Files.RemoteRead', 'Files.RemoteClose', 'Files.RemotePrint']) {
        const r = await s.call(t, method, { handle, data: 'x' });
        expect([r.code, r.reason, r.field]).toEqual(['not_found', 'handle_not_found', 'handle']);
      }
    });

    it('ends the lease RemoteOpen made for the handle, but not a shared one', async () => {
      const name = await fresh('x');
      const solo = await s.ok(t, 'Files.RemoteOpen', { path: p(name), mode: 'read' });
      await s.ok(t, 'Files.RemoteClose', { handle: solo.handle });
      const soloLease = (solo.lease as { leaseId: string }).leaseId;
      expect((await s.call(t, 'Leases.TimeToLive', { leaseId: soloLease })).ok).toBe(false);

      const { lease } = (await s.ok(t, 'Leases.Grant', {})) as { lease: { leaseId: string } };
      const shared = await open({ path: p(name), mode: 'read', leaseId: lease.leaseId });
      await s.ok(t, 'Files.RemoteClose', { handle: shared });
      expect(await s.ok(t, 'Leases.TimeToLive', { leaseId: lease.leaseId })).toMatchObject({ handles: [] });
    });

    it('answers not_found for a handle that never existed', async () => {
      const r = await s.call(t, 'Files.RemoteClose', { handle: 'h_never' });
      expect([r.code, r.field]).toEqual(['not_found', 'handle']);
    });
  });
});

describe('lease expiry', () => {
  let short: TestServer;
  beforeAll(async () => {
    short = await startTestServer({ leaseMinTtlMs: 50 });
  });
  afterAll(async () => {
    expect(short.leaks()).toEqual([]);
    await short.close();
  });

  it.each(transports)('closes the handles of an expired lease: calls get lease_expired (%s)', async (t) => {
    await writeFile(join(short.root, `exp-${t}`), 'x');
    const r = await short.ok(t, 'Files.RemoteOpen', { path: `exp-${t}`, mode: 'read', leaseTtlMs: 50 });
    const leaseId = (r.lease as { leaseId: string }).leaseId;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const read = await short.call(t, 'Files.RemoteRead', { handle: r.handle });
    expect([read.code, read.reason, read.field]).toEqual(['failed_precondition', 'lease_expired', 'handle']);
    const keep = await short.call(t, 'Leases.KeepAlive', { leaseId });
    expect([keep.code, keep.reason, keep.field]).toEqual(['failed_precondition', 'lease_expired', 'leaseId']);
    expect(short.app.leasegate.handles.size).toBe(0);
  });

  it('keeps a lease alive with KeepAlive and with every call on its handles', async () => {
    await writeFile(join(short.root, 'kept'), 'abcdefghij');
    const { lease } = (await short.ok('http', 'Leases.Grant', { ttlMs: 1_000 })) as {
      lease: { leaseId: string };
    };
    const handle = (
      await short.ok('http', 'Files.RemoteOpen', { path: 'kept', mode: 'read', leaseId: lease.leaseId })
    ).handle;
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (i % 2 === 0) await short.ok('jsonrpc', 'Leases.KeepAlive', { leaseId: lease.leaseId });
      else await short.ok('http', 'Files.RemoteRead', { handle, length: 1 });
    }
    expect(await short.ok('http', 'Leases.TimeToLive', { leaseId: lease.leaseId })).toMatchObject({
      handles: [handle],
    });
  });
});
