/**
 * A confined principal's root replaced by a symbolic link after start (by
 * another process on the host): calls on "/" are refused like any other path
 * that leads out, and nothing of the link's target shows.
 */
import { mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';

let s: TestServer;
let outside: string;
const bob = { authorization: 'Bearer bob-token' };

beforeAll(async () => {
  s = await startTestServer({ tokenTable: { 'bob-token': { principal: 'bob', root: 'home/bob' } } });
  outside = join(s.dir, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'secret.txt'), 'secret');
  await writeFile(join(s.root, 'home/bob/mine.txt'), 'mine');
});
afterAll(async () => {
  expect(await readdir(outside)).toEqual(['secret.txt']);
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe.each(transports)('over %s, once the root of bob is a link to a folder outside', (t) => {
  beforeAll(async () => {
    // Swapped once for both transports; the second beforeAll finds it done.
    const names = await readdir(join(s.root, 'home'));
    if (names.includes('bob.old')) return;
    await rename(join(s.root, 'home/bob'), join(s.root, 'home/bob.old'));
    await symlink(outside, join(s.root, 'home/bob'));
  });

  it.each(['/', '.', 'x/..'])('ListDirectory %j is refused, listing nothing outside', async (path) => {
    const r = await s.call(t, 'Directories.ListDirectory', { path }, bob);
    expect([r.code, r.reason]).toEqual(['permission_denied', 'path_outside_root']);
  });

  it('Stat "/" is refused', async () => {
    const r = await s.call(t, 'Directories.Stat', { path: '/' }, bob);
    expect([r.code, r.reason]).toEqual(['permission_denied', 'path_outside_root']);
  });

  it('a file below the root is refused as before', async () => {
    const r = await s.call(t, 'Files.RemoteOpen', { path: 'secret.txt', mode: 'read' }, bob);
    expect([r.code, r.reason]).toEqual(['permission_denied', 'path_outside_root']);
  });
});

it('lists the root as before while it is a real folder', async () => {
  const s2 = await startTestServer({ tokenTable: { 'bob-token': { principal: 'bob', root: 'home/bob' } } });
  try {
    await writeFile(join(s2.root, 'home/bob/mine.txt'), 'mine');
    const listing = await s2.ok('http', 'Directories.ListDirectory', { path: '/' }, bob);
    expect(listing.entries).toEqual([expect.objectContaining({ name: 'mine.txt', size: 4 })]);
  } finally {
    await s2.close();
  }
});
