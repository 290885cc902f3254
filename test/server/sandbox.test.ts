/**
 * Hostile paths, table-driven, over both transports and several methods: `..`
 * in any position, absolute host paths, NUL bytes, and symbolic links inside
 * the root that point outside it (to a file, a folder, a folder in the middle
 * of the path, nowhere). Links that stay inside are followed.
 */
import { promises as fsp } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';

let s: TestServer;
let outside: string;

beforeAll(async () => {
  s = await startTestServer();
  outside = join(s.dir, 'outside');
  await mkdir(join(outside, 'deep'), { recursive: true });
  await writeFile(join(outside, 'secret.txt'), 'secret');
  await mkdir(join(s.root, 'inside/dir'), { recursive: true });
  await writeFile(join(s.root, 'inside/file.txt'), 'inside file');
  await writeFile(join(s.root, 'inside/dir/x.txt'), 'x');
  const link = (target: string, name: string) => symlink(target, join(s.root, name));
  await link(join(outside, 'secret.txt'), 'link-file-out');
  await link(outside, 'link-dir-out');
  await link('../outside', 'rel-dir-out');
  await link(join(outside, 'not-there'), 'link-dangling');
  await link('/', 'link-host-root');
  await link(join(s.root, 'inside/file.txt'), 'link-file-in');
  await link('inside/dir', 'link-dir-in');
  await link('.', 'link-root');
});

afterAll(async () => {
  // Nothing outside the root changed, and no reply named the absolute root.
  expect((await readdir(outside)).sort()).toEqual(['deep', 'secret.txt']);
  expect(await readdir(join(outside, 'deep'))).toEqual([]);
  expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
  expect(s.leaks()).toEqual([]);
  await s.close();
});

/** Paths that must be refused with permission_denied / path_outside_root. `host`: reaches the host's / (never used to write). */
const escapes: [label: string, path: string, host?: boolean][] = [
  ['.. alone', '..'],
  ['../x', '../outside/secret.txt'],
  ['../../x', '../../etc/passwd', true],
  ['a/../../x', 'inside/../../outside/secret.txt'],
  ['./../x', './../outside'],
  ['/../x', '/../outside/secret.txt'],
  ['doubled slashes //..//x', '//..//outside'],
  ['a/b/../../../x', 'inside/dir/../../../outside/deep'],
  ['NUL in a name', 'inside/file.txt\u0000.png'],
  ['NUL alone', '\u0000'],
  ['a link to a file outside', 'link-file-out'],
  ['a link to a folder outside', 'link-dir-out'],
  ['a link to a folder outside, in the middle of the path', 'link-dir-out/deep'],
  ['a relative link to a folder outside, in the middle', 'rel-dir-out/secret.txt'],
  ['a dangling link pointing outside', 'link-dangling'],
  ['a link to the host root, in the middle', 'link-host-root/etc/passwd', true],
  ['a link inside that leads to a link outside', 'link-root/link-dir-out/deep'],
];

describe.each(transports)('hostile paths over %s', (t) => {
  const refused = async (method: string, params: object) => {
    const r = await s.call(t, method, params);
    expect(r.ok, `${method} ${JSON.stringify(params)} succeeded`).toBe(false);
    expect([r.code, r.reason, r.field]).toEqual(['permission_denied', 'path_outside_root', 'path']);
    expect(r.status).toBe(t === 'http' ? 403 : -32006);
  };

  describe.each(escapes)('%s (%j)', (_label, path, host) => {
    it('Stat is refused', () => refused('Directories.Stat', { path }));
    it('ListDirectory is refused', () => refused('Directories.ListDirectory', { path }));
    it('RemoteOpen for read is refused', () => refused('Files.RemoteOpen', { path, mode: 'read' }));
    // Paths that reach the host's own / are never used to write: a bug there must not touch the host.
    if (host) return;
    it('RemoteOpen for write with create is refused', () =>
      refused('Files.RemoteOpen', { path: `${path}/new-${t}.txt`, mode: 'write', create: true }));
    it('MakeDirectory with parents is refused', () =>
      refused('Directories.MakeDirectory', { path: `${path}/made-${t}/deeper`, parents: true }));
    it('Remove of something below it is refused', () =>
      refused('Directories.Remove', { path: `${path}/deep`, recursive: true }));
  });

  it('a dangling link inside the root is refused too, in the middle of a path as at its end', async () => {
    await symlink(join(s.root, 'inside/not-yet'), join(s.root, `dangling-in-${t}`));
    await refused('Directories.MakeDirectory', { path: `dangling-in-${t}/a/b`, parents: true });
    await refused('Files.RemoteOpen', { path: `dangling-in-${t}`, mode: 'write', create: true });
    await expect(stat(join(s.root, 'inside/not-yet'))).rejects.toThrow(/ENOENT/);
  });

  it('a dangling link pointing outside cannot be used to create a file there', async () => {
    await refused('Files.RemoteOpen', { path: 'link-dangling', mode: 'write', create: true });
    await expect(stat(join(outside, 'not-there'))).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['a/.. is the root', 'inside/..'],
    ['a/b/../.. is the root', 'inside/dir/../..'],
    ['./. is the root', './.'],
  ])('%s, not an escape', async (_label, path) => {
    expect(await s.ok(t, 'Directories.Stat', { path })).toMatchObject({ isDirectory: true });
    const listing = await s.ok(t, 'Directories.ListDirectory', { path });
    expect((listing.entries as { name: string }[]).map((e) => e.name)).toContain('inside');
  });

  it.each(['/etc/passwd', '/etc', '/proc/self/environ', '/root'])(
    'reads the absolute host path %s inside the root: not_found, never the host file',
    async (path) => {
      for (const [method, params] of [
        ['Directories.Stat', { path }],
        ['Directories.ListDirectory', { path }],
        ['Files.RemoteOpen', { path, mode: 'read' }],
      ] as const) {
        const r = await s.call(t, method, params);
        expect([r.code, r.reason]).toEqual(['not_found', 'no_such_file']);
      }
    },
  );

  it('reads the server’s own absolute root path as a path inside the root', async () => {
    const seen = s.seen.length;
    const r = await s.call(t, 'Directories.Stat', { path: `${s.root}/inside/file.txt` });
    expect(r.code).toBe('not_found');
    // The message repeats the client's own path; that is not a leak, so it is left out of the leak check.
    s.seen.splice(seen);
  });

  it('takes a backslash as part of a name, not a separator', async () => {
    const r = await s.call(t, 'Directories.Stat', { path: '..\\..\\outside' });
    expect(r.code).toBe('not_found');
  });

  it('follows links that stay inside: to a file, to a folder, to the root', async () => {
    expect(await s.ok(t, 'Directories.Stat', { path: 'link-file-in' })).toMatchObject({
      isDirectory: false,
      size: 11,
    });
    expect(await s.ok(t, 'Directories.ListDirectory', { path: 'link-dir-in' })).toMatchObject({
      entries: expect.arrayContaining([expect.objectContaining({ name: 'x.txt' })]),
    });
    expect(await s.ok(t, 'Directories.Stat', { path: 'link-root/inside/file.txt' })).toMatchObject({
      size: 11,
    });
    const opened = await s.ok(t, 'Files.RemoteOpen', { path: 'link-file-in', mode: 'read' });
    expect(await s.ok(t, 'Files.RemoteRead', { handle: opened.handle })).toMatchObject({
      data: 'inside file',
    });
  });

  it('MakeDirectory with parents through a link that stays inside creates below its target', async () => {
    await s.ok(t, 'Directories.MakeDirectory', { path: `link-dir-in/made-${t}/deeper`, parents: true });
    expect((await stat(join(s.root, `inside/dir/made-${t}/deeper`))).isDirectory()).toBe(true);
  });

  it('lists links to outside (or nowhere) as empty entries, and links that stay inside as their targets', async () => {
    const listing = await s.ok(t, 'Directories.ListDirectory', { path: '/' });
    const entries = listing.entries as { name: string; isDirectory: boolean; size: number }[];
    const entry = (name: string) => entries.find((e) => e.name === name);
    const linkTime = async (name: string) => (await lstat(join(s.root, name))).mtime.toISOString();
    // Out: size 0 and the link's own time; neither the target's size nor the length of the path it holds.
    for (const name of ['link-dir-out', 'link-file-out', 'link-dangling', 'link-host-root']) {
      expect(entry(name)).toEqual({ name, isDirectory: false, size: 0, modifiedAt: await linkTime(name) });
    }
    // In: what Stat and every call through the link see.
    expect(entry('link-dir-in')).toMatchObject({ isDirectory: true, size: 0 });
    expect(entry('link-file-in')).toMatchObject({ isDirectory: false, size: 'inside file'.length });
    expect(entry('link-root')).toMatchObject({ isDirectory: true });
  });
});

describe('Remove of a symbolic link', () => {
  it.each(transports)('removes only the link, never its target outside the root (%s)', async (t) => {
    await symlink(outside, join(s.root, `rm-dir-${t}`));
    await symlink(join(outside, 'secret.txt'), join(s.root, `rm-file-${t}`));
    await s.ok(t, 'Directories.Remove', { path: `rm-dir-${t}`, recursive: true });
    await s.ok(t, 'Directories.Remove', { path: `rm-file-${t}` });
    await expect(lstat(join(s.root, `rm-dir-${t}`))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(s.root, `rm-file-${t}`))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
  });

  it.each(transports)('removes a link that stays inside, keeping its target (%s)', async (t) => {
    await symlink(join(s.root, 'inside/dir'), join(s.root, `rm-in-${t}`));
    await s.ok(t, 'Directories.Remove', { path: `rm-in-${t}` });
    expect(await readFile(join(s.root, 'inside/dir/x.txt'), 'utf8')).toBe('x');
  });
});

// Another process on the host swaps a folder for a link out of the root while a call looks at a
// path through it (clients cannot make links: this is the host's own race, caught all the same).
describe('a folder swapped for a link out while Stat or ListDirectory looks', () => {
  /** Swaps `race-<n>/d` for a link to `outside` once, when `fsp[method]` is first called on a path under it. */
  async function swapOnce(n: string, method: 'realpath' | 'lstat', suffix: string) {
    await mkdir(join(s.root, `race-${n}/d`), { recursive: true });
    await writeFile(join(s.root, `race-${n}/d/secret.txt`), 'abc');
    const original = fsp[method].bind(fsp) as (p: string) => Promise<unknown>;
    let swapped = false;
    const spy = vi.spyOn(fsp, method).mockImplementation((async (p: string) => {
      const answer = await original(p);
      if (!swapped && String(p).endsWith(suffix)) {
        swapped = true;
        await rename(join(s.root, `race-${n}/d`), join(s.root, `race-${n}/d.old`));
        await symlink(outside, join(s.root, `race-${n}/d`));
      }
      return answer;
    }) as never);
    return () => spy.mockRestore();
  }

  it('ListDirectory shows the link to the swapped folder as an empty entry, not the outside file', async () => {
    // race-list/link -> race-list/d/secret.txt; outside/secret.txt has 6 bytes, the inside one 3.
    await mkdir(join(s.root, 'race-list'), { recursive: true });
    await symlink(join(s.root, 'race-list/d/secret.txt'), join(s.root, 'race-list/link'));
    // The link is resolved inside its pinned folder (/proc/self/fd/<fd>/link where pinning works).
    const restore = await swapOnce('list', 'realpath', '/link');
    try {
      const listing = await s.ok('http', 'Directories.ListDirectory', { path: 'race-list' });
      const link = (listing.entries as { name: string; size: number }[]).find((e) => e.name === 'link');
      expect(link).toMatchObject({ isDirectory: false, size: 0 });
    } finally {
      restore();
    }
  });

  it('Stat refuses the path (path_outside_root) rather than describe the outside file', async () => {
    const restore = await swapOnce('stat', 'lstat', '/race-stat/d/secret.txt');
    try {
      const r = await s.call('http', 'Directories.Stat', { path: 'race-stat/d/secret.txt' });
      expect([r.code, r.reason]).toEqual(['permission_denied', 'path_outside_root']);
    } finally {
      restore();
    }
  });
});
