/**
 * The state directory's lock against real processes: a lock naming a zombie
 * or a pid now used by another process (recycled after a reboot) is taken
 * over; one naming the live process that wrote it is refused with what to do.
 * Linux only: it reads /proc, which is what the lock relies on there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockStateDir } from '../../server/redo-log/state-dir.js';

let tmp: string;
let n = 0;
const children: ChildProcess[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-lock-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh state directory whose lock file holds `content`. */
function lockedDir(content: string): string {
  const dir = join(tmp, `state-${++n}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(join(dir, 'lock'), content);
  return dir;
}

/** Fields 3 (state) and 22 (start time) of /proc/<pid>/stat. */
function stat(pid: number): { state: string; started: string } {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] as string, started: fields[19] as string };
}

/** Runs `sh -c script` and resolves with the first line it prints. */
async function firstLine(script: string): Promise<string> {
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await expect.poll(() => out.includes('\n'), { timeout: 10_000 }).toBe(true);
  return out.split('\n')[0] as string;
}

describe.skipIf(process.platform !== 'linux')('the state directory lock', () => {
  it('takes over a lock whose process is a zombie', async () => {
    // sh starts a short-lived child and becomes `sleep`, which never reaps it.
    const zombie = Number(await firstLine('sleep 0 & echo $!; exec sleep 30'));
    await expect.poll(() => stat(zombie).state, { timeout: 10_000 }).toBe('Z');
    const dir = lockedDir(`${zombie} ${stat(zombie).started}\n`);
    const unlock = lockStateDir(dir);
    expect(fs.readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${process.pid} ${stat(process.pid).started}\n`);
    unlock();
  });

  it('takes over a lock whose pid now belongs to a process started later (a recycled pid)', async () => {
    const live = Number(await firstLine('echo $$; exec sleep 30'));
    const dir = lockedDir(`${live} 1\n`); // started 1 tick after boot: not that process
    lockStateDir(dir)();
  });

  it('refuses a lock held by the live process that wrote it, saying what to do if it is gone', async () => {
    const live = Number(await firstLine('echo $$; exec sleep 30'));
    for (const content of [`${live} ${stat(live).started}\n`, `${live}\n`]) {
      const dir = lockedDir(content);
      expect(() => lockStateDir(dir)).toThrow(
        `state directory ${dir} is in use by process ${live} (its lock file says so); ` +
          `if no leasegate runs on it any more, delete ${join(dir, 'lock')} and start again`,
      );
    }
  });
});
