/**
 * Paging through big folders on a real server: every name once and in order,
 * the folder read once for the whole listing (the sorted names are kept
 * between pages), changes between pages seen as the page tokens promise (the
 * next page starts after the last name sent, in the folder as it is then),
 * and no caller served a listing kept for another.
 */
import { promises as fsp } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultListingLimits } from '../../server/services/listing-cache.js';
import { startTestServer, type TestServer, type Transport, transports } from '../helpers/server.js';

let s: TestServer;
const alice = { authorization: 'Bearer alice-token' };
const bob = { authorization: 'Bearer bob-token' };

/** `count` names, made out of order, some beyond ASCII (one outside the BMP, which UTF-16 sorts before U+E000). */
const namesFor = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}-${String((i * 7919) % count).padStart(5, '0')}`).concat([
    `${prefix}-é`,
    `${prefix}-\u{1d4b3}`,
    `${prefix}-\uff21`,
  ]);

/** Sorted as the contract sorts: by UTF-16 code units (JavaScript's default sort). */
const sorted = (names: readonly string[]): string[] => [...names].sort();

async function makeFolder(folder: string, names: readonly string[]): Promise<void> {
  await mkdir(folder, { recursive: true });
  await Promise.all(names.map((name) => writeFile(join(folder, name), '')));
}

type Page = { entries: { name: string }[]; nextPageToken?: string };

/** One page of `path`, as `who`. */
async function page(
  t: Transport,
  who: Record<string, string>,
  path: string,
  pageSize: number,
  pageToken?: string,
): Promise<Page> {
  const params = { path, pageSize, ...(pageToken === undefined ? {} : { pageToken }) };
  return (await s.ok(t, 'Directories.ListDirectory', params, who)) as Page;
}

/** Every name of a full listing, page after page. */
async function listAll(t: Transport, who: Record<string, string>, path: string, pageSize: number) {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const p = await page(t, who, path, pageSize, token);
    names.push(...p.entries.map((e) => e.name));
    token = p.nextPageToken;
  } while (token !== undefined);
  return names;
}

const aliceNames = namesFor('alice', 3000);
const bobNames = namesFor('bob', 2500);

beforeAll(async () => {
  s = await startTestServer({
    tokenTable: {
      'alice-token': { principal: 'alice' },
      'bob-token': { principal: 'bob', root: 'home/bob' },
    },
  });
  await makeFolder(join(s.root, 'big'), aliceNames);
  await makeFolder(join(s.root, 'home/bob/big'), bobNames);
  for (const t of transports) {
    await makeFolder(join(s.root, `changing-${t}`), namesFor('c', 2000));
    await makeFolder(join(s.root, `replaced-${t}`), namesFor('old', 1000));
  }
  // A listing is kept only once its folder has not changed for racyMs: wait that long, so pages use it.
  await sleep(defaultListingLimits.racyMs + 200);
}, 60_000);
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(transports)('ListDirectory paging over %s', (t) => {
  it('lists a folder of 3000 entries in 100-entry pages, every name once and in name order, reading it once', async () => {
    const readdir = vi.spyOn(fsp, 'readdir');
    const names = await listAll(t, alice, 'big', 100);
    expect(names).toEqual(sorted(aliceNames));
    // Once for the first page, or not at all when the other transport's listing is still kept.
    expect(readdir.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it('shows an entry added after the last name sent, not one added before it, and not one removed', async () => {
    const folder = join(s.root, `changing-${t}`);
    const first = await page(t, alice, `changing-${t}`, 500);
    const last = first.entries.at(-1)?.name as string;
    expect(last).toBe('c-00499');
    const readdir = vi.spyOn(fsp, 'readdir');
    await writeFile(join(folder, 'c-00100x'), ''); // before the last name sent: not shown
    await writeFile(join(folder, 'c-01500x'), ''); // after it: shown on a later page
    await rm(join(folder, 'c-01600')); // after it, removed: not shown
    await rm(join(folder, 'c-00050')); // already sent
    const rest: string[] = [];
    let token = first.nextPageToken;
    while (token !== undefined) {
      const p = await page(t, alice, `changing-${t}`, 500, token);
      rest.push(...p.entries.map((e) => e.name));
      token = p.nextPageToken;
    }
    const expected = sorted([...namesFor('c', 2000), 'c-01500x'].filter((n) => n > last && n !== 'c-01600'));
    expect(rest).toEqual(expected);
    // The changed folder was read again: the names kept at the first page were not served.
    expect(readdir).toHaveBeenCalled();
  });

  it('reads a folder replaced by another at the same path anew, though its token still holds', async () => {
    const path = `replaced-${t}`;
    const folder = join(s.root, path);
    const first = await page(t, alice, path, 100);
    await rename(folder, `${folder}-gone`);
    await makeFolder(folder, namesFor('old', 10).concat(['old-00050x', 'zzz']));
    const next = await page(t, alice, path, 100, first.nextPageToken);
    expect(next.entries.map((e) => e.name)).toEqual(['old-\uff21', 'zzz', 'old-é', 'old-\u{1d4b3}'].sort());
    expect(next.nextPageToken).toBeUndefined();
  });

  it('gives two principals whose roots differ each their own "/big", pages interleaved', async () => {
    const listings = [
      { who: alice, names: [] as string[], token: undefined as string | undefined, done: false },
      { who: bob, names: [] as string[], token: undefined as string | undefined, done: false },
    ];
    while (listings.some((l) => !l.done)) {
      for (const l of listings.filter((l) => !l.done)) {
        const p = await page(t, l.who, '/big', 250, l.token);
        l.names.push(...p.entries.map((e) => e.name));
        l.token = p.nextPageToken;
        l.done = l.token === undefined;
      }
    }
    expect(listings.map((l) => l.names)).toEqual([sorted(aliceNames), sorted(bobNames)]);
  });

  it('refuses on one principal\'s "/big" a page token issued for another\'s', async () => {
    const { nextPageToken } = await page(t, alice, '/big', 10);
    const r = await s.call(t, 'Directories.ListDirectory', { path: '/big', pageToken: nextPageToken }, bob);
    expect([r.code, r.reason, r.field]).toEqual(['invalid_argument', 'invalid_page_token', 'pageToken']);
  });
});
