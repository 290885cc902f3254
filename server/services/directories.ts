import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../common/rpc-error.js';
import type { DirectoriesImplementation, DirectoryEntry } from '../../generated/index.js';
import { errnoOf, fromOsError } from '../errors/os-errors.js';
import { type DurabilityLog, noDurabilityLog } from '../redo-log/durability-log.js';
import type { CallContext } from '../rpc/context.js';
import { inPinnedParent, isPinning, type PinnedFolder, pinFolder } from '../sandbox/pinned-folder.js';
import { makeFolders, removeTree } from '../sandbox/pinned-tree.js';
import { outsideRoot } from '../sandbox/sandbox.js';
import { assertWritable } from './access.js';
import { folderVersion, indexAfter, ListingCache } from './listing-cache.js';

/**
 * Page tokens: the last name of the previous page, signed with this server's
 * key together with the folder's real path, so that a token the server did
 * not issue (a forged name, or one from another folder) is refused. The real
 * path, not the client's: principals confined to different roots each have a
 * "/big", which are different folders. The key is drawn at start: a token
 * outlives neither a restart nor its folder.
 */
const tokenKey = randomBytes(32);
const tokenMac = (folder: string, name: string): string =>
  createHmac('sha256', tokenKey).update(`${folder}\0${name}`).digest('base64url').slice(0, 22);
const encodeToken = (folder: string, name: string): string =>
  `${Buffer.from(name, 'utf8').toString('base64url')}.${tokenMac(folder, name)}`;
const decodeToken = (folder: string, token: string): string => {
  const [encoded = '', mac = '', extra] = token.split('.');
  const name = Buffer.from(encoded, 'base64url').toString('utf8');
  const expected = tokenMac(folder, name);
  const valid =
    extra === undefined &&
    name.length > 0 &&
    mac.length === expected.length &&
    timingSafeEqual(Buffer.from(mac), Buffer.from(expected));
  if (!valid) {
    throw new RpcError({
      code: 'invalid_argument',
      message: 'pageToken is not one this server issued for this folder (tokens do not outlive a restart)',
      details: { reason: 'invalid_page_token', field: 'pageToken' },
    });
  }
  return name;
};

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The folder's names in name order: kept in `cache` for the next pages when
 * more than `keepOver` (another page follows), so that paging through a folder
 * of n names reads and sorts it once, not n/pageSize times. The key holds the
 * caller and its root, so no one is served a listing another caller read.
 * OS errors are thrown for the caller to map.
 */
async function sortedNames(
  cache: ListingCache,
  ctx: CallContext,
  folder: PinnedFolder,
  real: string,
  keepOver: number,
): Promise<readonly string[]> {
  const key = `${ctx.principal}\0${ctx.sandbox.realRoot}\0${real}`;
  // The folder is stat'ed only when a listing of it is kept, or is to be: a folder of one page never is.
  if (cache.has(key)) {
    const kept = cache.get(key, await folderVersion(folder.self));
    if (kept !== undefined) return kept;
  }
  const readAt = Date.now();
  const names = (await fsp.readdir(folder.self)).sort(byName);
  // Its version after the read: a change during the read is at or after readAt, which put refuses.
  if (names.length > keepOver) cache.put(key, await folderVersion(folder.self), readAt, names);
  return names;
}

/**
 * MakeDirectory without `parents` under a folder that does not exist (ENOENT
 * from mkdir): the OS error about that folder, and what to send.
 */
function missingParent(error: unknown, display: string): RpcError {
  const os = fromOsError(error, path.posix.dirname(display), 'path');
  return new RpcError({
    code: os.code,
    message: `${os.message} (send "parents": true to make it too)`,
    details: os.details,
    cause: error,
  });
}

/**
 * lstat of a path the caller resolved to its real path (links followed and
 * checked), looked up in its parent folder pinned at its real path; undefined
 * when it is no longer that path: a folder on it swapped for a link out since
 * would otherwise show the outside file (ELOOP from the pin), and a link
 * swapped in at its end is not followed (lstat). Other OS errors are thrown.
 */
async function statIfStillReal(real: string): Promise<Stats | undefined> {
  try {
    const st = await inPinnedParent(real, (entry) => fsp.lstat(entry));
    return st.isSymbolicLink() ? undefined : st;
  } catch (error) {
    if (errnoOf(error) === 'ELOOP') return undefined;
    throw error;
  }
}

/** What Stat and a listing say of a file or folder. */
function facts(st: Pick<Stats, 'size' | 'mtime'> & { isDirectory(): boolean }): Omit<DirectoryEntry, 'name'> {
  const isDirectory = st.isDirectory();
  return { isDirectory, size: isDirectory ? 0 : st.size, modifiedAt: st.mtime.toISOString() };
}

/**
 * What a listing shows of an entry (undefined when it is gone): a symbolic
 * link that resolves inside the caller's sandbox as what it points to (a
 * folder as a folder, as Stat and every call through it see it); any other
 * link (dangling, or leading out, which every call refuses) as an entry of
 * size 0 with the link's own time, so that nothing of its target shows (a
 * link's own size is the length of the path it holds).
 */
async function entryFacts(
  ctx: CallContext,
  folder: PinnedFolder,
  name: string,
): Promise<Omit<DirectoryEntry, 'name'> | undefined> {
  const own = await fsp.lstat(folder.at(name)).catch(() => undefined);
  if (own === undefined || !own.isSymbolicLink()) return own && facts(own);
  // Where it leads is looked at again through its pinned parent (statIfStillReal) before anything shows.
  const real = await fsp.realpath(folder.at(name)).catch(() => undefined);
  const target =
    real !== undefined && ctx.sandbox.contains(real)
      ? await statIfStillReal(real).catch(() => undefined)
      : undefined;
  return target ? facts(target) : { isDirectory: false, size: 0, modifiedAt: own.mtime.toISOString() };
}

/** The Directories service: mkdir, paged listing, stat and remove, inside the caller's sandbox. */
export function directoriesService(
  log: DurabilityLog = noDurabilityLog,
): DirectoriesImplementation<CallContext> {
  const listings = new ListingCache();
  return {
    async makeDirectory(request, ctx) {
      assertWritable(ctx);
      const target = await ctx.sandbox.resolve(request.path, false);
      if (target.isRoot) {
        if (request.parents) return {};
        throw new RpcError({
          code: 'already_exists',
          message: 'the root already exists',
          details: { reason: 'file_exists', field: 'path' },
        });
      }
      try {
        if (request.parents) await makeFolders(ctx.sandbox.realRoot, target.abs);
        else await inPinnedParent(target.abs, (entry) => fsp.mkdir(entry));
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && request.parents !== true)
          throw missingParent(error, target.display);
        throw fromOsError(error, target.display, 'path');
      }
      // Without pinning, mkdir -p may have followed a link swapped in: recheck the result's real path.
      if (request.parents && !isPinning() && !ctx.sandbox.contains(await fsp.realpath(target.abs)))
        throw outsideRoot(target.display);
      return {};
    },

    async listDirectory(request, ctx) {
      const dir = await ctx.sandbox.resolve(request.path);
      const pageSize = request.pageSize ?? 100;
      const after = request.pageToken === undefined ? undefined : decodeToken(dir.abs, request.pageToken);
      // Pinned at its real path: its entries are looked up in it, whatever is swapped above it meanwhile.
      const folder = await pinFolder(dir.abs).catch((error: unknown) => {
        throw fromOsError(error, dir.display, 'path');
      });
      try {
        const names = await sortedNames(listings, ctx, folder, dir.abs, pageSize).catch((error: unknown) => {
          throw fromOsError(error, dir.display, 'path');
        });
        // The token holds the last name sent: the page starts after it in the names as they are now.
        const start = after === undefined ? 0 : indexAfter(names, after);
        const page = names.slice(start, start + pageSize);
        const entries: DirectoryEntry[] = [];
        for (const name of page) {
          const entry = await entryFacts(ctx, folder, name);
          if (entry !== undefined) entries.push({ name, ...entry }); // else removed while listing
        }
        const last = page[page.length - 1];
        const more = start + pageSize < names.length && last !== undefined;
        return more ? { entries, nextPageToken: encodeToken(dir.abs, last) } : { entries };
      } finally {
        await folder.close();
      }
    },

    async stat(request, ctx) {
      const target = await ctx.sandbox.resolve(request.path);
      try {
        const st = await statIfStillReal(target.abs);
        if (st === undefined) throw outsideRoot(target.display);
        return facts(st);
      } catch (error) {
        throw error instanceof RpcError ? error : fromOsError(error, target.display, 'path');
      }
    },

    async remove(request, ctx) {
      assertWritable(ctx);
      const target = await ctx.sandbox.resolve(request.path, false);
      if (target.isRoot) {
        throw new RpcError({
          code: 'permission_denied',
          message: 'the root cannot be removed',
          details: { reason: 'root_not_removable', field: 'path' },
        });
      }
      let removing = false;
      try {
        // In the parent folder pinned at its real path; the tree walked level by level, never through a link.
        await inPinnedParent(target.abs, async (entry, parent, name) => {
          const st = await fsp.lstat(entry);
          removing = true;
          if (st.isDirectory()) {
            if (request.recursive) await removeTree(parent, name);
            else await fsp.rmdir(entry);
          } else {
            await fsp.unlink(entry);
          }
        });
      } catch (error) {
        // A recursive removal may have removed part of the tree before failing.
        if (removing && request.recursive) log.pathRemoved(target.abs);
        throw fromOsError(error, target.display, 'path');
      }
      // Recovery must not redo earlier prints into whatever is made at this path later.
      log.pathRemoved(target.abs);
      return {};
    },
  };
}
