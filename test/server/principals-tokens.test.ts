/**
 * The tokens file is checked entry by entry when the server starts: a field
 * of the wrong type or a misspelt one stops it with a message naming the
 * entry (never its token) and the field, instead of granting more than the
 * file meant (a `"readOnly": "true"` or `"readonly": true` left write access).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Principals } from '../../server/auth/principals.js';
import { buildServer } from '../../server/index.js';
import { Sandbox } from '../../server/sandbox/sandbox.js';
import { startTestServer } from '../helpers/server.js';

let dir: string;
let root: Sandbox;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-principals-'));
  root = await Sandbox.create(join(dir, 'root'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let files = 0;
/** Loads a tokens file holding `table` (written as is) over the shared root. */
async function load(table: unknown): Promise<Principals> {
  const file = join(dir, `tokens-${++files}.json`);
  await writeFile(file, typeof table === 'string' ? table : JSON.stringify(table));
  return Principals.load(root, file);
}

describe('a malformed entry stops the server, naming the entry and the field', () => {
  it.each([
    [
      'readOnly as a string',
      { 'sec-1': { principal: 'alice' }, 'sec-2': { principal: 'aud', readOnly: 'true' } },
      /entry 2 \(principal "aud"\): "readOnly" must be true or false, not a string \("true"\)/,
    ],
    [
      'readOnly as a number',
      { 'sec-1': { principal: 'aud', readOnly: 1 } },
      /entry 1 \(principal "aud"\): "readOnly" must be true or false, not a number \(1\)/,
    ],
    [
      'a misspelt readOnly',
      { 'sec-1': { principal: 'aud', readonly: true } },
      /entry 1 \(principal "aud"\): unknown field "readonly" \(an entry holds only principal, readOnly, root\)/,
    ],
    [
      'an unknown field',
      { 'sec-1': { principal: 'aud', rot: 'x' } },
      /entry 1 \(principal "aud"\): unknown field "rot"/,
    ],
    [
      'root as a number',
      { 'sec-1': { principal: 'bob', root: 5 } },
      /entry 1 \(principal "bob"\): "root" must be a string .*, not a number \(5\)/,
    ],
    ['root as null', { 'sec-1': { principal: 'bob', root: null } }, /"root" must be a string .*, not null/],
    ['no principal', { 'sec-1': { readOnly: true } }, /entry 1: lacks "principal" \(a non-empty string\)/],
    ['an empty principal', { 'sec-1': { principal: '' } }, /entry 1: "principal" must be a non-empty string/],
    [
      'principal as a number',
      { 'sec-1': { principal: 7 } },
      /entry 1: "principal" must be .*, not a number \(7\)/,
    ],
    ['an entry that is a string', { 'sec-1': 'alice' }, /entry 1: must be an object .*, not a string/],
    ['an entry that is null', { 'sec-1': null }, /entry 1: must be an object .*, not null/],
    [
      'a root that climbs out',
      { 'sec-1': { principal: 'bob', root: '../x' } },
      /entry 1 \(principal "bob"\): "root" "\.\.\/x": path leaves the served root/,
    ],
  ])('%s', async (_label, table, message) => {
    const refusal = load(table);
    await expect(refusal).rejects.toThrow(/^tokens file .*tokens-\d+\.json: entry \d/);
    await expect(refusal).rejects.toThrow(message);
    // The token is a secret: it must not end up in the logs of a server that refused to start.
    await expect(refusal).rejects.not.toThrow(/sec-/);
  });
});

describe('well-formed entries', () => {
  it('give each token its principal, read-only only when readOnly is true', async () => {
    const principals = await load({
      a: { principal: 'alice' },
      b: { principal: 'bob', readOnly: false },
      c: { principal: 'carol', readOnly: true, root: 'home/carol' },
    });
    expect(principals.resolve('Bearer a')).toMatchObject({ name: 'alice', readOnly: false });
    expect(principals.resolve('Bearer b')).toMatchObject({ name: 'bob', readOnly: false });
    const carol = principals.resolve('Bearer c');
    expect(carol).toMatchObject({ name: 'carol', readOnly: true });
    expect(carol.sandbox.realRoot).toBe(join(root.realRoot, 'home/carol'));
  });
});

describe('a server with a malformed tokens file', () => {
  it('does not start', async () => {
    const tokens = join(dir, 'server-tokens.json');
    await writeFile(tokens, JSON.stringify({ tok: { principal: 'aud', readOnly: 'true' } }));
    await expect(buildServer({ root: join(dir, 'served'), tokens, logLevel: 'silent' })).rejects.toThrow(
      /entry 1 \(principal "aud"\): "readOnly" must be true or false/,
    );
  });
});

// Handles, leases and idempotency records belong to a principal's name: two tokens of one name
// reach the same handles, so they must reach the same files with the same rights.
describe('several tokens of one principal', () => {
  it.each([
    [
      'one read-only, one not',
      {
        'sec-1': { principal: 'alice' },
        'sec-2': { principal: 'bob' },
        'sec-3': { principal: 'alice', readOnly: true },
      },
      /entries 1 and 3 both name principal "alice" but differ in "readOnly" \(false and true\)/,
    ],
    [
      'one confined to a folder, one not',
      { 'sec-1': { principal: 'alice', root: 'home/alice' }, 'sec-2': { principal: 'alice' } },
      /entries 1 and 2 both name principal "alice" but differ in "root" \("\/home\/alice" and "\/"\)/,
    ],
    [
      'confined to different folders',
      { 'sec-1': { principal: 'alice', root: 'a' }, 'sec-2': { principal: 'alice', root: 'b' } },
      /entries 1 and 2 both name principal "alice" but differ in "root" \("\/a" and "\/b"\)/,
    ],
  ])('are refused when %s', async (_label, table, message) => {
    const refusal = load(table);
    await expect(refusal).rejects.toThrow(message);
    await expect(refusal).rejects.toThrow(/give the other token a principal of its own/);
    await expect(refusal).rejects.not.toThrow(/sec-/);
  });

  it('are one principal when their settings are the same, however the root is spelt', async () => {
    const principals = await load({
      a: { principal: 'carol', root: 'home/carol' },
      b: { principal: 'carol', root: '/home/./carol/', readOnly: false },
    });
    expect(principals.resolve('Bearer b')).toBe(principals.resolve('Bearer a'));
  });

  it('share their handles over a real server when their settings are the same', async () => {
    const s = await startTestServer({
      tokenTable: { one: { principal: 'dana', readOnly: true }, two: { principal: 'dana', readOnly: true } },
    });
    try {
      await writeFile(join(s.root, 'f.txt'), 'shared');
      const opened = await s.ok('http', 'Files.RemoteOpen', { path: 'f.txt', mode: 'read' }, as('one'));
      const read = await s.ok('http', 'Files.RemoteRead', { handle: opened.handle }, as('two'));
      expect(read.data).toBe('shared');
    } finally {
      await s.close();
    }
  });
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });
