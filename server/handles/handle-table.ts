import fs from 'node:fs';
import { promisify } from 'node:util';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { fromOsError } from '../errors/os-errors.js';
import { type Lease, type LeaseTable, newId } from '../leases/lease-table.js';
import { DescriptorPool, type PooledFile } from './descriptor-pool.js';

const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);
const fstatAsync = promisify(fs.fstat);
const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;

/** How a handle was opened. */
export type OpenMode = 'read' | 'write' | 'append';

/** An open handle: a file position and mode under a lease, with a pooled descriptor. */
export interface Handle extends PooledFile {
  readonly id: string;
  readonly principal: string;
  readonly display: string;
  readonly mode: OpenMode;
  readonly lease: Lease;
  /** Next offset of a write handle, or the read position of a read handle. */
  position: number;
  /** Last applied print sequence number. */
  lastSeq: number;
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

  /** Opens a file and registers a handle under `lease`. */
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
    let position = 0;
    try {
      const st = await fstatAsync(fd);
      if (st.isDirectory()) {
        throw new RpcError({
          code: 'failed_precondition',
          message: `is a directory: ${request.display}`,
          details: { reason: 'is_a_directory', field: 'path' },
        });
      }
      if (request.mode === 'append') position = st.size;
    } catch (error) {
      fs.closeSync(fd);
      throw error instanceof RpcError ? error : fromOsError(error, request.display);
    }
    if (!lease.alive) {
      fs.closeSync(fd);
      throw this.options.leases.goneError(principal, lease.id, 'lease', 'leaseId');
    }
    const handle: Handle = {
      id: newId('h_'),
      principal,
      display: request.display,
      mode: request.mode,
      abs: request.abs,
      reopenFlags,
      fd: -1,
      busy: 0,
      lease,
      position,
      lastSeq: 0,
    };
    this.pool.adopt(handle, fd);
    this.handles.set(handle.id, handle);
    this.perPrincipal.set(principal, count + 1);
    lease.handles.add(handle.id);
    return handle;
  }

  /** The caller's handle (renewing its lease), or lease_expired / not_found. */
  get(principal: string, id: string): Handle {
    const handle = this.handles.get(id);
    if (handle === undefined || handle.principal !== principal) {
      throw this.options.leases.goneError(principal, id, 'handle', 'handle');
    }
    if (handle.lease.expiresAt <= this.options.clock.now()) {
      // Expired but not yet swept: end the lease now so the answer is exact.
      this.options.leases.get(principal, handle.lease.id, 'handle');
    }
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
    try {
      const fd = this.pool.acquire(handle);
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
  async read(handle: Handle, offset: number | undefined, length: number): Promise<{ bytes: Buffer; offset: number; eof: boolean }> {
    if (handle.mode !== 'read') {
      throw new RpcError({
        code: 'failed_precondition',
        message: `handle is open for ${handle.mode}`,
        details: { reason: 'handle_not_readable', field: 'handle' },
      });
    }
    const at = offset ?? handle.position;
    handle.busy++;
    try {
      const fd = this.pool.acquire(handle);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await readAsync(fd, buffer, 0, length, at);
      const size = (await fstatAsync(fd)).size;
      if (offset === undefined) handle.position = at + bytesRead;
      return { bytes: buffer.subarray(0, bytesRead), offset: at, eof: at + bytesRead >= size };
    } catch (error) {
      throw fromOsError(error, handle.display);
    } finally {
      handle.busy--;
    }
  }

  /** The one code path that closes a handle: descriptor released, lease detached. */
  close(handle: Handle): void {
    if (!this.handles.delete(handle.id)) return;
    const left = (this.perPrincipal.get(handle.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(handle.principal);
    else this.perPrincipal.set(handle.principal, left);
    handle.lease.handles.delete(handle.id);
    try {
      this.pool.release(handle);
    } catch {
      // close(2) errors leave nothing to undo; the descriptor is gone either way.
    }
  }

  /** Closes every handle of an ended lease and leaves tombstones for them. */
  closeLease(lease: Lease, reason: 'lease_expired' | 'lease_revoked'): void {
    const until = this.options.clock.now() + 10 * lease.ttlMs;
    for (const id of lease.handles) {
      const handle = this.handles.get(id);
      if (handle === undefined) continue;
      this.close(handle);
      this.options.leases.tombstones.add(id, { principal: handle.principal, reason, until });
    }
    lease.handles.clear();
  }

  /** Closes everything (shutdown). */
  closeAll(): void {
    for (const handle of [...this.handles.values()]) this.close(handle);
  }
}

function openFlags(request: OpenRequest): { flags: number; reopenFlags: number } {
  const base = request.mode === 'read' ? O_RDONLY : request.mode === 'append' ? O_WRONLY | O_APPEND : O_WRONLY;
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
