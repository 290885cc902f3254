import { promises as fsp } from 'node:fs';

/**
 * Which state of a folder a listing was read at: its device, inode, ctime and
 * mtime (ns). Creating, removing or renaming an entry sets the folder's mtime
 * and ctime, and nothing can set its ctime back, so a listing kept for one
 * version is the folder's names for as long as its stat shows that version.
 */
export interface FolderVersion {
  readonly id: string;
  /** The later of ctime and mtime (epoch ms): when the folder last changed, by its file system's clock. */
  readonly changedAt: number;
}

/** The version of the folder at `at` (a pinned folder's path: stat follows /proc/self/fd to it). */
export async function folderVersion(at: string): Promise<FolderVersion> {
  const st = await fsp.stat(at, { bigint: true });
  const changedAt = Math.max(Number(st.ctimeMs), Number(st.mtimeMs));
  return { id: `${st.dev}:${st.ino}:${st.ctimeNs}:${st.mtimeNs}`, changedAt };
}

/** How much the cache may hold, and for how long. */
export interface ListingCacheLimits {
  /** Estimated bytes of all kept names together (nameBytes); a listing over it is not kept. */
  readonly maxBytes: number;
  /** A listing is dropped this long after it was last used. */
  readonly idleMs: number;
  /**
   * A listing is kept only when the folder had last changed at least this long
   * before it was read: a change in the same tick of the file system's clock
   * as the one before the read would leave the version as it was (git's "racy"
   * index entries). Linux stamps with a clock tick (at most 10 ms); FAT's
   * mtime has 2 s steps.
   */
  readonly racyMs: number;
}

/**
 * 64 MiB is about a million names of 17 characters; 30 s lets a client fetch
 * and use a page between calls.
 */
export const defaultListingLimits: ListingCacheLimits = {
  maxBytes: 64 * 1024 * 1024,
  idleMs: 30_000,
  racyMs: 2_500,
};

/**
 * What a kept name costs: V8 measured 49.7 bytes a name (array slot, string
 * header, characters) for 100k readdir names of 16.8 characters on average;
 * 32 + 2 per character bounds it for one-byte and two-byte strings alike.
 */
const nameBytes = (name: string): number => 32 + 2 * name.length;

/** One folder's sorted names, as read at one version of it. */
interface Listing {
  readonly version: string;
  readonly names: readonly string[];
  readonly bytes: number;
  usedAt: number;
}

/**
 * The sorted names of folders being paged through, so that paging through a
 * big folder reads and sorts it once, not once per page (each page used to
 * cost one readdir and sort of the whole folder). Keyed by the caller's
 * identity and the folder's real path; a listing is served only while the
 * folder's stat shows the version it was read at. Bounded by estimated bytes
 * (least recently used dropped first) and by idle time.
 */
export class ListingCache {
  /** In order of last use, least recent first (a Map keeps insertion order). */
  private readonly listings = new Map<string, Listing>();
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: ListingCacheLimits = defaultListingLimits,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** How many listings are kept now, and their estimated bytes. */
  held(): { listings: number; bytes: number } {
    return { listings: this.listings.size, bytes: this.bytes };
  }

  /** Whether a listing is kept for `key` (whatever its version). */
  has(key: string): boolean {
    return this.listings.has(key);
  }

  /** The names kept for `key` if they were read at `version`; a listing of another version is dropped. */
  get(key: string, version: FolderVersion): readonly string[] | undefined {
    this.expire();
    const listing = this.listings.get(key);
    if (listing === undefined) return undefined;
    this.drop(key, listing);
    if (listing.version !== version.id) return undefined;
    listing.usedAt = this.now();
    this.listings.set(key, listing);
    this.bytes += listing.bytes;
    return listing.names;
  }

  /**
   * Keeps `names` (sorted; the read started at `readAt`, and `version` is the
   * folder's as stat'ed after it) unless the folder changed too shortly before
   * the read or during it (racyMs) or they alone would pass maxBytes.
   */
  put(key: string, version: FolderVersion, readAt: number, names: readonly string[]): void {
    if (version.changedAt > readAt - this.limits.racyMs) return;
    let bytes = 0;
    for (const name of names) bytes += nameBytes(name);
    if (bytes > this.limits.maxBytes) return;
    const old = this.listings.get(key);
    if (old !== undefined) this.drop(key, old);
    for (const [oldest, listing] of this.listings) {
      if (this.bytes + bytes <= this.limits.maxBytes) break;
      this.drop(oldest, listing);
    }
    this.listings.set(key, { version: version.id, names, bytes, usedAt: this.now() });
    this.bytes += bytes;
    this.schedule();
  }

  private drop(key: string, listing: Listing): void {
    this.listings.delete(key);
    this.bytes -= listing.bytes;
  }

  /** Drops listings idle for idleMs; the least recently used come first, so it stops at the first one still in use. */
  private expire(): void {
    const before = this.now() - this.limits.idleMs;
    for (const [key, listing] of this.listings) {
      if (listing.usedAt > before) break;
      this.drop(key, listing);
    }
  }

  /**
   * A timer that frees idle listings though no call comes (unref'd: it keeps
   * no process alive), due when the least recently used one expires.
   */
  private schedule(): void {
    if (this.timer !== undefined) return;
    const oldest = this.listings.values().next().value;
    if (oldest === undefined) return;
    const due = Math.max(0, oldest.usedAt + this.limits.idleMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expire();
      this.schedule();
    }, due + 1).unref();
  }
}

/** The index of the first of `sorted` names that comes after `name` (binary search). */
export function indexAfter(sorted: readonly string[], name: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sorted[mid] as string) <= name) low = mid + 1;
    else high = mid;
  }
  return low;
}
