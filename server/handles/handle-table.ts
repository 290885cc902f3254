import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { errnoOf, fromOsError } from '../errors/os-errors.js';
import { newId } from '../leases/ids.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseTable } from '../leases/lease-table.js';
import type { Tombstone } from '../leases/tombstones.js';
import { DescriptorPool, type PooledFile } from './descriptor-pool.js';

const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);
const fstatAsync = promisify(fs.fstat);
const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;

/** How a handle was opened. */
export type OpenMode = 'read' | 'write' | 'append';

/**
 * An open handle: a file position and mode under a lease, with a pooled
 * descriptor. A class, so that 100 000 of them share one shape; it holds no
 * string twice (the id is the table's key, the principal is the token's).
 */
export class Handle implements PooledFile {
  fd = -1;
  busy = 0;
  /** Last applied print sequence number. */
  lastSeq = 0;

  constructor(
    readonly id: string,
    readonly principal: string,
    readonly lease: Lease,
    readonly mode: OpenMode,
    /** The client's path (messages name only this). */
    readonly display: string,
    readonly abs: string,
    readonly reopenFlags: number,
    readonly dev: number,
    readonly ino: number,
    /** Next offset of a write handle, or the read position of a read handle. */
    public position: number,
  ) {}
}

/** What RemoteOpen asks for, after path resolution. */
export interface OpenRequest {
  abs: string;
  display: string;
  mode: OpenMode;
  create: boolean;
  exclusive: boolean;
  truncate: boolean;
}

/** Options of the handle table. */
export interface HandleTableOptions {
  clock: Clock;
  leases: LeaseTable;
  maxDescriptors: number;
  maxPerPrincipal: number;
}

/** Errnos of a reopen that mean the path no longer names the handle's file. */
const goneOnReopen = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENXIO', 'ESTALE']);

/**
 * Every open handle: lookup by id for its principal, the one code path that
 * closes a handle, and the descriptor pool behind them.
 */
export class HandleTable {
  private readonly handles = new Map<string, Handle>();
  private readonly perPrincipal = new Map<string, number>();
  readonly pool: DescriptorPool;

  constructor(private readonly options: HandleTableOptions) {
    this.pool = new DescriptorPool(options.maxDescriptors);
  }

  /** Open handles now. */
  get size(): number {
    return this.handles.size;
  }

  /** Opens a file and registers a handle under `lease` (which must still live once the file is open). */
  async open(principal: string, request: OpenRequest, lease: Lease): Promise<Handle> {
    const count = this.perPrincipal.get(principal) ?? 0;
    if (count >= this.options.maxPerPrincipal) {
      throw new RpcError({
        code: 'resource_exhausted',
        message: `too many open handles (limit ${this.options.maxPerPrincipal})`,
        details: { reason: 'too_many_handles' },
        retryAfterSeconds: 1,
      });
    }
    const { flags, reopenFlags } = openFlags(request);
    let fd: number;
    try {
      fd = await openAsync(request.abs, flags | O_NOFOLLOW, 0o644);
    } catch (error) {
      throw fromOsError(error, request.display);
    }
    let st: fs.Stats;
    try {
      st = await fstatAsync(fd);
      if (st.isDirectory()) {
        throw new RpcError({
          code: 'failed_precondition',
          message: `is a directory: ${request.display}`,
          details: { reason: 'is_a_directory', field: 'path' },
        });
      }
      // The lease may have ended, or run out unswept, while the file was opening.
      if (this.options.leases.expireIfDue(lease)) {
        throw this.options.leases.goneError(principal, lease.id, 'lease', 'leaseId');
      }
    } catch (error) {
      fs.closeSync(fd);
      throw error instanceof RpcError ? error : fromOsError(error, request.display);
    }
    const handle = new Handle(
      newId('h_'),
      principal,
      lease,
      request.mode,
      request.display,
      request.abs,
      reopenFlags,
      st.dev,
      st.ino,
      request.mode === 'append' ? st.size : 0,
    );
    this.pool.adopt(handle, fd);
    this.handles.set(handle.id, handle);
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    lease.attach(handle);
    return handle;
  }

  /** The caller's live handle, or lease_expired / lease_revoked / not_found. */
  get(principal: string, id: string): Handle {
    const handle = this.handles.get(id);
    if (handle === undefined || handle.principal !== principal) {
      throw this.options.leases.goneError(principal, id, 'handle', 'handle');
    }
    // Ended (its handles are being closed in slices), or expired but not yet swept: the answer is exact anyway.
    if (this.options.leases.expireIfDue(handle.lease))
      throw this.options.leases.endedError(handle.lease, 'handle');
    return handle;
  }

  /** Writes bytes through a write or append handle; returns the offset they landed at. */
  write(handle: Handle, bytes: Buffer): number {
    if (handle.mode === 'read') {
      throw new RpcError({
        code: 'failed_precondition',
        message: 'handle is open for read',
        details: { reason: 'handle_not_writable', field: 'handle' },
      });
    }
    const fd = this.descriptor(handle);
    try {
      if (handle.mode === 'append') {
        const offset = fs.fstatSync(fd).size;
        writeAll(fd, bytes, null);
        handle.position = offset + bytes.length;
        return offset;
      }
      const offset = handle.position;
      writeAll(fd, bytes, offset);
      handle.position = offset + bytes.length;
      return offset;
    } catch (error) {
      throw fromOsError(error, handle.display);
    }
  }

  /** Reads up to `length` bytes at `offset` (or at the handle's position, advancing it). */
  async read(
    handle: Handle,
    offset: number | undefined,
    length: number,
  ): Promise<{ bytes: Buffer; offset: number; eof: boolean }> {
    if (handle.mode !== 'read') {
      throw new RpcError({
        code: 'failed_precondition',
        message: `handle is open for ${handle.mode}`,
        details: { reason: 'handle_not_readable', field: 'handle' },
      });
    }
    const at = offset ?? handle.position;
    const fd = this.descriptor(handle);
    // Busy: neither the pool nor a close may release the descriptor while the read is in flight.
    handle.busy++;
    try {
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await readAsync(fd, buffer, 0, length, at);
      const size = (await fstatAsync(fd)).size;
      if (offset === undefined) handle.position = at + bytesRead;
      return { bytes: buffer.subarray(0, bytesRead), offset: at, eof: at + bytesRead >= size };
    } catch (error) {
      throw fromOsError(error, handle.display);
    } finally {
      handle.busy--;
      // Closed while the read was in flight: the descriptor is released now that nothing uses it.
      if (handle.busy === 0 && this.handles.get(handle.id) !== handle) this.releaseQuietly(handle);
    }
  }

  /**
   * The one code path that closes a handle: it leaves the table and its lease,
   * its descriptor is released (writes are synchronous, so nothing is pending),
   * and, when its lease ended, its id is remembered with the lease's tombstone.
   */
  close(handle: Handle, ended?: Tombstone): void {
    if (!this.handles.delete(handle.id)) return;
    const left = (this.perPrincipal.get(handle.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(handle.principal);
    else this.perPrincipal.set(handle.principal, left);
    handle.lease.detach(handle);
    if (handle.busy === 0) this.releaseQuietly(handle);
    if (ended !== undefined && ended.until > 0) {
      this.options.leases.tombstones.add(handle.id, ended, this.options.clock.now());
    }
  }

  /** Closes the handles of an ended lease until `deadline` (performance.now() time); true when all are closed. */
  closeLease(lease: Lease, deadline = Number.POSITIVE_INFINITY): boolean {
    let closed = 0;
    for (const member of lease.members()) {
      const handle = this.handles.get(member.id);
      if (handle === undefined) lease.detach(member);
      else this.close(handle, lease.ended);
      if (++closed % 64 === 0 && performance.now() >= deadline) return lease.size === 0;
    }
    return lease.size === 0;
  }

  /** Closes everything (shutdown). */
  closeAll(): void {
    for (const handle of [...this.handles.values()]) this.close(handle);
  }

  /** The handle's descriptor, reopened if the pool had parked it. */
  private descriptor(handle: Handle): number {
    try {
      return this.pool.acquire(handle);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === undefined || !goneOnReopen.has(errno)) throw fromOsError(error, handle.display);
      throw new RpcError({
        code: 'failed_precondition',
        message: `the file of this handle was removed, renamed or replaced: ${handle.display}`,
        details: { reason: 'file_removed', field: 'handle' },
      });
    }
  }

  private releaseQuietly(handle: Handle): void {
    try {
      this.pool.release(handle);
    } catch {
      // close(2) failing leaves nothing to undo: the descriptor is gone either way.
    }
  }
}

function openFlags(request: OpenRequest): { flags: number; reopenFlags: number } {
  const base =
    request.mode === 'read' ? O_RDONLY : request.mode === 'append' ? O_WRONLY | O_APPEND : O_WRONLY;
  let flags = base;
  if (request.mode !== 'read') {
    if (request.create) flags |= O_CREAT;
    if (request.create && request.exclusive) flags |= O_EXCL;
    if (request.truncate && request.mode === 'write') flags |= O_TRUNC;
  }
  return { flags, reopenFlags: base };
}

function writeAll(fd: number, bytes: Buffer, position: number | null): void {
  let done = 0;
  while (done < bytes.length) {
    const n = fs.writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
    done += n;
  }
}
