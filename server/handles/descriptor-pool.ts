import fs from 'node:fs';

/** What the pool needs to know of a handle to (re)open its descriptor. */
export interface PooledFile {
  /** Absolute host path the handle was opened at. */
  readonly abs: string;
  /** open(2) flags for a reopen (never O_CREAT, O_EXCL or O_TRUNC). */
  readonly reopenFlags: number;
  /** The descriptor while held, else -1. */
  fd: number;
  /** Calls in flight that use the descriptor; a busy descriptor is never evicted. */
  busy: number;
}

/**
 * A bounded pool of OS descriptors for handles (contract section 5: handles are
 * not descriptors). Descriptors are kept in least-recently-used order; past the
 * bound the least recently used idle one is closed, and reopened on demand.
 */
export class DescriptorPool {
  /** Held files in LRU order (Map iteration order: oldest first). */
  private readonly held = new Map<PooledFile, true>();
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
    this.held.set(file, true);
    this.evictOverflow();
  }

  /** The file's descriptor, reopening it if it was evicted; marks it most recently used. */
  acquire(file: PooledFile): number {
    if (file.fd >= 0) {
      this.held.delete(file);
      this.held.set(file, true);
      return file.fd;
    }
    file.fd = fs.openSync(file.abs, file.reopenFlags | fs.constants.O_NOFOLLOW);
    this.reopens++;
    this.held.set(file, true);
    this.evictOverflow();
    return file.fd;
  }

  /** Closes and forgets a file's descriptor (handle closed). */
  release(file: PooledFile): void {
    if (file.fd < 0) return;
    this.held.delete(file);
    const fd = file.fd;
    file.fd = -1;
    fs.closeSync(fd);
  }

  private evictOverflow(): void {
    if (this.held.size <= this.maxDescriptors) return;
    for (const victim of this.held.keys()) {
      if (this.held.size <= this.maxDescriptors) break;
      if (victim.busy > 0) continue;
      this.release(victim);
    }
  }
}
