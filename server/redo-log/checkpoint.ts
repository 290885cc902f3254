/**
 * Writing a checkpoint: the live state as records, to a temporary file that
 * becomes `checkpoint-<n>.ckpt` by rename once it and the data it vouches for
 * are on disk.
 *
 * Why a checkpoint may let the logs before it go: recovery redoes prints only
 * from the logs after the newest checkpoint. So before the checkpoint is
 * renamed into place, every file written during the older generations is
 * fdatasynced (`syncDataFiles`): their bytes no longer need the log. Metadata
 * (leases, handles, positions, seqs) and idempotency records need no such
 * step: the checkpoint itself holds them.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileKey, isSameFile } from '../handles/file-identity.js';
import { FrameEncoder } from './codec.js';
import type { LoggedHandle, LoggedLease } from './durability-log.js';
import {
  formatVersion,
  type IdempotencyRecord,
  type LogRecord,
  openRecord,
  tombstoneRecord,
} from './records.js';
import { checkpointName, syncDirectory } from './state-dir.js';

/** Bytes encoded before they are written out. */
const chunkBytes = 1_048_576;

/**
 * Bytes of frames encoded between two turns of the event loop (~440 records
 * of ~150 bytes, 0.6 ms of CPU). RedoLog.checkpoint of a store of 10^6
 * records (143 MiB) in-process, two runs each of before and after on a busy
 * 2-core machine: encoded in 1 MiB stretches (one per write), the stretches
 * without a turn took 14-23 ms at the median and 61-144 ms at most, and a
 * 1 ms timer's gaps reached p99 24-43 ms; in 64 KiB slices, 0.6-1.0 ms at the
 * median, p99 1.7-5 ms and 11-32 ms at most (the machine's load was 4-5),
 * timer gaps p99 4-6 ms, and the whole took 2.0-2.9 s, not 2.4-3.7 (see
 * addAll). 16 KiB slices were no better at p99, and took up to 3.5 s.
 */
const sliceBytes = 64 * 1024;

/** Where a checkpoint takes the live state from (set once the server's tables exist). */
export interface SnapshotSource {
  leases(): Iterable<LoggedLease>;
  handles(): Iterable<LoggedHandle>;
  /** Ended leases whose tombstones still answer (none if left out). */
  endedLeases?(): Iterable<LoggedLease>;
  /** Completed idempotency records to keep (may be read lazily, while the server runs on). */
  idempotency(): Iterable<IdempotencyRecord> | AsyncIterable<IdempotencyRecord>;
}

/**
 * The checkpoint's records of the live state before the idempotency store's:
 * meta, live leases, open handles and tombstones, copied now (they change).
 */
export function liveState(source: SnapshotSource, root: string, now: number): LogRecord[] {
  const head: LogRecord[] = [{ type: 'meta', version: formatVersion, root, createdAt: now }];
  for (const l of source.leases()) {
    const { id, principal, ttlMs, expiresAt, solo } = l;
    head.push({ type: 'lease', id, principal, ttlMs, expiresAt, solo, at: now });
  }
  for (const h of source.handles()) head.push(openRecord(h, false));
  for (const l of source.endedLeases?.() ?? []) {
    const tombstone = tombstoneRecord(l);
    if (tombstone !== undefined) head.push(tombstone);
  }
  return head;
}

/** Records of a checkpoint, one source after another (a synchronous one is read without a promise per record). */
export type CheckpointRecords = readonly (Iterable<LogRecord> | AsyncIterable<LogRecord>)[];

/**
 * Writes the records of `parts` in order (meta first; an end record is
 * added) as checkpoint `n`: temp file, fdatasync, `beforeRename` (the data
 * files' sync), rename, directory fsync. Returns the checkpoint's size in bytes.
 *
 * The records are encoded in slices (see {@link sliceBytes}) with a turn of
 * the event loop between them, so the server serves calls meanwhile: a lazy
 * source (the idempotency store) may change between two slices, and must
 * give records that stay true whatever happened since (see RedoLog.runCheckpoint).
 */
export async function writeCheckpoint(
  stateDir: string,
  n: number,
  parts: CheckpointRecords,
  beforeRename: () => Promise<void>,
): Promise<number> {
  const final = join(stateDir, checkpointName(n));
  const temp = `${final}.tmp`;
  const file = await fs.promises.open(temp, 'w', 0o600);
  let size: number;
  try {
    const out = new SlicedFrames(file);
    for (const records of parts) await out.addAll(records);
    size = await out.end();
    await file.datasync();
  } catch (error) {
    await file.close();
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await file.close();
  try {
    await beforeRename();
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await fs.promises.rename(temp, final);
  syncDirectory(stateDir);
  return size;
}

/** Frames encoded into a file in slices: a write per 1 MiB, a turn of the event loop per 64 KiB. */
class SlicedFrames {
  private readonly encoder = new FrameEncoder(chunkBytes + 64 * 1024);
  private count = 0;
  private size = 0;
  /** The encoder's length at which the current slice ends. */
  private sliceEnd = sliceBytes;

  constructor(private readonly file: fs.promises.FileHandle) {}

  /**
   * Encodes every record. A synchronous source is read without a promise per
   * record, only one per slice: through async generators, a checkpoint of
   * 10^6 records took 0.4-0.8 s more (see sliceBytes).
   */
  async addAll(records: AsyncIterable<LogRecord> | Iterable<LogRecord>): Promise<void> {
    if (Symbol.asyncIterator in records) {
      for await (const record of records) await this.add(record);
      return;
    }
    for (const record of records) {
      const pause = this.add(record);
      if (pause !== undefined) await pause;
    }
  }

  /** Adds the end record and writes what is left; returns the bytes written in all. */
  async end(): Promise<number> {
    this.encoder.add({ type: 'end', count: this.count });
    await this.write();
    return this.size;
  }

  /** Encodes one record; at the end of a slice, returns the promise of the pause that follows it. */
  private add(record: LogRecord): Promise<void> | undefined {
    this.encoder.add(record);
    this.count++;
    return this.encoder.length < this.sliceEnd ? undefined : this.pause();
  }

  /** Writes a full chunk (its I/O is the pause), or else waits for the event loop's next turn. */
  private async pause(): Promise<void> {
    if (this.encoder.length >= chunkBytes) await this.write();
    else await nextTurn();
    this.sliceEnd = this.encoder.length + sliceBytes;
  }

  private async write(): Promise<void> {
    this.size += await writeAll(this.file, this.encoder.view());
    this.encoder.reset();
  }
}

/**
 * Size of checkpoint n in `stateDir` (0: none, or unreadable): after a
 * restart, the checkpoint recovery read sets the log's threshold as the last
 * one written did (see RedoLogOptions.checkpointBytes).
 */
export function checkpointSize(stateDir: string, n: number): number {
  if (n === 0) return 0;
  try {
    return fs.statSync(join(stateDir, checkpointName(n))).size;
  } catch {
    return 0;
  }
}

async function writeAll(file: fs.promises.FileHandle, bytes: Buffer): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
  return done;
}

/** A file some print wrote to. */
export interface DataFile {
  readonly abs: string;
  readonly dev: number;
  readonly ino: number;
  /** Birth time (ms); 0 when unknown. */
  readonly birth: number;
}

/**
 * How many files `syncDataFiles` syncs at once, through the libuv threadpool
 * (4 threads unless UV_THREADPOOL_SIZE says otherwise). Measured on ext4 on a
 * virtual disk, files with 4 KiB each just written, a busy 2-core machine:
 * 15,000 files took 25.5-33.9 s one at a time (a SIGTERM's checkpoint past
 * Kubernetes' 30 s) and 4.3-6.7 s eight at a time (concurrent fdatasyncs
 * share journal commits). At 5,000 files: 1 at a time 1.1-1.5 ms a file,
 * 2: 0.4-1.1, 4: 0.6-0.7, 8: 0.27-0.47, 16: 0.36-0.39. An fdatasync of a log
 * every 5 ms meanwhile (what replies wait for in `always` mode) took 0.6 ms
 * at the median beside one, 0.9-1.2 beside 8, 1.7 beside 16 (p99 17-26 ms):
 * past 8 the threadpool's queue only grows.
 */
export const syncConcurrency = 8;

/**
 * fdatasyncs each distinct file (by device, inode and birth time) through a
 * descriptor of its own, {@link syncConcurrency} files at a time: fdatasync flushes the
 * file's pages whichever descriptor wrote them, and the files are independent,
 * so their order does not matter; all are synced when the promise settles. A
 * file is reached through the first of its paths that still names it; one
 * that none does is skipped: its data is unreachable, and recovery (which
 * writes only through a logged path) would not redo it either. On an error the
 * files in progress are finished (their descriptors closed), no more are
 * started, and the error is thrown. Returns how many files were synced.
 */
export async function syncDataFiles(files: Iterable<DataFile>): Promise<number> {
  const byFile = new Map<string, DataFile[]>();
  for (const f of files) {
    const key = fileKey(f);
    const paths = byFile.get(key);
    if (paths === undefined) byFile.set(key, [f]);
    else paths.push(f);
  }
  const queue = byFile.values();
  let synced = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (let next = queue.next(); !next.done && failure === undefined; next = queue.next()) {
      try {
        if (await syncFile(next.value)) synced++;
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(syncConcurrency, byFile.size) }, worker));
  if (failure !== undefined) throw failure.error;
  return synced;
}

/** fdatasyncs one file through the first of its paths that names it; false if none does. */
async function syncFile(paths: readonly DataFile[]): Promise<boolean> {
  for (const f of paths) {
    let file: fs.promises.FileHandle;
    try {
      file = await fs.promises.open(
        f.abs,
        fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      );
    } catch {
      continue;
    }
    try {
      if (!isSameFile(await file.stat(), f)) continue;
      await file.datasync();
      return true;
    } finally {
      await file.close();
    }
  }
  return false;
}
