/**
 * Without /proc/self/fd (not Linux, or /proc not mounted) folders are not
 * pinned and calls go by path as before; with it, they are.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isPinning, probePinning } from '../../server/sandbox/pinned-folder.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  probePinning(s.root);
  expect(s.leaks()).toEqual([]);
  await s.close();
});

it('pins folders where /proc/self/fd names them (this Linux host)', () => {
  expect(process.platform === 'linux' ? isPinning() : true).toBe(true);
});

it('falls back to paths when folders cannot be pinned, with the same answers', async () => {
  expect(probePinning(join(s.root, 'not-there'))).toBe(false);
  await mkdir(join(s.root, 'fb/tree/sub'), { recursive: true });
  await writeFile(join(s.root, 'fb/file.txt'), 'text');
  await s.ok('http', 'Directories.MakeDirectory', { path: 'fb/made/deeper', parents: true });
  await s.ok('http', 'Directories.MakeDirectory', { path: 'fb/one' });
  const opened = await s.ok('http', 'Files.RemoteOpen', { path: 'fb/file.txt', mode: 'read' });
  expect(await s.ok('http', 'Files.RemoteRead', { handle: opened.handle })).toMatchObject({ data: 'text' });
  expect(await s.ok('http', 'Directories.Stat', { path: 'fb/file.txt' })).toMatchObject({ size: 4 });
  const listing = await s.ok('http', 'Directories.ListDirectory', { path: 'fb' });
  expect((listing.entries as { name: string }[]).map((e) => e.name)).toEqual([
    'file.txt',
    'made',
    'one',
    'tree',
  ]);
  await s.ok('http', 'Directories.Remove', { path: 'fb/tree', recursive: true });
  expect(await readdir(join(s.root, 'fb'))).toEqual(['file.txt', 'made', 'one']);
});
