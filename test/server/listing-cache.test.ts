/**
 * The cache of sorted names behind ListDirectory's pages: served only for the
 * folder version it was read at, never kept when the folder changed just
 * before the read, and bounded by bytes and by idle time (fake time).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type FolderVersion, indexAfter, ListingCache } from '../../server/services/listing-cache.js';

const limits = { maxBytes: 10_000, idleMs: 30_000, racyMs: 2_500 };
/** A folder version that last changed `ageMs` before now. */
const version = (id: string, ageMs = 60_000): FolderVersion => ({ id, changedAt: Date.now() - ageMs });
/** `count` names of 10 characters: 52 estimated bytes each. */
const names = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(10 - prefix.length, '0')}`);

describe('ListingCache', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('serves names only for the folder version they were read at, and drops them on another', () => {
    const cache = new ListingCache(limits);
    const kept = names('a', 10);
    cache.put('k', version('v1'), Date.now(), kept);
    expect(cache.get('k', version('v1'))).toBe(kept);
    expect(cache.get('other', version('v1'))).toBeUndefined();
    expect(cache.get('k', version('v2'))).toBeUndefined();
    expect(cache.get('k', version('v1'))).toBeUndefined();
    expect(cache.held()).toEqual({ listings: 0, bytes: 0 });
  });

  it.each([
    ['changed racyMs before the read began', 2_500, true],
    ['changed just under racyMs before it', 2_499, false],
    ['changed after the read began', -5, false],
  ])('keeps names of a folder %s: %s', (_name, ageMs, kept) => {
    const cache = new ListingCache(limits);
    cache.put('k', version('v1', ageMs), Date.now(), names('a', 3));
    expect(cache.get('k', version('v1', ageMs)) !== undefined).toBe(kept);
  });

  it('drops the least recently used listings to stay within maxBytes, and keeps none bigger than it alone', () => {
    const cache = new ListingCache(limits);
    cache.put('a', version('va'), Date.now(), names('a', 80)); // 4160 bytes
    cache.put('b', version('vb'), Date.now(), names('b', 80));
    expect(cache.get('a', version('va'))).toBeDefined(); // now b is the least recently used
    cache.put('c', version('vc'), Date.now(), names('c', 80));
    expect(cache.held()).toEqual({ listings: 2, bytes: 8320 });
    expect(cache.get('b', version('vb'))).toBeUndefined();
    expect(cache.get('a', version('va'))).toBeDefined();
    cache.put('huge', version('vh'), Date.now(), names('h', 200)); // 10400 bytes
    expect(cache.get('huge', version('vh'))).toBeUndefined();
    expect(cache.held().listings).toBe(2);
  });

  it('drops a listing idleMs after its last use, by its timer though no call comes', () => {
    const cache = new ListingCache(limits);
    cache.put('a', version('va'), Date.now(), names('a', 5));
    cache.put('b', version('vb'), Date.now(), names('b', 5));
    vi.advanceTimersByTime(20_000);
    expect(cache.get('a', version('va'))).toBeDefined();
    vi.advanceTimersByTime(10_001);
    expect(cache.held().listings).toBe(1); // b, unused for 30 s, is gone
    vi.advanceTimersByTime(20_000);
    expect(cache.held()).toEqual({ listings: 0, bytes: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('indexAfter', () => {
  const sorted = ['a', 'b', 'd', 'e'];
  it.each([
    ['', 0],
    ['a', 1],
    ['c', 2],
    ['d', 3],
    ['e', 4],
    ['z', 4],
  ])('after %j is index %i', (name, index) => {
    expect(indexAfter(sorted, name)).toBe(index);
  });
});
