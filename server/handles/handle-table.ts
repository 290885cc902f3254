import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { errnoOf, fromOsError, notRegularFile } from '../errors/os-errors.js';
import { newId } from '../leases/ids.js';
import { Lease, type LeaseMember } from '../leases/lease.js';
import type { LeaseMembers, LeaseTable } from '../leases/lease-table.js';
import { type DurabilityLog, noDurabilityLog, type PrintCall } from '../redo-log/durability-log.js';
import type { RecoveredHandle } from '../redo-log/recovery.js';
import { inPinnedParent } from '../sandbox/pinned-folder.js';
import { DescriptorPool, type PooledFile } from './descriptor-pool.js';
import { PrintBatch, type PrintResult } from './print-batch.js';

const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);
const fstatAsync = promisify(fs.fstat);
const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

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
    /** Birth time of the file (ms, fractional); 0 when unknown, and then a reopen checks device and inode only. */
    readonly birth = 0,
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
  /** Where opens, prints and closes are recorded to survive a crash (default: nowhere). */
  log?: DurabilityLog;
}

/** Errnos of a reopen that mean the path no longer names the handle's file. */
const goneOnReopen = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENXIO', 'ESTALE']);

/**
 * Every open handle: lookup by id for its principal, the one code path that
 * closes a handle, and the descriptor pool behind them. A handle closed
 * because its lease ended stays in the map with the ended lease as its value:
 * that lease is its tombstone until the lease table forgets it.
 */
export class HandleTable implements LeaseMembers {
  private readonly handles = new Map<string, Handle | Lease>();
  private openCount = 0;
  private readonly perPrincipal = new Map<string, number>();
  /** The lease whose Set of handles is being closed across slices, and where its closing loop stands. */
  private closing: { lease: Lease; members: Iterator<LeaseMember> } | undefined;
  readonly pool: DescriptorPool;
  /** Where opens, prints and closes are recorded (the no-op log without a state directory). */
  readonly log: DurabilityLog;
  /** Prints waiting for the end of this turn of the event loop. */
  private readonly prints: PrintBatch;

  constructor(private readonly options: HandleTableOptions) {
    this.pool = new DescriptorPool(options.maxDescriptors);
    this.log = options.log ?? noDurabilityLog;
    this.prints = new PrintBatch((handle) => this.descriptor(handle), this.log);
    options.leases.attachMembers(this);
  }

  /** Open handles now. */
  get size(): number {
    return this.openCount;
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
      // O_NONBLOCK: a FIFO must not block open(2), which would hold a threadpool thread until a
      // writer came (a few such opens wedged every other file call); it is refused below.
      // In the parent folder pinned at its real path: a folder on the way swapped for a link
      // out of the root since the path was resolved does not take the open there.
      fd = await inPinnedParent(request.abs, (entry) =>
        openAsync(entry, flags | O_NOFOLLOW | O_NONBLOCK, 0o644),
      );
    } catch (error) {
      // ENXIO: a FIFO opened for writing with no reader.
      throw errnoOf(error) === 'ENXIO'
        ? notRegularFile(request.display)
        : fromOsError(error, request.display, 'path');
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
      if (!st.isFile()) throw notRegularFile(request.display);
      // The lease may have ended, or run out unswept, while the file was opening.
      if (this.options.leases.expireIfDue(lease)) {
        throw this.options.leases.goneError(lease, principal, 'lease', 'leaseId');
      }
    } catch (error) {
      fs.closeSync(fd);
      throw error instanceof RpcError ? error : fromOsError(error, request.display, 'path');
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
      st.birthtimeMs,
    );
    try {
      this.log.handleOpened(handle, request.truncate && request.mode === 'write');
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    this.pool.adopt(handle, fd);
    this.handles.set(handle.id, handle);
    this.openCount++;
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    lease.attach(handle);
    return handle;
  }

  /** Puts back a handle the redo log recovered, under its restored lease; its descriptor reopens on first use. */
  restore(r: RecoveredHandle, lease: Lease): Handle {
    const { id, principal, mode, display, abs, reopenFlags, dev, ino, position, birth } = r;
    const handle = new Handle(
      id,
      principal,
      lease,
      mode,
      display,
      abs,
      reopenFlags,
      dev,
      ino,
      position,
      birth,
    );
    handle.lastSeq = r.lastSeq;
    this.handles.set(id, handle);
    this.openCount++;
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    lease.attach(handle);
    return handle;
  }

  /** Every open handle (a checkpoint reads them). */
  *openHandles(): IterableIterator<Handle> {
    for (const found of this.handles.values()) if (found instanceof Handle) yield found;
  }

  /** The caller's live handle, or lease_expired / lease_revoked / not_found. */
  get(principal: string, id: string): Handle {
    const found = this.handles.get(id);
    const { leases } = this.options;
    if (found instanceof Lease) throw leases.goneError(found, principal, 'handle', 'handle');
    if (found === undefined || found.principal !== principal) {
      throw leases.goneError(undefined, principal, 'handle', 'handle');
    }
    // Ended (its handles are being closed in slices), or expired but not yet swept: the answer is exact anyway.
    if (leases.expireIfDue(found.lease)) throw leases.goneError(found.lease, principal, 'handle', 'handle');
    return found;
  }

  /**
   * Prints bytes through a write or append handle as print `seq` of `call`. The print is queued and written with the
   * other prints of this turn of the event loop (see print-batch.ts): logged
   * before its bytes reach the file (write-ahead), so that recovery can redo
   * it and a retry after a crash cannot append it twice. With a fingerprint in
   * `call` (a keyed HTTP call), the record stands for the call's stored answer too.
   */
  print(handle: Handle, bytes: Buffer, seq: number, call: PrintCall): Promise<PrintResult> {
    if (handle.mode === 'read') {
      throw new RpcError({
        code: 'failed_precondition',
        message: 'handle is open for read',
        details: { reason: 'handle_not_writable', field: 'handle' },
      });
    }
    return this.prints.add(handle, bytes, seq, call);
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
   * The one code path that closes a handle: it leaves its lease, its
   * descriptor is released (writes are synchronous, so nothing is pending),
   * and, when its lease has ended, its id keeps answering with the lease's
   * tombstone instead of disappearing.
   */
  close(handle: Handle): void {
    if (this.handles.get(handle.id) !== handle) return;
    // Prints queued before the close are written first.
    if (this.prints.pending) this.prints.flush();
    this.log.handleClosed(handle);
    const { lease } = handle;
    if (this.options.leases.remembers(lease)) {
      this.handles.set(handle.id, lease);
      this.options.leases.rememberClosed(lease, handle.id);
    } else {
      this.handles.delete(handle.id);
    }
    this.openCount--;
    const left = (this.perPrincipal.get(handle.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(handle.principal);
    else this.perPrincipal.set(handle.principal, left);
    lease.detach(handle);
    if (handle.busy === 0) this.releaseQuietly(handle);
  }

  /** Closes the handles of an ended lease until `deadline` (performance.now() time); true when all are closed. */
  closeLease(lease: Lease, deadline = Number.POSITIVE_INFINITY): boolean {
    const single = lease.single();
    if (single !== undefined) this.closeMember(lease, single);
    if (lease.size === 0) return true;
    if (this.closing?.lease !== lease) {
      const members = lease.members();
      if (members === undefined) return lease.size === 0;
      this.closing = { lease, members };
    }
    for (let closed = 1; ; closed++) {
      const next = this.closing.members.next();
      if (next.done) break;
      this.closeMember(lease, next.value);
      if (closed % 64 === 0 && performance.now() >= deadline) return lease.size === 0;
    }
    this.closing = undefined;
    return lease.size === 0;
  }

  /** Puts back the tombstone of a handle an ended lease closed before a restart (see LeaseTable.restoreEnded). */
  restoreTombstone(id: string, lease: Lease): void {
    if (this.handles.has(id)) return;
    this.handles.set(id, lease);
    this.options.leases.rememberClosed(lease, id);
  }

  /** Drops the tombstones of the handles an ended lease closed; returns how many ids it had counted. */
  forgetLease(lease: Lease): number {
    const ids = lease.closedIds();
    for (const id of ids) if (this.handles.get(id) === lease) this.handles.delete(id);
    return ids.length;
  }

  /** Closes everything (shutdown). */
  closeAll(): void {
    for (const found of [...this.handles.values()]) if (!(found instanceof Lease)) this.close(found);
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

  private closeMember(lease: Lease, member: LeaseMember): void {
    const found = this.handles.get(member.id);
    if (found instanceof Lease || found === undefined) lease.detach(member);
    else this.close(found);
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
