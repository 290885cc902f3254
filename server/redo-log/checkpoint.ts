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
import { fileKey, isSameFile } from '../handles/file-identity.js';
import { FrameEncoder } from './codec.js';
import type { LogRecord } from './records.js';
import { checkpointName, syncDirectory } from './state-dir.js';

/** Bytes encoded before they are written out (and the event loop gets a turn). */
const chunkBytes = 1_048_576;

/**
 * Writes `records` (meta first; an end record is added) as checkpoint `n`:
 * temp file, fdatasync, `beforeRename` (the data files' sync), rename,
 * directory fsync. Returns the checkpoint's size in bytes.
 */
export async function writeCheckpoint(
  stateDir: string,
  n: number,
  records: AsyncIterable<LogRecord> | Iterable<LogRecord>,
  beforeRename: () => Promise<void>,
): Promise<number> {
  const final = join(stateDir, checkpointName(n));
  const temp = `${final}.tmp`;
  const file = await fs.promises.open(temp, 'w', 0o600);
  let size = 0;
  try {
    const encoder = new FrameEncoder(chunkBytes + 64 * 1024);
    let count = 0;
    for await (const record of records) {
      encoder.add(record);
      count++;
      if (encoder.length >= chunkBytes) {
        size += await writeAll(file, encoder.view());
        encoder.reset();
      }
    }
    encoder.add({ type: 'end', count });
    size += await writeAll(file, encoder.view());
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
 * fdatasyncs each distinct file (by device and inode) through a descriptor of
 * its own: fdatasync flushes the file's pages whichever descriptor wrote them.
 * A file that is gone, or whose path names another file now, is skipped: its
 * data is unreachable, and recovery would not redo it either.
 */
export async function syncDataFiles(files: Iterable<DataFile>): Promise<number> {
  const seen = new Set<string>();
  let synced = 0;
  for (const f of files) {
    const key = fileKey(f);
    if (seen.has(key)) continue;
    seen.add(key);
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
      const st = await file.stat();
      if (!isSameFile(st, f)) continue;
      await file.datasync();
      synced++;
    } finally {
      await file.close();
    }
  }
  return synced;
}
