/**
 * Handles are not descriptors: a real server with `maxDescriptors: 4` serves
 * 50 handles, reopening on demand with exact semantics (append stays append,
 * a write handle keeps its offset, a read handle its position, a reopen never
 * creates or truncates and never reaches another file), while /proc shows at
 * most 4 descriptors under the root.
 */
import {
  appendFile,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { descriptorsUnder } from '../../bench/proc-stats.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const maxDescriptors = 4;
let s: TestServer;
let outside: string;

beforeAll(async () => {
  s = await startTestServer({ maxDescriptors });
  outside = await mkdtemp(join(tmpdir(), 'leasegate-outside-'));
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
  await rm(outside, { recursive: true, force: true });
});

const descriptors = () => descriptorsUnder(s.root);
const pool = () => s.app.leasegate.handles.pool;

async function open(params: Record<string, unknown>): Promise<string> {
  return (await s.ok('http', 'Files.RemoteOpen', { leaseTtlMs: 600_000, ...params })).handle as string;
}
const print = (handle: string, data: string) => s.ok('http', 'Files.RemotePrint', { handle, data });
const read = async (handle: string, params: Record<string, unknown> = {}) =>
  (await s.ok('http', 'Files.RemoteRead', { handle, ...params })).data as string;

/** Makes `maxDescriptors` other handles the most recently used, so every earlier descriptor is parked. */
let fillers: string[] = [];
async function parkOthers(): Promise<void> {
  if (fillers.length === 0) {
    await writeFile(join(s.root, 'filler'), 'f');
    fillers = await Promise.all(
      Array.from({ length: maxDescriptors }, () => open({ path: 'filler', mode: 'read' })),
    );
  }
  for (const handle of fillers) await read(handle, { offset: 0, length: 1 });
  expect(descriptors()).toBeLessThanOrEqual(maxDescriptors);
}

/** Runs `call`, which must reopen exactly one parked descriptor (the handle's own). */
async function reopening<T>(call: () => Promise<T>): Promise<T> {
  const before = pool().reopens;
  const out = await call();
  expect(pool().reopens - before).toBe(1);
  return out;
}

describe('a pool of 4 descriptors under 50 handles', () => {
  it('lands interleaved writes through all of them exactly, with at most 4 descriptors open', async () => {
    await mkdir(join(s.root, 'many'));
    const appenders = await Promise.all(
      Array.from({ length: 20 }, (_, i) => open({ path: `many/a${i}`, mode: 'append', create: true })),
    );
    const writers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => open({ path: `many/w${i}`, mode: 'write', create: true })),
    );
    // Ten append handles share one file: each print lands at the end, whoever wrote last.
    const sharing = await Promise.all(
      Array.from({ length: 10 }, () => open({ path: 'many/shared', mode: 'append', create: true })),
    );
    const all = [...appenders, ...writers, ...sharing];
    const reopensBefore = pool().reopens;
    let shared = '';
    for (let round = 0; round < 8; round++) {
      // A different order each round, so that every handle's descriptor is evicted and reopened.
      const step = [7, 9, 11, 13, 17, 19, 21, 23][round] as number; // coprime with 50: a permutation
      const order = all.map((_, i) => (i * step) % all.length);
      for (const i of order) {
        const handle = all[i] as string;
        const data = `r${round}h${i};`;
        const { offset } = (await print(handle, data)) as { offset: number };
        if (i >= 40) {
          expect(offset).toBe(Buffer.byteLength(shared));
          shared += data;
        }
        expect(descriptors()).toBeLessThanOrEqual(maxDescriptors);
      }
    }
    for (let i = 0; i < 20; i++) {
      const expected = Array.from({ length: 8 }, (_, round) => `r${round}h${i};`).join('');
      expect(await readFile(join(s.root, `many/a${i}`), 'utf8')).toBe(expected);
      const written = Array.from({ length: 8 }, (_, round) => `r${round}h${i + 20};`).join('');
      expect(await readFile(join(s.root, `many/w${i}`), 'utf8')).toBe(written);
    }
    expect(await readFile(join(s.root, 'many/shared'), 'utf8')).toBe(shared);
    expect(s.app.leasegate.handles.size).toBeGreaterThanOrEqual(50);
    expect(pool().size).toBeLessThanOrEqual(maxDescriptors);
    expect(pool().reopens - reopensBefore).toBeGreaterThan(300);
  });

  it('keeps append an append: a print after a reopen lands after what others appended meanwhile', async () => {
    const handle = await open({ path: 'app.txt', mode: 'append', create: true });
    await print(handle, 'a');
    await parkOthers();
    await appendFile(join(s.root, 'app.txt'), 'EXT');
    expect(await reopening(() => print(handle, 'b'))).toMatchObject({ offset: 4 });
    expect(await readFile(join(s.root, 'app.txt'), 'utf8')).toBe('aEXTb');
  });

  it('keeps a write handle at its own offset, and a reopen neither truncates nor fails on exclusive', async () => {
    await writeFile(join(s.root, 'w.txt'), 'old content that is long');
    const handle = await open({ path: 'w.txt', mode: 'write', truncate: true });
    await print(handle, 'hello');
    await parkOthers();
    await appendFile(join(s.root, 'w.txt'), '-ZZZZZZZZ');
    expect(await reopening(() => print(handle, ' world'))).toMatchObject({ offset: 5 });
    expect(await readFile(join(s.root, 'w.txt'), 'utf8')).toBe('hello worldZZZ');

    const fresh = await open({ path: 'x.txt', mode: 'write', create: true, exclusive: true });
    await print(fresh, 'one');
    await parkOthers();
    await reopening(() => print(fresh, 'two'));
    expect(await readFile(join(s.root, 'x.txt'), 'utf8')).toBe('onetwo');
  });

  it('keeps a read handle’s position across reopens; reads at an offset do not move it', async () => {
    await writeFile(join(s.root, 'r.txt'), '0123456789');
    const handle = await open({ path: 'r.txt', mode: 'read' });
    expect(await read(handle, { length: 3 })).toBe('012');
    await parkOthers();
    expect(await reopening(() => read(handle, { length: 3 }))).toBe('345');
    await parkOthers();
    expect(await reopening(() => read(handle, { offset: 8, length: 5 }))).toBe('89');
    await parkOthers();
    expect(await reopening(() => read(handle, { length: 3 }))).toBe('678');
  });
});

describe('a file that changes under a parked handle', () => {
  const filePrint = async (handle: string) => {
    const r = await s.call('http', 'Files.RemotePrint', { handle, data: 'after' });
    return [r.code, r.reason, r.field];
  };
  const fileRemoved = ['failed_precondition', 'file_removed', 'handle'];

  it('answers file_removed when the file was removed, and the handle still closes cleanly', async () => {
    const handle = await open({ path: 'gone.txt', mode: 'append', create: true });
    await print(handle, 'before');
    await parkOthers();
    await unlink(join(s.root, 'gone.txt'));
    expect(await filePrint(handle)).toEqual(fileRemoved);
    await s.ok('http', 'Files.RemoteClose', { handle });
    expect(descriptors()).toBeLessThanOrEqual(maxDescriptors);
  });

  it('never writes into a new file created at the same path', async () => {
    const handle = await open({ path: 'replaced.txt', mode: 'write', create: true });
    await print(handle, 'before');
    await parkOthers();
    await unlink(join(s.root, 'replaced.txt'));
    await writeFile(join(s.root, 'replaced.txt'), 'new file');
    expect(await filePrint(handle)).toEqual(fileRemoved);
    expect(await readFile(join(s.root, 'replaced.txt'), 'utf8')).toBe('new file');
  });

  it('does not follow a rename: the renamed file is left alone', async () => {
    const handle = await open({ path: 'moved.txt', mode: 'append', create: true });
    await print(handle, 'before');
    await parkOthers();
    await rename(join(s.root, 'moved.txt'), join(s.root, 'moved-away.txt'));
    expect(await filePrint(handle)).toEqual(fileRemoved);
    expect(await readFile(join(s.root, 'moved-away.txt'), 'utf8')).toBe('before');
  });

  it('never reaches outside the root when a parent folder is swapped for a link', async () => {
    await mkdir(join(s.root, 'sub'));
    const handle = await open({ path: 'sub/secret.txt', mode: 'append', create: true });
    await print(handle, 'inside');
    await parkOthers();
    await writeFile(join(outside, 'secret.txt'), 'outside');
    await rename(join(s.root, 'sub'), join(s.root, 'sub-old'));
    await symlink(outside, join(s.root, 'sub'));
    expect(await filePrint(handle)).toEqual(fileRemoved);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('outside');
  });

  it('while the handle still holds its descriptor, prints reach the removed file (as with any open file)', async () => {
    const handle = await open({ path: 'unlinked.txt', mode: 'append', create: true });
    await unlink(join(s.root, 'unlinked.txt'));
    // Just opened, so it is the most recently used: its descriptor is held and writes go to the unlinked inode.
    expect(await print(handle, 'into the void')).toMatchObject({ bytesWritten: 13 });
  });
});
