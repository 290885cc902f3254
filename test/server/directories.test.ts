/**
 * The Directories service over both transports: MakeDirectory, paged
 * ListDirectory, Stat and Remove, against real files in a temporary root.
 */
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
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

describe.each(transports)('Directories over %s', (t) => {
  const dir = `dirs-${t}`;
  const at = (...parts: string[]) => join(s.root, dir, ...parts);

  beforeAll(async () => {
    await mkdir(at('paged'), { recursive: true });
    // 7 entries, created out of order: the listing sorts them by name.
    for (const name of ['g', 'c', 'a', 'e', 'b', 'f']) await writeFile(at('paged', name), name);
    await mkdir(at('paged', 'd'));
    await mkdir(at('full/inner'), { recursive: true });
    await writeFile(at('full/inner/x'), 'x');
    await writeFile(at('file.txt'), 'content');
    await mkdir(at('empty'));
  });

  describe('ListDirectory', () => {
    it('pages through a folder with pageSize and pageToken, in name order, each entry once', async () => {
      const names: string[] = [];
      const sizes: number[] = [];
      let pageToken: string | undefined;
      do {
        const page = (await s.ok(t, 'Directories.ListDirectory', {
          path: `${dir}/paged`,
          pageSize: 3,
          ...(pageToken === undefined ? {} : { pageToken }),
        })) as { entries: { name: string; isDirectory: boolean }[]; nextPageToken?: string };
        sizes.push(page.entries.length);
        names.push(...page.entries.map((e) => e.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== undefined);
      expect(sizes).toEqual([3, 3, 1]);
      expect(names).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    });

    it('gives no nextPageToken when the page holds the last entry exactly', async () => {
      const page = await s.ok(t, 'Directories.ListDirectory', { path: `${dir}/paged`, pageSize: 7 });
      expect((page.entries as unknown[]).length).toBe(7);
      expect(page.nextPageToken).toBeUndefined();
    });

    it('pages 100 entries at a time when pageSize is left out', async () => {
      await mkdir(at('many'));
      await Promise.all(
        Array.from({ length: 101 }, (_, i) => writeFile(at('many', `n${String(i).padStart(3, '0')}`), '')),
      );
      const first = await s.ok(t, 'Directories.ListDirectory', { path: `${dir}/many` });
      expect((first.entries as unknown[]).length).toBe(100);
      const second = await s.ok(t, 'Directories.ListDirectory', {
        path: `${dir}/many`,
        pageToken: first.nextPageToken,
      });
      expect(second.entries).toEqual([expect.objectContaining({ name: 'n100' })]);
      expect(second.nextPageToken).toBeUndefined();
    });

    it('refuses a token issued for another folder, or with its name changed', async () => {
      await mkdir(at('other'), { recursive: true });
      await Promise.all(['a', 'b', 'c'].map((n) => writeFile(at('other', n), '')));
      const first = await s.ok(t, 'Directories.ListDirectory', { path: `${dir}/other`, pageSize: 1 });
      const token = first.nextPageToken as string;
      const elsewhere = await s.call(t, 'Directories.ListDirectory', {
        path: `${dir}/many`,
        pageToken: token,
      });
      expect([elsewhere.code, elsewhere.reason]).toEqual(['invalid_argument', 'invalid_page_token']);
      const [, mac] = token.split('.');
      const renamed = `${Buffer.from('b').toString('base64url')}.${mac}`;
      const forged = await s.call(t, 'Directories.ListDirectory', {
        path: `${dir}/other`,
        pageToken: renamed,
      });
      expect(forged.reason).toBe('invalid_page_token');
      const next = await s.ok(t, 'Directories.ListDirectory', {
        path: `${dir}/other/`,
        pageToken: token,
        pageSize: 1,
      });
      expect(next.entries).toEqual([expect.objectContaining({ name: 'b' })]);
    });

    it('reports entries with their kind and size', async () => {
      const page = await s.ok(t, 'Directories.ListDirectory', { path: dir });
      expect(page.entries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'file.txt', isDirectory: false, size: 7 }),
          expect.objectContaining({ name: 'empty', isDirectory: true, size: 0 }),
        ]),
      );
    });

    it.each([
      ['a token it never issued', { pageToken: '!!not-a-token!!' }, 'pageToken'],
      ['an empty token', { pageToken: '' }, 'pageToken'],
      [
        'a forged token (the base64url of a name)',
        { pageToken: Buffer.from('f3').toString('base64url') },
        'pageToken',
      ],
      ['pageSize 0', { pageSize: 0 }, 'pageSize'],
      ['pageSize over 1000', { pageSize: 1001 }, 'pageSize'],
      ['a fractional pageSize', { pageSize: 2.5 }, 'pageSize'],
    ])('refuses %s with invalid_argument naming the field', async (_name, extra, field) => {
      const r = await s.call(t, 'Directories.ListDirectory', { path: `${dir}/paged`, ...extra });
      expect([r.code, r.field]).toEqual(['invalid_argument', field]);
      expect(r.message).toContain(field);
    });

    it('answers not_found for a missing folder and not_a_directory for a file', async () => {
      const missing = await s.call(t, 'Directories.ListDirectory', { path: `${dir}/nope` });
      expect([missing.code, missing.reason]).toEqual(['not_found', 'no_such_file']);
      const file = await s.call(t, 'Directories.ListDirectory', { path: `${dir}/file.txt` });
      expect([file.code, file.reason]).toEqual(['failed_precondition', 'not_a_directory']);
    });
  });

  describe('Stat', () => {
    it('describes a file, a folder and the root', async () => {
      expect(await s.ok(t, 'Directories.Stat', { path: `${dir}/file.txt` })).toMatchObject({
        isDirectory: false,
        size: 7,
      });
      expect(await s.ok(t, 'Directories.Stat', { path: `${dir}/empty` })).toMatchObject({
        isDirectory: true,
        size: 0,
      });
      expect(await s.ok(t, 'Directories.Stat', { path: '/' })).toMatchObject({ isDirectory: true });
    });

    it('reads a leading slash, doubled slashes and dot segments as paths inside the root', async () => {
      for (const path of [
        `/${dir}/file.txt`,
        `${dir}//file.txt`,
        `./${dir}/./file.txt`,
        `${dir}/empty/../file.txt`,
      ]) {
        expect(await s.ok(t, 'Directories.Stat', { path })).toMatchObject({ size: 7 });
      }
    });

    it('answers not_found for a missing path, naming it as the client wrote it', async () => {
      const r = await s.call(t, 'Directories.Stat', { path: `${dir}/missing.txt` });
      expect([r.code, r.reason]).toEqual(['not_found', 'no_such_file']);
      expect(r.message).toBe(`no such file or directory: /${dir}/missing.txt`);
    });

    it('answers not_a_directory when a file sits in the middle of the path', async () => {
      const r = await s.call(t, 'Directories.Stat', { path: `${dir}/file.txt/below` });
      expect([r.code, r.reason]).toEqual(['failed_precondition', 'not_a_directory']);
    });
  });

  describe('MakeDirectory', () => {
    it('creates one level, and refuses to create it twice with already_exists', async () => {
      await s.ok(t, 'Directories.MakeDirectory', { path: `${dir}/one` });
      expect((await stat(at('one'))).isDirectory()).toBe(true);
      const again = await s.call(t, 'Directories.MakeDirectory', { path: `${dir}/one` });
      expect([again.code, again.reason, again.field]).toEqual(['already_exists', 'file_exists', 'path']);
    });

    it('needs parents to create missing parent folders, and says which is missing', async () => {
      const r = await s.call(t, 'Directories.MakeDirectory', { path: `${dir}/p/q/r` });
      expect([r.code, r.reason, r.field]).toEqual(['not_found', 'no_such_file', 'path']);
      expect(r.message).toBe(`no such file or directory: /${dir}/p/q (send "parents": true to make it too)`);
      expect(r.details).toEqual({
        reason: 'no_such_file',
        field: 'path',
        errno: 'ENOENT',
        path: `/${dir}/p/q`,
      });
      await s.ok(t, 'Directories.MakeDirectory', { path: `${dir}/p/q/r`, parents: true });
      expect((await stat(at('p/q/r'))).isDirectory()).toBe(true);
    });

    it('with parents, accepts a folder that already exists (mkdir -p)', async () => {
      await s.ok(t, 'Directories.MakeDirectory', { path: `${dir}/empty`, parents: true });
      await s.ok(t, 'Directories.MakeDirectory', { path: '/', parents: true });
    });

    it('refuses the root without parents, and a path below a file', async () => {
      const root = await s.call(t, 'Directories.MakeDirectory', { path: '/' });
      expect(root.code).toBe('already_exists');
      const below = await s.call(t, 'Directories.MakeDirectory', {
        path: `${dir}/file.txt/sub`,
        parents: true,
      });
      expect(below.code).toBe('failed_precondition');
      expect(below.reason).toMatch(/not_a_directory|file_exists/);
    });

    it('refuses a name taken by a file with already_exists', async () => {
      const r = await s.call(t, 'Directories.MakeDirectory', { path: `${dir}/file.txt` });
      expect(r.code).toBe('already_exists');
    });
  });

  describe('Remove', () => {
    it('removes a file and an empty folder', async () => {
      await writeFile(at('gone.txt'), '');
      await mkdir(at('gone-dir'));
      await s.ok(t, 'Directories.Remove', { path: `${dir}/gone.txt` });
      await s.ok(t, 'Directories.Remove', { path: `${dir}/gone-dir` });
      await expect(stat(at('gone.txt'))).rejects.toThrow(/ENOENT/);
      await expect(stat(at('gone-dir'))).rejects.toThrow(/ENOENT/);
    });

    it('refuses a non-empty folder with failed_precondition unless recursive', async () => {
      const r = await s.call(t, 'Directories.Remove', { path: `${dir}/full` });
      expect([r.code, r.reason, r.status]).toEqual([
        'failed_precondition',
        'directory_not_empty',
        t === 'http' ? 400 : -32008,
      ]);
      await s.ok(t, 'Directories.Remove', { path: `${dir}/full`, recursive: true });
      await expect(stat(at('full'))).rejects.toThrow(/ENOENT/);
    });

    it('answers not_found for a missing path, and refuses the root', async () => {
      const missing = await s.call(t, 'Directories.Remove', { path: `${dir}/never` });
      expect(missing.code).toBe('not_found');
      const root = await s.call(t, 'Directories.Remove', { path: '/', recursive: true });
      expect([root.code, root.reason]).toEqual(['permission_denied', 'root_not_removable']);
      const dotted = await s.call(t, 'Directories.Remove', { path: `${dir}/..`, recursive: true });
      expect([dotted.code, dotted.reason]).toEqual(['permission_denied', 'root_not_removable']);
      expect((await stat(s.root)).isDirectory()).toBe(true);
    });

    it('removes a symbolic link itself, never what it points to', async () => {
      await mkdir(at('target'));
      await writeFile(at('target/keep.txt'), 'keep');
      await symlink(at('target'), at('link'));
      await s.ok(t, 'Directories.Remove', { path: `${dir}/link`, recursive: true });
      await expect(stat(at('link'))).rejects.toThrow(/ENOENT/);
      expect((await stat(at('target/keep.txt'))).size).toBe(4);
    });
  });
});
