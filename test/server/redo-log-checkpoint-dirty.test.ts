/**
 * The files a checkpoint must sync: the log notes each file written to in
 * the current generation as a small record (identity and path), not the
 * handle (it kept every handle written to, with its lease, alive until the
 * next checkpoint: 30,000 abandoned handles kept 30,000 Handles and Leases);
 * and syncDataFiles syncs them several at a time (one at a time, 15,000
 * files made a checkpoint take 26 s). Real RedoLog, real files.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import { type DataFile, syncConcurrency, syncDataFiles } from '../../server/redo-log/checkpoint.js';
import type { LoggedHandle, LoggedLease } from '../../server/redo-log/durability-log.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
let root: string;
const clock = new ManualClock();
const logs: RedoLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-ckpt-dirty-'));
  root = join(dir, 'root');
  fs.mkdirSync(root);
  fs.mkdirSync(join(dir, 'state'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const log of logs.splice(0)) log.abandon();
  await rm(dir, { recursive: true, force: true });
});

function openLog(): RedoLog {
  const { log } = RedoLog.open({ stateDir: join(dir, 'state'), root, fsync: 'never', clock });
  logs.push(log);
  log.setSnapshotSource({ leases: () => [], handles: () => [], idempotency: () => [] });
  return log;
}

/** A file in the root with `text` in it, as a DataFile. */
function dataFile(name: string, text = 'data'): DataFile {
  const abs = join(root, name);
  fs.writeFileSync(abs, text);
  const st = fs.statSync(abs);
  return { abs, dev: st.dev, ino: st.ino, birth: st.birthtimeMs };
}

/**
 * Logs a lease and a handle on a new file, a print to it and the handle's
 * close, as the server does; returns weak references to the handle and lease
 * (the caller keeps no strong one).
 */
function printAndClose(log: RedoLog, name: string): { handle: WeakRef<object>; lease: WeakRef<object> } {
  const file = dataFile(name, '');
  const lease: LoggedLease = {
    id: `l_${name}`,
    principal: 'ana',
    ttlMs: 1_000,
    expiresAt: 1_000,
    solo: true,
  };
  const handle: LoggedHandle = {
    ...file,
    id: `h_${name}`,
    principal: 'ana',
    lease,
    display: `/${name}`,
    mode: 'write',
    reopenFlags: fs.constants.O_WRONLY,
    position: 0,
    lastSeq: 0,
  };
  log.leaseGranted(lease);
  log.handleOpened(handle, false);
  const bytes = Buffer.from('hello');
  log.printing(handle, 0, bytes, 1, {
    idempotencyKey: undefined,
    answerFingerprint: undefined,
    leaseRemainingMs: undefined,
    answerLogged: false,
  });
  log.flush();
  fs.writeFileSync(file.abs, bytes);
  log.handleClosed(handle);
  log.leaseEnded(lease);
  return { handle: new WeakRef(handle), lease: new WeakRef(lease) };
}

/** Counts the descriptors fs.promises.open hands out and the most open at once, and names the paths opened. */
function watchOpens() {
  const seen = { paths: [] as string[], open: 0, most: 0 };
  const open = fs.promises.open.bind(fs.promises);
  vi.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof open>) => {
    const file = await open(...args);
    seen.paths.push(String(args[0]));
    seen.most = Math.max(seen.most, ++seen.open);
    const close = file.close.bind(file);
    file.close = async () => {
      seen.open--;
      return close();
    };
    return file;
  });
  return seen;
}

describe('the files a checkpoint syncs', () => {
  it('keep no handle or lease alive once closed, and the next checkpoint still syncs their files', async () => {
    const log = openLog();
    const refs = Array.from({ length: 50 }, (_, i) => printAndClose(log, `f${i}.txt`));
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    }
    expect(refs.filter((r) => r.handle.deref() !== undefined)).toHaveLength(0);
    expect(refs.filter((r) => r.lease.deref() !== undefined)).toHaveLength(0);

    const opens = watchOpens();
    await log.checkpoint();
    const synced = opens.paths.filter((p) => p.startsWith(root));
    expect(synced.sort()).toEqual(Array.from({ length: 50 }, (_, i) => join(root, `f${i}.txt`)).sort());
  });

  it('are noted once per file and path, however many handles wrote to them', async () => {
    const log = openLog();
    for (let i = 0; i < 20; i++) printAndClose(log, 'same.txt');
    const opens = watchOpens();
    await log.checkpoint();
    expect(opens.paths.filter((p) => p.startsWith(root))).toEqual([join(root, 'same.txt')]);
  });
  it('keep both files written at one path when one replaced the other, and sync the one it names', async () => {
    const log = openLog();
    printAndClose(log, 'r.txt');
    fs.rmSync(join(root, 'r.txt'));
    printAndClose(log, 'r.txt');
    const opens = watchOpens();
    await log.checkpoint();
    // The first file is looked for (the path names the second now, so it is skipped), then the second synced.
    expect(opens.paths.filter((p) => p.startsWith(root))).toEqual([join(root, 'r.txt'), join(root, 'r.txt')]);
  });
});

describe('syncDataFiles', () => {
  it(`syncs several files at once, at most ${syncConcurrency}, and closes every descriptor`, async () => {
    const files = Array.from({ length: 64 }, (_, i) => dataFile(`p${i}.txt`));
    const opens = watchOpens();
    expect(await syncDataFiles(files)).toBe(64);
    expect(opens.most).toBeGreaterThan(1);
    expect(opens.most).toBeLessThanOrEqual(syncConcurrency);
    expect(opens.open).toBe(0);
  });

  it('reaches a file through another of its paths when the first no longer names it', async () => {
    const file = dataFile('b.txt');
    fs.linkSync(file.abs, join(root, 'b-link.txt'));
    fs.rmSync(file.abs);
    const other = dataFile('c.txt');
    const synced = await syncDataFiles([file, { ...file, abs: join(root, 'b-link.txt') }, other]);
    expect(synced).toBe(2);
  });

  it('skips a path that names another file now, and syncs each file once', async () => {
    const file = dataFile('d.txt');
    fs.rmSync(file.abs);
    dataFile('d.txt', 'a new file at the same path');
    const kept = dataFile('e.txt');
    expect(await syncDataFiles([file, kept, kept, { ...kept }])).toBe(1);
  });

  it('throws the first error once the files in progress are done, with every descriptor closed', async () => {
    const files = Array.from({ length: 40 }, (_, i) => dataFile(`q${i}.txt`));
    const opens = watchOpens();
    const probe = await fs.promises.open(files[0]?.abs ?? '', 'r');
    const FileHandle = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const datasync = FileHandle.datasync;
    let calls = 0;
    vi.spyOn(FileHandle, 'datasync').mockImplementation(function (this: unknown) {
      if (++calls === 5)
        return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      return datasync.call(this);
    });
    await expect(syncDataFiles(files)).rejects.toThrow(/EIO/);
    expect(opens.open).toBe(0);
    // No file was started after the failure was known: at most the ones in progress then finished.
    expect(calls).toBeLessThan(5 + syncConcurrency);
  });
});
