/**
 * Recovery: read the newest complete checkpoint and every log generation
 * after it, cut a torn tail off the last log, fold the records into the
 * state to rebuild, and redo the logged file writes.
 *
 * Redo writes every logged print since the checkpoint again, the same bytes
 * at the same offset, in log order. That is idempotent: after a process crash
 * the bytes are already there (the page cache survived) and are rewritten
 * unchanged; after power loss they may not be, and are put back. Prints that
 * a later record undoes are not redone: a print whose write failed
 * (print-abort), prints to a file that a later open truncated (the truncation
 * is redone instead, so the file ends exactly as logged), and prints under a
 * path that Directories.Remove removed later. A write is redone only into the
 * very file it was made to (same device, inode and birth time at the same
 * path, opened without following links and without creating anything).
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { fileKey, isSameFile } from '../handles/file-identity.js';
import { scanFrames } from './codec.js';
import {
  type IdempotencyRecord,
  type LogRecord,
  readableFormatVersions,
  type TombstoneRecord,
} from './records.js';
import {
  type InDoubtPrint,
  type RecoveredHandle,
  type RecoveredLease,
  type RedoOp,
  Replayer,
} from './replay.js';
import { checkpointName, listStateFiles, logName } from './state-dir.js';

export type { InDoubtPrint, RecoveredHandle, RecoveredLease } from './replay.js';

/** A state directory that cannot be recovered without losing acknowledged work; a person must look. */
export class RecoveryError extends Error {}

/** What recovery found and did. */
export interface RecoveredState {
  readonly leases: RecoveredLease[];
  readonly handles: RecoveredHandle[];
  readonly idempotency: IdempotencyRecord[];
  readonly tombstones: TombstoneRecord[];
  readonly inDoubt: InDoubtPrint[];
  /** The log generation to go on appending to, and its size after the torn tail (if any) was cut. */
  readonly generation: number;
  readonly logSize: number;
  readonly stats: RecoveryStats;
}

/** Figures of one recovery (logged at startup, checked by tests). */
export interface RecoveryStats {
  /** Generation of the checkpoint recovery started from (0: none). */
  readonly checkpoint: number;
  readonly logsRead: number;
  readonly records: number;
  /** Bytes cut off the end of the last log (a torn tail), and why. */
  readonly tornBytes: number;
  readonly damage: string | undefined;
  readonly redoneWrites: number;
  readonly redoneBytes: number;
  readonly redoneTruncations: number;
  /** Logged writes not redone: the file is gone or is another file now. */
  readonly skippedWrites: number;
  readonly expiredLeases: number;
}

/** Options of `recover`. */
export interface RecoverOptions {
  /** The served root (absolute); a state directory made for another root is refused. */
  readonly root: string;
}

/** Reads the state directory, truncates a torn tail, redoes logged writes, and returns the state to rebuild. */
export function recover(stateDir: string, options: RecoverOptions): RecoveredState {
  const files = listStateFiles(stateDir);
  for (const temp of files.temps) fs.rmSync(join(stateDir, temp), { force: true });

  const replayer = new Replayer();
  let records = 0;
  let checkpoint = 0;
  for (const n of [...files.checkpoints].reverse()) {
    const loaded = readCheckpoint(join(stateDir, checkpointName(n)), options.root);
    if (loaded === undefined) continue;
    for (const record of loaded) replayer.apply(record);
    records += loaded.length;
    checkpoint = n;
    break;
  }
  if (checkpoint === 0 && files.checkpoints.length > 0) {
    throw new RecoveryError(`no complete checkpoint in ${stateDir}: the newest ones are damaged`);
  }

  const logs = files.logs.filter((n) => n >= checkpoint);
  const first = checkpoint === 0 ? 1 : checkpoint;
  logs.forEach((n, i) => {
    if (n !== first + i) {
      throw new RecoveryError(`redo log generation ${first + i} is missing from ${stateDir} (found ${n})`);
    }
  });

  let tornBytes = 0;
  let damage: string | undefined;
  let logSize = 0;
  for (const [i, n] of logs.entries()) {
    const path = join(stateDir, logName(n));
    const data = fs.readFileSync(path);
    const scan = scanFrames(data);
    const last = i === logs.length - 1;
    if (scan.damage !== undefined && !last) {
      throw new RecoveryError(
        `${path} is damaged at byte ${scan.goodEnd} (${scan.damage}) although later logs exist: it is not a torn tail`,
      );
    }
    checkMeta(scan.records, path, options.root, last);
    for (const record of scan.records) replayer.apply(record);
    records += scan.records.length;
    if (last) {
      logSize = scan.goodEnd;
      if (scan.goodEnd < data.length) {
        tornBytes = data.length - scan.goodEnd;
        damage = scan.damage;
        fs.truncateSync(path, scan.goodEnd);
      }
    }
  }

  const state = replayer.result();
  const redo = redoWrites(state.ops);
  return {
    leases: state.leases,
    handles: state.handles,
    idempotency: state.idempotency,
    tombstones: state.tombstones,
    inDoubt: state.inDoubt,
    generation: logs.at(-1) ?? first,
    logSize,
    stats: {
      checkpoint,
      logsRead: logs.length,
      records,
      tornBytes,
      damage,
      ...redo,
      expiredLeases: state.expiredLeases,
    },
  };
}

/** The records of a complete checkpoint, or undefined if it is damaged or incomplete. */
function readCheckpoint(path: string, root: string): LogRecord[] | undefined {
  const scan = scanFrames(fs.readFileSync(path));
  const end = scan.records.at(-1);
  if (scan.damage !== undefined || end?.type !== 'end' || end.count !== scan.records.length - 1)
    return undefined;
  checkMeta(scan.records, path, root, false);
  return scan.records;
}

/** Every file starts with a meta record of this format version and root (a just-created last log may be empty). */
function checkMeta(records: readonly LogRecord[], path: string, root: string, mayBeEmpty: boolean): void {
  const meta = records[0];
  if (meta === undefined && mayBeEmpty) return;
  if (meta?.type !== 'meta') throw new RecoveryError(`${path} does not start with a meta record`);
  if (!readableFormatVersions.includes(meta.version)) {
    throw new RecoveryError(
      `${path} has format version ${meta.version}; this server reads ${readableFormatVersions.join(' and ')}`,
    );
  }
  if (meta.root !== root) {
    throw new RecoveryError(
      `${path} belongs to the served root ${meta.root}, not ${root}: serve that root again, or use another state directory`,
    );
  }
}

/** Redoes the ops in order, then fdatasyncs every file it wrote, so the redone data is durable before the server goes on. */
function redoWrites(
  ops: readonly RedoOp[],
): Pick<RecoveryStats, 'redoneWrites' | 'redoneBytes' | 'redoneTruncations' | 'skippedWrites'> {
  const fds = new Map<string, number | null>();
  let redoneWrites = 0;
  let redoneBytes = 0;
  let redoneTruncations = 0;
  let skippedWrites = 0;
  try {
    for (const op of ops) {
      if (op.void) continue;
      const key = `${fileKey(op)}:${op.abs}`;
      let fd = fds.get(key);
      if (fd === undefined) {
        fd = openSameFile(op);
        fds.set(key, fd);
      }
      if (fd === null) {
        if (op.kind === 'write') skippedWrites++;
        continue;
      }
      if (op.kind === 'truncate') {
        fs.ftruncateSync(fd, 0);
        redoneTruncations++;
        continue;
      }
      let done = 0;
      while (done < op.bytes.length) {
        done += fs.writeSync(fd, op.bytes, done, op.bytes.length - done, op.offset + done);
      }
      redoneWrites++;
      redoneBytes += done;
    }
    for (const fd of fds.values()) if (fd !== null) fs.fdatasyncSync(fd);
  } finally {
    for (const fd of fds.values()) if (fd !== null) fs.closeSync(fd);
  }
  return { redoneWrites, redoneBytes, redoneTruncations, skippedWrites };
}

/** Opens `abs` for writing if it still names the file (device, inode, birth time when known) the log wrote; null if not. */
function openSameFile(op: RedoOp): number | null {
  let fd: number;
  try {
    fd = fs.openSync(op.abs, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const st = fs.fstatSync(fd);
  if (!isSameFile(st, op) || !st.isFile()) {
    fs.closeSync(fd);
    return null;
  }
  return fd;
}
