/**
 * The files of a state directory: `redo-<n>.log` (the log, in generations),
 * `checkpoint-<n>.ckpt` (the state as of the start of log n), `*.tmp` (a
 * checkpoint being written) and `lock` (the pid of the server using it).
 */
import fs from 'node:fs';
import { join } from 'node:path';

const width = 10;

/** The name of log generation `n`. */
export const logName = (n: number): string => `redo-${String(n).padStart(width, '0')}.log`;
/** The name of the checkpoint that holds the state as of the start of log `n`. */
export const checkpointName = (n: number): string => `checkpoint-${String(n).padStart(width, '0')}.ckpt`;

/** What a state directory holds, sorted by generation. */
export interface StateFiles {
  readonly logs: number[];
  readonly checkpoints: number[];
  /** Leftovers of checkpoints that were being written when the server stopped. */
  readonly temps: string[];
}

/** Lists the log, checkpoint and temporary files of a state directory. */
export function listStateFiles(dir: string): StateFiles {
  const logs: number[] = [];
  const checkpoints: number[] = [];
  const temps: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const log = /^redo-(\d+)\.log$/.exec(name);
    const ckpt = /^checkpoint-(\d+)\.ckpt$/.exec(name);
    if (log) logs.push(Number(log[1]));
    else if (ckpt) checkpoints.push(Number(ckpt[1]));
    else if (name.endsWith('.tmp')) temps.push(name);
  }
  const byNumber = (a: number, b: number) => a - b;
  return { logs: logs.sort(byNumber), checkpoints: checkpoints.sort(byNumber), temps };
}

/** fsync of a directory, so that a rename or unlink in it is durable. */
export function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** State directories this process holds (a second server in the same process must not share one). */
const heldHere = new Set<string>();

/**
 * Takes the state directory for this process: the `lock` file names the pid
 * that uses it. A lock whose pid is no longer running (a crashed server) is
 * taken over; one held by a live process is refused, since two servers
 * appending to one log would corrupt it.
 */
export function lockStateDir(dir: string): () => void {
  const path = join(dir, 'lock');
  if (heldHere.has(path)) throw new Error(`state directory ${dir} is already used by this process`);
  let holder: number | undefined;
  try {
    holder = Number(fs.readFileSync(path, 'utf8').trim());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (
    holder !== undefined &&
    Number.isInteger(holder) &&
    holder > 0 &&
    holder !== process.pid &&
    alive(holder)
  ) {
    throw new Error(`state directory ${dir} is in use by process ${holder} (its lock file says so)`);
  }
  fs.writeFileSync(path, `${process.pid}\n`);
  heldHere.add(path);
  return () => {
    heldHere.delete(path);
    fs.rmSync(path, { force: true });
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
