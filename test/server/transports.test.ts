/**
 * Every method of every service answers over both transports (per-method HTTP
 * and JSON-RPC) with the shapes of the contract, against a real server.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../generated/index.js';
import { startTestServer, type TestServer, type Transport, transports } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

const isoDate = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** One method's happy path: set the stage in the root, call, check the answer and the disk. */
interface MethodCase {
  method: string;
  prepare: (t: Transport, dir: string) => Promise<unknown>;
  check: (result: Record<string, unknown>, dir: string, t: Transport) => Promise<void> | void;
}

const openWrite = async (t: Transport, path: string) =>
  (await s.ok(t, 'Files.RemoteOpen', { path, mode: 'write', create: true })) as {
    handle: string;
    lease: { leaseId: string };
  };

const cases: MethodCase[] = [
  {
    method: 'Directories.MakeDirectory',
    prepare: async (_t, dir) => ({ path: `${dir}/made/deep`, parents: true }),
    check: async (result, dir) => {
      expect(result).toEqual({});
      expect((await stat(join(s.root, dir, 'made/deep'))).isDirectory()).toBe(true);
    },
  },
  {
    method: 'Directories.ListDirectory',
    prepare: async (_t, dir) => {
      await mkdir(join(s.root, dir, 'sub'), { recursive: true });
      await writeFile(join(s.root, dir, 'a.txt'), 'hello');
      return { path: dir };
    },
    check: (result) => {
      expect(result.nextPageToken).toBeUndefined();
      expect(result.entries).toEqual([
        { name: 'a.txt', isDirectory: false, size: 5, modifiedAt: expect.stringMatching(isoDate) },
        { name: 'sub', isDirectory: true, size: 0, modifiedAt: expect.stringMatching(isoDate) },
      ]);
    },
  },
  {
    method: 'Directories.Stat',
    prepare: async (_t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      await writeFile(join(s.root, dir, 'f'), '12345678');
      return { path: `${dir}/f` };
    },
    check: (result) =>
      expect(result).toEqual({ isDirectory: false, size: 8, modifiedAt: expect.stringMatching(isoDate) }),
  },
  {
    method: 'Directories.Remove',
    prepare: async (_t, dir) => {
      await mkdir(join(s.root, dir, 'x/y'), { recursive: true });
      return { path: `${dir}/x`, recursive: true };
    },
    check: async (result, dir) => {
      expect(result).toEqual({});
      await expect(stat(join(s.root, dir, 'x'))).rejects.toThrow(/ENOENT/);
    },
  },
  {
    method: 'Files.RemoteOpen',
    prepare: async (_t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      return { path: `${dir}/new.txt`, mode: 'write', create: true };
    },
    check: async (result, dir) => {
      expect(result).toEqual({
        handle: expect.any(String),
        lease: { leaseId: expect.any(String), ttlMs: 30_000, expiresAt: expect.stringMatching(isoDate) },
      });
      expect((await stat(join(s.root, dir, 'new.txt'))).size).toBe(0);
    },
  },
  {
    method: 'Files.RemotePrint',
    prepare: async (t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      const { handle } = await openWrite(t, `${dir}/p.txt`);
      await s.ok(t, 'Files.RemotePrint', { handle, data: 'hello ' });
      return { handle, data: 'world\n' };
    },
    check: async (result, dir) => {
      expect(result).toEqual({ bytesWritten: 6, offset: 6, seq: 2 });
      expect(await readFile(join(s.root, dir, 'p.txt'), 'utf8')).toBe('hello world\n');
    },
  },
  {
    method: 'Files.RemoteRead',
    prepare: async (t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      await writeFile(join(s.root, dir, 'r.txt'), 'line one\nline two\n');
      const { handle } = (await s.ok(t, 'Files.RemoteOpen', { path: `${dir}/r.txt`, mode: 'read' })) as {
        handle: string;
      };
      return { handle, offset: 5, length: 3 };
    },
    check: (result) => expect(result).toEqual({ data: 'one', encoding: 'utf8', offset: 5, eof: false }),
  },
  {
    method: 'Files.RemoteClose',
    prepare: async (t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      const { handle } = await openWrite(t, `${dir}/c.txt`);
      return { handle };
    },
    check: (result) => expect(result).toEqual({}),
  },
  {
    method: 'Leases.Grant',
    prepare: async () => ({ ttlMs: 5_000 }),
    check: (result) =>
      expect(result).toEqual({
        lease: {
          leaseId: expect.stringMatching(/^[\w-]{20,}$/),
          ttlMs: 5_000,
          expiresAt: expect.stringMatching(isoDate),
        },
      }),
  },
  {
    method: 'Leases.KeepAlive',
    prepare: async (t) => {
      const { lease } = (await s.ok(t, 'Leases.Grant', { ttlMs: 5_000 })) as { lease: { leaseId: string } };
      return { leaseId: lease.leaseId };
    },
    check: (result) =>
      expect(result.lease).toMatchObject({ ttlMs: 5_000, expiresAt: expect.stringMatching(isoDate) }),
  },
  {
    method: 'Leases.TimeToLive',
    prepare: async (t, dir) => {
      await mkdir(join(s.root, dir), { recursive: true });
      const { lease } = (await s.ok(t, 'Leases.Grant', { ttlMs: 60_000 })) as { lease: { leaseId: string } };
      await s.ok(t, 'Files.RemoteOpen', {
        path: `${dir}/t.txt`,
        mode: 'write',
        create: true,
        leaseId: lease.leaseId,
      });
      return { leaseId: lease.leaseId };
    },
    check: (result) => {
      expect(result.lease).toMatchObject({ ttlMs: 60_000 });
      expect(result.remainingMs).toBeGreaterThan(50_000);
      expect(result.remainingMs).toBeLessThanOrEqual(60_000);
      expect(result.handles).toEqual([expect.any(String)]);
    },
  },
  {
    method: 'Leases.Revoke',
    prepare: async (t) => {
      const { lease } = (await s.ok(t, 'Leases.Grant', {})) as { lease: { leaseId: string } };
      return { leaseId: lease.leaseId };
    },
    check: (result) => expect(result).toEqual({}),
  },
];

describe('every method of every service', () => {
  it('is covered by this table', () => {
    const all = Object.values(services).flatMap((svc) =>
      Object.keys(svc.methods).map((m) => `${svc.name}.${m}`),
    );
    expect(cases.map((c) => c.method).sort()).toEqual(all.sort());
  });

  let n = 0;
  for (const t of transports) {
    it.each(cases.map((c) => [c.method, c] as const))(`%s answers over ${t}`, async (_name, c) => {
      const dir = `case-${t}-${++n}`;
      const params = await c.prepare(t, dir);
      const result = await s.ok(t, c.method, params);
      await c.check(result, dir, t);
    });
  }
});

describe.each(transports)('the seed flow over %s', (t) => {
  it('makes a folder, lists it, opens, prints, reads back and closes', async () => {
    const dir = `seed-${t}`;
    await s.ok(t, 'Directories.MakeDirectory', { path: dir });
    expect(await s.ok(t, 'Directories.ListDirectory', { path: dir })).toEqual({ entries: [] });
    const { handle } = await openWrite(t, `${dir}/notes.txt`);
    expect(await s.ok(t, 'Files.RemotePrint', { handle, data: 'first line\n' })).toEqual({
      bytesWritten: 11,
      offset: 0,
      seq: 1,
    });
    expect(await s.ok(t, 'Files.RemoteClose', { handle })).toEqual({});
    const read = (await s.ok(t, 'Files.RemoteOpen', { path: `${dir}/notes.txt`, mode: 'read' })) as {
      handle: string;
    };
    expect(await s.ok(t, 'Files.RemoteRead', { handle: read.handle })).toEqual({
      data: 'first line\n',
      encoding: 'utf8',
      offset: 0,
      eof: true,
    });
    await s.ok(t, 'Files.RemoteClose', { handle: read.handle });
    const listing = (await s.ok(t, 'Directories.ListDirectory', { path: dir })) as { entries: unknown[] };
    expect(listing.entries).toEqual([
      { name: 'notes.txt', isDirectory: false, size: 11, modifiedAt: expect.any(String) },
    ]);
  });

  it('reports Lease-Remaining-Ms on calls that touch a lease', async () => {
    await mkdir(join(s.root, `lrm-${t}`), { recursive: true });
    const opened = await s.call(t, 'Files.RemoteOpen', {
      path: `lrm-${t}/f`,
      mode: 'write',
      create: true,
      leaseTtlMs: 7_000,
    });
    expect(opened.headers['lease-remaining-ms']).toBe('7000');
    const printed = await s.call(t, 'Files.RemotePrint', { handle: opened.result.handle, data: 'x' });
    expect(Number(printed.headers['lease-remaining-ms'])).toBeGreaterThan(6_000);
    const plain = await s.call(t, 'Directories.Stat', { path: '/' });
    expect(plain.headers['lease-remaining-ms']).toBeUndefined();
  });

  it('closes every handle of a revoked lease', async () => {
    await mkdir(join(s.root, `rev-${t}`), { recursive: true });
    const { lease } = (await s.ok(t, 'Leases.Grant', {})) as { lease: { leaseId: string } };
    const handles: string[] = [];
    for (const name of ['a', 'b']) {
      const r = (await s.ok(t, 'Files.RemoteOpen', {
        path: `rev-${t}/${name}`,
        mode: 'write',
        create: true,
        leaseId: lease.leaseId,
      })) as {
        handle: string;
        lease: { leaseId: string };
      };
      expect(r.lease.leaseId).toBe(lease.leaseId);
      handles.push(r.handle);
    }
    const ttl = (await s.ok(t, 'Leases.TimeToLive', { leaseId: lease.leaseId })) as { handles: string[] };
    expect(ttl.handles.sort()).toEqual([...handles].sort());
    await s.ok(t, 'Leases.Revoke', { leaseId: lease.leaseId });
    for (const handle of handles) {
      const r = await s.call(t, 'Files.RemotePrint', { handle, data: 'late' });
      expect([r.code, r.reason, r.field]).toEqual(['failed_precondition', 'lease_revoked', 'handle']);
    }
    const again = await s.call(t, 'Leases.KeepAlive', { leaseId: lease.leaseId });
    expect([again.code, again.reason]).toEqual(['failed_precondition', 'lease_revoked']);
  });
});
