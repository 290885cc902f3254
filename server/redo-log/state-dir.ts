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
 * that uses it and that process's start time. A lock whose process is gone (a
 * crashed server) is taken over: no such pid, a zombie (it has exited; its
 * parent has not reaped it yet), or a pid now used by another process (after
 * a reboot pids are recycled, and a stale lock naming the pid of some new
 * process blocked startup). One held by a live process is refused, since two
 * servers appending to one log would corrupt it.
 */
export function lockStateDir(dir: string): () => void {
  const path = join(dir, 'lock');
  if (heldHere.has(path)) throw new Error(`state directory ${dir} is already used by this process`);
  let holder: { pid: number; started: string | undefined } | undefined;
  try {
    const [pid, started] = fs.readFileSync(path, 'utf8').trim().split(/\s+/);
    holder = { pid: Number(pid), started };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (
    holder !== undefined &&
    Number.isInteger(holder.pid) &&
    holder.pid > 0 &&
    holder.pid !== process.pid &&
    alive(holder.pid, holder.started)
  ) {
    throw new Error(
      `state directory ${dir} is in use by process ${holder.pid} (its lock file says so); ` +
        `if no leasegate runs on it any more, delete ${path} and start again`,
    );
  }
  const started = startTime(process.pid);
  fs.writeFileSync(path, started === undefined ? `${process.pid}\n` : `${process.pid} ${started}\n`);
  heldHere.add(path);
  return () => {
    heldHere.delete(path);
    fs.rmSync(path, { force: true });
  };
}

/** Whether `pid` runs and is the process that wrote the lock (`started`: its start time then, if known). */
function alive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc (not Linux): the signal is all we know
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return started === undefined || stat.started === started;
}

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22), where /proc has it. */
function startTime(pid: number): string | undefined {
  return procStat(pid)?.started;
}

/** The state (field 3) and start time (field 22) of /proc/<pid>/stat, or undefined without one. */
function procStat(pid: number): { state: string; started: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')': count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const started = fields[19];
  return state === undefined || started === undefined ? undefined : { state, started };
}
