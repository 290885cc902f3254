/**
 * A confined principal's root (`"root"` in the tokens file) must be a folder
 * inside the served root: made folder by folder at start, and refused when a
 * symbolic link on the way leads out of the served root or nowhere, before
 * anything is made through it.
 */
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Principals } from '../../server/auth/principals.js';
import { buildServer } from '../../server/index.js';
import { Sandbox } from '../../server/sandbox/sandbox.js';

let dir: string;
let outside: string;
let root: Sandbox;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-principal-root-'));
  outside = join(dir, 'outside');
  await mkdir(outside);
  root = await Sandbox.create(join(dir, 'root'));
  await symlink(outside, join(root.realRoot, 'ext'));
  await symlink(join(outside, 'nowhere'), join(root.realRoot, 'dangling'));
  await mkdir(join(root.realRoot, 'users/erin'), { recursive: true });
  await symlink('users', join(root.realRoot, 'home'));
  await writeFile(join(root.realRoot, 'file.txt'), 'x');
});
afterAll(async () => {
  // Nothing was made outside the served root.
  expect(await readdir(outside)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
async function load(table: unknown): Promise<Principals> {
  const file = join(dir, `tokens-${++files}.json`);
  await writeFile(file, JSON.stringify(table));
  return Principals.load(root, file);
}

describe('a root through a symbolic link', () => {
  it.each([
    [
      'a link to a folder outside',
      'ext',
      /entry 1 \(principal "bob"\): "root" "ext": path leaves the served root: \/ext/,
    ],
    [
      'a folder below a link to outside',
      'ext/new/deeper',
      /"root" "ext\/new\/deeper": path leaves the served root/,
    ],
    ['a dangling link', 'dangling', /"root" "dangling": path leaves the served root/],
    [
      'a dangling link, with more below',
      'dangling/sub',
      /"root" "dangling\/sub": path leaves the served root/,
    ],
  ])('is refused when it is %s', async (_label, path, message) => {
    await expect(load({ tok: { principal: 'bob', root: path } })).rejects.toThrow(message);
  });

  it('stops the server from starting', async () => {
    const tokens = join(dir, 'server-tokens.json');
    await writeFile(tokens, JSON.stringify({ tok: { principal: 'bob', root: 'ext/made' } }));
    await expect(buildServer({ root: root.realRoot, tokens, logLevel: 'silent' })).rejects.toThrow(
      /entry 1 \(principal "bob"\): "root" "ext\/made": path leaves the served root/,
    );
  });

  it('is followed when the link stays inside, to its real folder', async () => {
    const erin = (await load({ tok: { principal: 'erin', root: 'home/erin' } })).resolve('Bearer tok');
    expect(erin.sandbox.realRoot).toBe(join(root.realRoot, 'users/erin'));
  });
});

it('makes a missing root folder by folder', async () => {
  const fred = (await load({ tok: { principal: 'fred', root: 'a/b/c' } })).resolve('Bearer tok');
  expect(fred.sandbox.realRoot).toBe(join(root.realRoot, 'a/b/c'));
});

it('refuses a root that is a file', async () => {
  await expect(load({ tok: { principal: 'gus', root: 'file.txt' } })).rejects.toThrow(
    /"root" "file.txt": not a folder: \/file.txt/,
  );
});
