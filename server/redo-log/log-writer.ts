/**
 * One log file open for appending, and when what it holds reaches the disk.
 *
 * Every append is one synchronous write(2) of whole frames before the caller
 * goes on (a few µs): once `append` returns, the records are in the kernel's
 * page cache and survive a crash of the process (SIGKILL, an uncaught error,
 * the OOM killer). Surviving a crash of the machine (power loss, kernel panic)
 * also needs fdatasync(2), which the fsync mode decides:
 *
 * - `always`: `whenDurable()` gives a promise that settles once an fdatasync
 *   that started after the last append has finished; the server holds every
 *   reply until then, so an acknowledged call survives power loss. Calls that
 *   wait at the same time share one fdatasync (group commit), so throughput
 *   falls far less than one fdatasync per call would make it.
 * - `batch` (default): replies do not wait; an fdatasync runs in the background
 *   at most `batchMs` after an append (one per window, however many appends).
 *   A process crash loses nothing acknowledged; power loss can lose the calls
 *   acknowledged in the last `batchMs` plus one fdatasync's time.
 * - `never`: no fdatasync (except at rotation and shutdown); a process crash
 *   loses nothing acknowledged, power loss whatever the kernel had not yet
 *   written back (Linux: up to about 30 s by default).
 */
import fs from 'node:fs';

/**
 * `batch` mode's window, in ms (`--fsync-batch-ms`). 5, not 2 as before: each
 * background fdatasync costs the server a few hundred µs of CPU on a
 * virtualised disk, and under load there is one per window. Measured with
 * the bench's leasegate child at 32 autocannon connections, server on one core,
 * alternated runs: CPU per RemotePrint 45 µs with 2 ms, 40–44 with 5, 40–41
 * with 10, 36 with no fdatasync at all. Power loss can still lose only the last
 * few ms of acknowledged calls, as the protocol promises.
 */
export const defaultBatchMs = 5;

/** When appended records are made durable with fdatasync. */
export type FsyncMode = 'always' | 'batch' | 'never';

/** Raised when the log cannot take a record: the caller must not apply the effect or acknowledge it. */
export class LogWriteError extends Error {}

/** An append-only log file with group-committed fdatasync. */
export class LogWriter {
  /** Bytes in the file (the next frame's offset). */
  private end: number;
  /** Bytes known to be on disk. */
  private synced: number;
  private syncing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private broken: Error | undefined;
  private closed = false;

  /** Whether the writer has given up (a cut-back or a background sync failed): every append now fails. */
  get isBroken(): boolean {
    return this.broken !== undefined;
  }

  constructor(
    private readonly fd: number,
    size: number,
    private readonly mode: FsyncMode,
    private readonly batchMs = defaultBatchMs,
  ) {
    this.end = size;
    this.synced = size;
  }

  /** Opens (creating if needed) a log file for appending at `size` (what recovery kept of it). */
  static open(path: string, size: number, mode: FsyncMode, batchMs?: number): LogWriter {
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
    try {
      if (fs.fstatSync(fd).size !== size) fs.ftruncateSync(fd, size);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    return new LogWriter(fd, size, mode, batchMs);
  }

  /** Bytes in the log file. */
  get size(): number {
    return this.end;
  }

  /**
   * Writes whole frames at the end of the log, synchronously. On failure the
   * file is cut back to where the frames began (so the log never holds half a
   * frame followed by good ones) and `LogWriteError` is thrown; if even that
   * fails, the writer refuses every later append.
   */
  append(frames: Uint8Array): void {
    if (this.broken !== undefined)
      throw new LogWriteError('the redo log is unusable', { cause: this.broken });
    if (this.closed) throw new LogWriteError('the redo log is closed');
    const start = this.end;
    let done = 0;
    try {
      while (done < frames.length) {
        done += fs.writeSync(this.fd, frames, done, frames.length - done, start + done);
      }
    } catch (error) {
      try {
        if (done > 0) fs.ftruncateSync(this.fd, start);
      } catch (cutError) {
        this.broken = cutError as Error;
      }
      throw new LogWriteError(`cannot write the redo log: ${(error as Error).message}`, { cause: error });
    }
    this.end = start + done;
    if (this.mode === 'batch' && this.timer === undefined) {
      this.timer = setTimeout(this.onTimer, this.batchMs);
      this.timer.unref();
    }
  }

  /**
   * Undefined when everything appended is on disk (or the mode does not
   * promise it: `batch` and `never`); otherwise a promise that settles once it is.
   */
  whenDurable(): Promise<void> | undefined {
    if (this.mode !== 'always' || this.synced >= this.end) return undefined;
    return this.sync();
  }

  /** fdatasync covering everything appended so far; concurrent callers share the calls. */
  sync(): Promise<void> {
    const target = this.end;
    if (this.synced >= target) return Promise.resolve();
    if (this.syncing !== undefined) {
      // A sync in flight may have started before our records: wait for it, then sync again if needed.
      return this.syncing.then(() => this.sync());
    }
    const run = new Promise<void>((resolve, reject) => {
      fs.fdatasync(this.fd, (error) => {
        this.syncing = undefined;
        // Closed meanwhile: close() synced everything synchronously before it let go of the descriptor.
        if (error && !this.closed) {
          this.broken ??= error;
          reject(new LogWriteError(`cannot fdatasync the redo log: ${error.message}`, { cause: error }));
          return;
        }
        if (target > this.synced) this.synced = target;
        resolve();
      });
    });
    this.syncing = run;
    return run;
  }

  /** fdatasync now, synchronously (rotation, shutdown). */
  syncNow(): void {
    if (this.synced >= this.end) return;
    fs.fdatasyncSync(this.fd);
    this.synced = this.end;
  }

  /** Syncs (whatever the mode: earlier generations must be whole on disk) and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      this.syncNow();
    } finally {
      fs.closeSync(this.fd);
    }
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    // A failed background sync marks the writer broken; later appends report it.
    this.sync().catch(() => undefined);
  };
}
