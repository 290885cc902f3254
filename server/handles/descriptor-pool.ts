import fs from 'node:fs';
import { openInPinnedParentSync } from '../sandbox/pinned-folder.js';
import { isSameFile } from './file-identity.js';

const { O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** What the pool needs to know of a handle to (re)open its descriptor. */
export interface PooledFile {
  /** Absolute host path the handle was opened at. */
  readonly abs: string;
  /** open(2) flags for a reopen: the access mode and O_APPEND, never O_CREAT, O_EXCL or O_TRUNC. */
  readonly reopenFlags: number;
  /**
   * Device, inode and birth time of the file the handle opened: a reopen must
   * find this very file. The birth time tells a new file from the removed one
   * when the file system hands the freed inode number straight out again
   * (ext4 does); where no birth time is known (0), device and inode decide.
   */
  readonly dev: number;
  readonly ino: number;
  readonly birth: number;
  /** The descriptor while held, else -1. */
  fd: number;
  /** Calls in flight that use the descriptor; a busy descriptor is never evicted or closed. */
  busy: number;
}

/** A reopen found another file (or none) at the handle's path. */
export class StaleFileError extends Error {
  readonly code = 'ESTALE';
}

/**
 * A bounded pool of OS descriptors for handles (contract section 5: handles are
 * not descriptors). Descriptors are kept in least-recently-used order; past the
 * bound the least recently used idle one is closed, and reopened on demand.
 *
 * A reopen goes by path, so it can only be exact if the path still names the
 * file the handle opened: the pool checks device, inode and birth time and refuses
 * anything else (`StaleFileError`) rather than write into another file. A file
 * removed, renamed or replaced while its handle's descriptor was parked is
 * therefore gone for that handle, whereas a handle that kept its descriptor
 * would still reach the unlinked file. Callers answer it as such
 * (failed_precondition, reason file_removed).
 */
export class DescriptorPool {
  /** Held files in LRU order (Set iteration order: oldest first). */
  private readonly held = new Set<PooledFile>();
  /** Reopens since start (metrics). */
  reopens = 0;

  constructor(private readonly maxDescriptors: number) {}

  /** Descriptors held now. */
  get size(): number {
    return this.held.size;
  }

  /** Adopts a descriptor just opened for a new handle. */
  adopt(file: PooledFile, fd: number): void {
    file.fd = fd;
    this.held.add(file);
    this.evictOverflow();
  }

  /** The file's descriptor, reopening it if it was evicted; marks it most recently used. */
  acquire(file: PooledFile): number {
    if (file.fd >= 0) {
      this.held.delete(file);
      this.held.add(file);
      return file.fd;
    }
    // O_NONBLOCK: should the path now name a FIFO, open(2) must fail rather than block the event loop.
    // In the parent folder pinned at its real path, so that nothing outside the root is opened even
    // briefly through a folder swapped for a link (the identity check below would refuse it after).
    const fd = openInPinnedParentSync(file.abs, file.reopenFlags | O_NOFOLLOW | O_NONBLOCK);
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    if (!isSameFile(st, file)) {
      fs.closeSync(fd);
      throw new StaleFileError('the path names another file than the one the handle opened');
    }
    this.reopens++;
    file.fd = fd;
    this.held.add(file);
    this.evictOverflow();
    return fd;
  }

  /** Closes and forgets a file's descriptor (its handle closed); the caller makes sure it is not busy. */
  release(file: PooledFile): void {
    if (file.fd < 0) return;
    this.held.delete(file);
    const fd = file.fd;
    file.fd = -1;
    fs.closeSync(fd);
  }

  private evictOverflow(): void {
    if (this.held.size <= this.maxDescriptors) return;
    for (const victim of this.held) {
      if (this.held.size <= this.maxDescriptors) break;
      if (victim.busy > 0) continue;
      try {
        this.release(victim);
      } catch {
        // close(2) failing leaves nothing to undo: the descriptor is gone either way.
      }
    }
  }
}
