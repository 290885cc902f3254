import fs from 'node:fs';
import { join } from 'node:path';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { fileKey } from '../handles/file-identity.js';
import { scopedKey } from '../idempotency/memory-store.js';
import {
  checkpointSize,
  type DataFile,
  liveState,
  type SnapshotSource,
  syncDataFiles,
  writeCheckpoint,
} from './checkpoint.js';
import { FrameEncoder } from './codec.js';
import type { DurabilityLog, InDoubtResult, LoggedHandle, LoggedLease, PrintCall } from './durability-log.js';
import { type FsyncMode, LogWriter } from './log-writer.js';
import {
  formatVersion,
  type IdempotencyRecord,
  type LogRecord,
  openRecord,
  type PrintRecord,
  tombstoneRecord,
} from './records.js';
import { type InDoubtPrint, type RecoveredState, recover } from './recovery.js';
import { checkpointName, listStateFiles, lockStateDir, logName } from './state-dir.js';

/** Options of the redo log. */
export interface RedoLogOptions {
  /** The state directory (created beforehand). */
  readonly stateDir: string;
  /** The served root, absolute (recorded, and checked at recovery). */
  readonly root: string;
  readonly fsync: FsyncMode;
  readonly clock: Clock;
  /** Log size that starts a checkpoint (default 64 MiB; at least the last checkpoint's size, so that checkpoints cost at most as much I/O as the log). */
  readonly checkpointBytes?: number;
  /** Longest wait before a background fdatasync in `batch` mode, in ms (LogWriter's default when absent). */
  readonly batchMs?: number;
}

/** Counters of the redo log (metrics, tests). */
export interface RedoLogStats {
  records: number;
  bytes: number;
  checkpoints: number;
  generation: number;
}

/** A promise with its settlers, for the replies waiting on the next flush. */
interface Flushed {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function flushed(): Flushed {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting when a flush fails (the callers that must know are told by the throw).
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * The redo log of a server with a state directory: records what the live
 * state does (see {@link DurabilityLog}) and the idempotency store's
 * completions, checkpoints the state when the log grows, and on shutdown.
 * `RedoLog.open` recovers the directory first.
 */
export class RedoLog implements DurabilityLog {
  private writer: LogWriter;
  /** Whether the last flush failed (see `health`). */
  private lastFlushFailed = false;
  private generation: number;
  private source: SnapshotSource | undefined;
  /**
   * The files written during the current generation, synced before a
   * checkpoint drops it: a small record per file and path (see `dirtied`),
   * not the handles, which kept every handle written to (with its lease,
   * paths and closed ids) alive until the next checkpoint, however long ago
   * it was closed or abandoned.
   */
  private dirty = new Map<string, DataFile>();
  /** Handles whose file is in `dirty` already: a print looks its handle up here rather than build a key (weak: it keeps none alive). */
  private dirtyHandles = new WeakSet<LoggedHandle>();
  /** The expiresAt last logged per lease id (renewals are logged lazily against it). */
  private readonly loggedExpiry = new Map<string, number>();
  private readonly inDoubt = new Map<string, InDoubtPrint[]>();
  private inDoubtLeft = 0;
  private checkpointing: Promise<void> | undefined;
  private threshold: number;
  private closed = false;
  private readonly unlock: () => void;
  /**
   * Records not yet written: they are encoded here and written together by
   * one write(2) at the next flush (group commit of the write itself). A
   * record whose effect must not happen before it is in the file flushes at
   * once; prints are flushed by the handle table before their bytes are
   * written; idempotency completions at the end of the current tick. No reply
   * leaves before the records written for it (see `beforeReply`).
   */
  private readonly pending = new FrameEncoder();
  private pendingRecords = 0;
  private flushQueued = false;
  /** The replies waiting for the pending records. */
  private waiting: Flushed | undefined;
  readonly stats: RedoLogStats;

  private constructor(
    private readonly options: RedoLogOptions,
    recovered: RecoveredState,
    unlock: () => void,
  ) {
    this.unlock = unlock;
    this.generation = recovered.generation;
    this.threshold = Math.max(
      this.minThreshold,
      checkpointSize(options.stateDir, recovered.stats.checkpoint),
    );
    this.stats = { records: 0, bytes: 0, checkpoints: 0, generation: this.generation };
    this.writer = LogWriter.open(
      this.logPath(this.generation),
      recovered.logSize,
      options.fsync,
      options.batchMs,
    );
    if (recovered.logSize === 0) this.writeMeta();
    for (const lease of recovered.leases) this.loggedExpiry.set(lease.id, lease.expiresAt);
    for (const p of recovered.inDoubt) {
      const k = scopedKey(p.principal, p.key);
      // A copy: the recovered bytes are views into the whole log file as read.
      this.inDoubt.set(k, [...(this.inDoubt.get(k) ?? []), { ...p, bytes: Buffer.from(p.bytes) }]);
      this.inDoubtLeft++;
    }
  }

  /** Locks the state directory, recovers it (redoing logged writes) and opens the log for appending. */
  static open(options: RedoLogOptions): { log: RedoLog; recovered: RecoveredState } {
    const unlock = lockStateDir(options.stateDir);
    try {
      const recovered = recover(options.stateDir, { root: options.root });
      return { log: new RedoLog(options, recovered, unlock), recovered };
    } catch (error) {
      unlock();
      throw error;
    }
  }

  /** Where checkpoints read the live state. */
  setSnapshotSource(source: SnapshotSource): void {
    this.source = source;
  }

  get inDoubtCount(): number {
    return this.inDoubtLeft;
  }

  leaseGranted(lease: LoggedLease): void {
    const { id, principal, ttlMs, expiresAt, solo } = lease;
    this.append({ type: 'lease', id, principal, ttlMs, expiresAt, solo, at: this.options.clock.now() }, true);
    this.loggedExpiry.set(id, expiresAt);
  }

  /**
   * Logs a renewal only when the logged expiry is more than ttlMs/2 behind
   * the new one, so a lease renewed by every print costs a record per half
   * TTL, not per print. The logged expiry is thus never more than ttlMs/2
   * early, which recovery relies on to drop leases that had surely expired.
   */
  leaseRenewed(lease: LoggedLease): void {
    const logged = this.loggedExpiry.get(lease.id);
    if (logged !== undefined && lease.expiresAt - logged <= lease.ttlMs / 2) return;
    if (
      this.append(
        { type: 'renew', id: lease.id, expiresAt: lease.expiresAt, at: this.options.clock.now() },
        false,
      )
    ) {
      this.loggedExpiry.set(lease.id, lease.expiresAt);
    }
  }

  leaseEnded(lease: LoggedLease): void {
    this.loggedExpiry.delete(lease.id);
    // An expired or revoked lease's tombstone record stands for its end; a discarded one has none.
    this.append(tombstoneRecord(lease) ?? { type: 'lease-end', id: lease.id }, false);
  }

  handleOpened(handle: LoggedHandle, truncated: boolean): void {
    this.append(openRecord(handle, truncated), true);
    if (handle.mode !== 'read') this.dirtied(handle);
  }

  printing(handle: LoggedHandle, offset: number, bytes: Uint8Array, seq: number, call: PrintCall): void {
    const { idempotencyKey: key, answerFingerprint: fingerprint } = call;
    const answer =
      fingerprint === undefined
        ? undefined
        : { fingerprint, leaseRemainingMs: call.leaseRemainingMs, at: this.options.clock.now() };
    const record: PrintRecord = { type: 'print', handle: handle.id, offset, seq, key, bytes, answer };
    call.answerLogged = answer !== undefined;
    // Buffered only: the handle table flushes once for all the prints of a turn, before writing their bytes.
    this.append(record, true, 'buffer');
    this.dirtied(handle);
  }

  printFailed(handle: LoggedHandle, offset: number, seq: number): void {
    this.append({ type: 'print-abort', handle: handle.id, offset, seq }, false);
  }

  handleClosed(handle: LoggedHandle): void {
    this.append({ type: 'close', handle: handle.id }, false);
  }

  pathRemoved(abs: string): void {
    this.append({ type: 'remove', abs }, false);
  }

  /** Records a keyed call's final response (before it is sent or replayed to anyone). */
  idempotencyCompleted(record: Omit<IdempotencyRecord, 'type'>): void {
    // Deferred: written with the other records of this tick, before any reply (see beforeReply).
    this.append({ type: 'idem', ...record }, true, 'tick');
  }

  takeInDoubt(
    principal: string,
    key: string,
    handle: string,
    seq: number | undefined,
    bytes: Uint8Array,
  ): InDoubtResult | undefined {
    const k = scopedKey(principal, key);
    const list = this.inDoubt.get(k);
    const i =
      list?.findIndex(
        (p) =>
          p.handle === handle && (seq === undefined || p.seq === seq) && Buffer.compare(p.bytes, bytes) === 0,
      ) ?? -1;
    if (list === undefined || i < 0) return undefined;
    const [p] = list.splice(i, 1) as [InDoubtPrint];
    if (list.length === 0) this.inDoubt.delete(k);
    this.inDoubtLeft--;
    return { offset: p.offset, seq: p.seq, bytesWritten: p.bytes.length };
  }

  /**
   * What a reply waits for before it leaves: the pending records written
   * (every mode), and in `always` mode on disk too. Undefined when there is
   * nothing to wait for (the usual case in `batch` and `never` mode).
   */
  beforeReply(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.pendingRecords === 0) return this.writer.whenDurable();
    this.waiting ??= flushed();
    const written = this.waiting.promise;
    return this.options.fsync === 'always' ? written.then(() => this.writer.whenDurable()) : written;
  }

  /**
   * The log's state for /healthz: `broken` once its writer has given up (every
   * write fails until a restart), `failing` while its last write failed (a full
   * disk: the next may succeed), else `ok`.
   */
  get health(): 'ok' | 'failing' | 'broken' {
    if (this.writer.isBroken) return 'broken';
    return this.lastFlushFailed ? 'failing' : 'ok';
  }

  /**
   * Writes every pending record with one write(2). Throws `unavailable` when
   * the log cannot take them: then none of them is in the log (the writer cut
   * the file back), and the replies waiting for them fail.
   */
  flush(): void {
    if (this.pendingRecords === 0) return;
    const waiting = this.waiting;
    this.waiting = undefined;
    const records = this.pendingRecords;
    const bytes = this.pending.length;
    this.pendingRecords = 0;
    try {
      this.writer.append(this.pending.view());
      this.lastFlushFailed = false;
    } catch (error) {
      this.lastFlushFailed = true;
      const refused = unavailable(error);
      waiting?.reject(refused);
      throw refused;
    } finally {
      this.pending.reset();
    }
    this.stats.records += records;
    this.stats.bytes += bytes;
    waiting?.resolve();
    if (this.writer.size >= this.threshold && this.checkpointing === undefined && this.source !== undefined) {
      setImmediate(() => {
        this.checkpoint().catch(() => undefined);
      });
    }
  }

  private readonly flushLater = (): void => {
    this.flushQueued = false;
    try {
      this.flush();
    } catch {
      // The replies waiting for these records were told (beforeReply rejects).
    }
  };

  /**
   * Writes a checkpoint: starts a new log generation, snapshots the state as
   * of that moment, syncs the files the old generations wrote, renames the
   * checkpoint into place and deletes what it replaces. The server goes on
   * meanwhile (records go to the new generation). One at a time.
   */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.runCheckpoint().finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
  }

  /** Shutdown: a last checkpoint (so a restart reads little), then the log is closed and the directory unlocked. Later events are ignored. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.checkpointing?.catch(() => undefined);
      await this.checkpoint();
    } finally {
      this.flushLater();
      this.closed = true;
      this.writer.close();
      this.unlock();
    }
  }

  /**
   * Stops logging at once, without a checkpoint, leaving the directory as a
   * crash would (the records written so far are in the file): for a startup
   * that fails after recovery, and for tests that restart in one process.
   */
  abandon(): void {
    if (this.closed) return;
    // Pending records are written, as a crash right after the tick would have left them.
    this.flushLater();
    this.closed = true;
    this.writer.close();
    this.unlock();
  }

  private async runCheckpoint(): Promise<void> {
    const source = this.source;
    if (source === undefined) throw new Error('the redo log has no snapshot source');
    const n = this.rotate();
    const dirty = this.dirty;
    this.dirty = new Map();
    this.dirtyHandles = new WeakSet();
    // Leases and handles are copied now (they change). Idempotency records are read as the file is
    // written, across turns of the event loop, and that stays consistent: a record completed after the
    // rotation is in the new log as well (whether read here or not); one dropped meanwhile (evicted,
    // expired) is skipped or kept, as if dropped just after the checkpoint (recovery keeps a key's
    // last record, and restoring applies retention and the bounds again).
    const head = liveState(source, this.options.root, this.options.clock.now());
    let size: number;
    try {
      size = await writeCheckpoint(this.options.stateDir, n, [head, source.idempotency()], async () => {
        await syncDataFiles(dirty.values());
      });
    } catch (error) {
      // The old generations stay (recovery reads them); their files must still be synced by the next try.
      for (const [key, file] of dirty) if (!this.dirty.has(key)) this.dirty.set(key, file);
      this.threshold = this.writer.size + this.minThreshold;
      throw error;
    }
    this.threshold = Math.max(this.minThreshold, size);
    // Counted once the files it replaces are gone, as when they were deleted synchronously.
    await this.removeOlderThan(n);
    this.stats.checkpoints++;
  }

  /**
   * Starts generation n+1 and returns n+1. The old generation is synced whole
   * first, so only the newest log can ever have a torn tail.
   */
  private rotate(): number {
    this.flush();
    this.writer.close();
    const n = this.generation + 1;
    this.writer = LogWriter.open(this.logPath(n), 0, this.options.fsync, this.options.batchMs);
    this.generation = n;
    this.stats.generation = n;
    this.writeMeta();
    return n;
  }

  /**
   * Deletes the logs and checkpoints that checkpoint n replaces, off the main
   * thread: unlinking the last checkpoint of a full store (143 MiB) took
   * 57-63 ms in rmSync, a stall at the end of every checkpoint.
   */
  private async removeOlderThan(n: number): Promise<void> {
    const files = listStateFiles(this.options.stateDir);
    const older = [
      ...files.logs.filter((g) => g < n).map((g) => this.logPath(g)),
      ...files.checkpoints.filter((g) => g < n).map((g) => join(this.options.stateDir, checkpointName(g))),
    ];
    await Promise.all(older.map((path) => fs.promises.rm(path, { force: true })));
  }

  /** The log size below which no checkpoint starts (`checkpointBytes`, 64 MiB by default). */
  private get minThreshold(): number {
    return this.options.checkpointBytes ?? 64 * 1_048_576;
  }

  /**
   * Notes that the handle's file was written to in this generation (once per
   * handle and generation). Keyed by path; another file met at the same path
   * (it was replaced) gets a key of its identity and path, so that each
   * (file, path) pair is kept (syncDataFiles tries each path of a file).
   */
  private dirtied(handle: LoggedHandle): void {
    if (this.dirtyHandles.has(handle)) return;
    this.dirtyHandles.add(handle);
    const { abs, dev, ino, birth } = handle;
    const first = this.dirty.get(abs);
    if (first === undefined) {
      this.dirty.set(abs, { abs, dev, ino, birth });
    } else if (first.dev !== dev || first.ino !== ino || first.birth !== birth) {
      const key = `${fileKey(handle)}:${abs}`;
      if (!this.dirty.has(key)) this.dirty.set(key, { abs, dev, ino, birth });
    }
  }

  private writeMeta(): void {
    this.append(
      { type: 'meta', version: formatVersion, root: this.options.root, createdAt: this.options.clock.now() },
      true,
    );
  }

  /**
   * Appends one record after the pending ones and writes them all `now`, at
   * the end of this `tick`, or (`buffer`) at the caller's own `flush`.
   * `must`: failures throw unavailable (else they are swallowed). Returns
   * whether it was written (or queued).
   */
  private append(record: LogRecord, must: boolean, when: 'now' | 'tick' | 'buffer' = 'now'): boolean {
    if (this.closed) {
      // Shutting down: effects that need a record are refused; ends and closes are shutdown's own, and stay unlogged.
      if (must) throw unavailable(undefined);
      return false;
    }
    this.pending.add(record);
    this.pendingRecords++;
    if (when === 'buffer') return true;
    if (when === 'tick') {
      if (!this.flushQueued) {
        this.flushQueued = true;
        process.nextTick(this.flushLater);
      }
      return true;
    }
    try {
      this.flush();
    } catch (error) {
      if (!must) return false;
      throw error;
    }
    return true;
  }

  private logPath(n: number): string {
    return join(this.options.stateDir, logName(n));
  }
}

function unavailable(cause: unknown): RpcError {
  return new RpcError({
    code: 'unavailable',
    message: cause === undefined ? 'the server is shutting down' : 'the server cannot write its redo log',
    details: { reason: cause === undefined ? 'shutting_down' : 'redo_log_unavailable' },
    retryAfterSeconds: 1,
    cause,
  });
}
