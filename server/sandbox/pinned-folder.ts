import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { errnoOf } from '../errors/os-errors.js';

const openAsync = promisify(fs.open);
const { O_DIRECTORY, O_NOFOLLOW } = fs.constants;
/**
 * Linux's O_PATH (Node does not export it): a descriptor that names the
 * folder without opening it for reading, so that a folder one may write in
 * but not list (a drop box, mode 0733) can still be pinned; with O_RDONLY
 * every call inside one failed with EACCES. Lookups through
 * /proc/self/fd/<fd> work the same; listing the folder reopens it by that
 * path, which needs read permission as before.
 */
const O_PATH = 0o10000000;

/** open(2) flags of a pin: a folder, never a link in its last component. */
const pinFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW;

/**
 * A folder held open by a descriptor. Node has no openat(2), but on Linux a
 * path through `/proc/self/fd/<fd>/<name>` looks `name` up in the folder the
 * descriptor holds, without walking the folders above it again: a folder on
 * the way swapped for a link out of the root after the check cannot redirect
 * what is done there. Errors name these paths: callers map them by errno
 * (fromOsError) to the client's own path, never showing them.
 */
export interface PinnedFolder {
  /** The folder itself, for readdir. */
  readonly self: string;
  /** The entry `name` of the folder (the folder itself for ''). */
  at(name: string): string;
  /** Releases the descriptor (a no-op without /proc/self/fd). */
  close(): Promise<void>;
}

/** What the kernel names the folder a descriptor holds. */
const procPath = (fd: number): string => `/proc/self/fd/${fd}`;

class HeldFolder implements PinnedFolder {
  readonly self: string;
  constructor(readonly fd: number) {
    this.self = procPath(fd);
  }
  at(name: string): string {
    return `${this.self}/${name}`;
  }
  /** close(2) of a folder is quick: synchronous, it saves a thread-pool round trip per call. */
  async close(): Promise<void> {
    fs.closeSync(this.fd);
  }
}

/** Without /proc/self/fd: the folder by its path, as every call did before pinning. */
class NamedFolder implements PinnedFolder {
  constructor(readonly self: string) {}
  at(name: string): string {
    return path.join(this.self, name);
  }
  async close(): Promise<void> {}
}

/**
 * Whether /proc/self/fd names what a descriptor holds by its real path (Linux
 * with /proc mounted). Checked once, on the served root by Sandbox.create:
 * elsewhere pinning is skipped, and calls go by path as before.
 */
let pinning = false;

/** Whether calls pin folders (else they go by path, as before: no /proc/self/fd here). */
export function isPinning(): boolean {
  return pinning;
}

/** Checks (once per served root) whether folders can be pinned through /proc/self/fd; returns the answer. */
export function probePinning(realRoot: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(realRoot, pinFlags);
    pinning = fs.readlinkSync(procPath(fd)) === realRoot;
  } catch {
    pinning = false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return pinning;
}

/** An OS-like error, for callers that map errnos (fromOsError). */
export const osError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

/**
 * Throws unless the descriptor still holds the folder at `real`: a folder
 * removed since is ENOENT, one reached through a link swapped in on the way
 * (anything else) ELOOP, which callers answer with path_outside_root.
 */
function checkHeld(link: string, real: string): void {
  if (link === real) return;
  throw link === `${real} (deleted)`
    ? osError('ENOENT', 'the folder was removed')
    : osError('ELOOP', 'a link on the way leads elsewhere');
}

/**
 * Pins the folder at `real`, a real path the sandbox resolved and checked
 * inside the root: the descriptor must hold the folder that is at that path
 * now, else the call is refused. OS errors are thrown for the caller to map.
 */
export async function pinFolder(real: string): Promise<PinnedFolder> {
  if (!pinning) return new NamedFolder(real);
  const fd = await openFolder(real);
  try {
    checkHeld(await fsp.readlink(procPath(fd)), real);
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return new HeldFolder(fd);
}

/** Pins the folder `name` of a pinned folder (never through a link): no check needed, the lookup is the folder's own. */
export async function pinChild(parent: PinnedFolder, name: string): Promise<PinnedFolder> {
  if (!(parent instanceof HeldFolder)) return new NamedFolder(parent.at(name));
  return new HeldFolder(await openFolder(parent.at(name)));
}

/**
 * open(2) of a folder with pinFlags. Linux answers ENOTDIR, not ELOOP, when
 * the last component is a link (O_DIRECTORY is checked first): a link there
 * is told apart from a file, so that callers answer path_outside_root for it.
 */
async function openFolder(at: string): Promise<number> {
  try {
    return await openAsync(at, pinFlags);
  } catch (error) {
    if (errnoOf(error) !== 'ENOTDIR') throw error;
    const st = await fsp.lstat(at).catch(() => undefined);
    throw st?.isSymbolicLink() ? osError('ELOOP', 'a link where a folder was') : error;
  }
}

/**
 * Runs `use` on the entry a real path names, looked up in its pinned parent
 * folder (then released). `use` gets the entry's path and the folder.
 */
export async function inPinnedParent<T>(
  real: string,
  use: (entry: string, parent: PinnedFolder, name: string) => Promise<T>,
): Promise<T> {
  const parent = await pinFolder(path.dirname(real));
  const name = path.basename(real);
  try {
    return await use(parent.at(name), parent, name);
  } finally {
    await parent.close();
  }
}

/**
 * The synchronous pin of a parent folder for a reopen in the descriptor pool:
 * opens `real`'s entry in its parent folder, held by a descriptor that must
 * still be at `dirname(real)`; else throws with code ESTALE (the path no longer
 * names the same place).
 */
export function openInPinnedParentSync(real: string, flags: number): number {
  if (!pinning) return fs.openSync(real, flags);
  const dir = fs.openSync(path.dirname(real), pinFlags);
  try {
    if (fs.readlinkSync(procPath(dir)) !== path.dirname(real)) {
      throw osError('ESTALE', 'the folder is no longer at its path');
    }
    return fs.openSync(`${procPath(dir)}/${path.basename(real)}`, flags);
  } finally {
    fs.closeSync(dir);
  }
}
