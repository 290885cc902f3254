/**
 * The redo log as the server drives it, on real files: what recovery brings
 * back after a crash (leases, handles, idempotency records, prints in doubt),
 * redone file contents, checkpoints and their new generation, lazy renewals,
 * and the directory lock.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import type { LoggedHandle, LoggedLease } from '../../server/redo-log/durability-log.js';
import type { FsyncMode } from '../../server/redo-log/log-writer.js';
import type { IdempotencyRecord } from '../../server/redo-log/records.js';
import { recover } from '../../server/redo-log/recovery.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';
import { listStateFiles } from '../../server/redo-log/state-dir.js';

let dir: string;
let root: string;
let state: string;
let clock: ManualClock;
const opened: RedoLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-redo-'));
  root = join(dir, 'root');
  state = join(dir, 'state');
  fs.mkdirSync(root);
  fs.mkdirSync(state);
  clock = new ManualClock();
});
afterEach(async () => {
  for (const log of opened.splice(0)) log.abandon();
  await rm(dir, { recursive: true, force: true });
});

/** Mutable stand-ins for the server's Lease and Handle (the log reads only these fields). */
type TestLease = { -readonly [K in keyof LoggedLease]: LoggedLease[K] };
type TestHandle = { -readonly [K in keyof LoggedHandle]: LoggedHandle[K] };

function open(options: { fsync?: FsyncMode; checkpointBytes?: number } = {}) {
  const { log, recovered } = RedoLog.open({
    stateDir: state,
    root,
    fsync: options.fsync ?? 'never',
    clock,
    ...(options.checkpointBytes ? { checkpointBytes: options.checkpointBytes } : {}),
  });
  opened.push(log);
  return { log, recovered };
}

/** Crash: stop without a checkpoint, as SIGKILL would. */
function crash(log: RedoLog): void {
  log.abandon();
  opened.splice(opened.indexOf(log), 1);
}

function grant(log: RedoLog, id: string, ttlMs = 30_000, solo = false): TestLease {
  const lease = { id, principal: 'ana', ttlMs, expiresAt: clock.now() + ttlMs, solo };
  log.leaseGranted(lease);
  return lease;
}

/** Creates a file in the root and logs a handle on it. */
function openFile(
  log: RedoLog,
  lease: TestLease,
  name: string,
  mode: 'write' | 'append' = 'write',
  truncate = false,
  id = `h_${name}`,
) {
  const abs = join(root, name);
  const fd = fs.openSync(abs, truncate ? 'w' : 'a+');
  const st = fs.fstatSync(fd);
  const handle: TestHandle = {
    id,
    principal: 'ana',
    lease,
    abs,
    display: `/${name}`,
    mode,
    reopenFlags: mode === 'append' ? fs.constants.O_WRONLY | fs.constants.O_APPEND : fs.constants.O_WRONLY,
    dev: st.dev,
    ino: st.ino,
    birth: st.birthtimeMs,
    position: mode === 'append' ? st.size : 0,
    lastSeq: 0,
  };
  log.handleOpened(handle, truncate);
  return { handle, fd };
}

/**
 * The call a print serves: keyed or not; with a fingerprint, a keyed HTTP print
 * whose record carries its answer (and the answer's Lease-Remaining-Ms).
 */
const call = (idempotencyKey: string | undefined, answerFingerprint?: string, leaseRemainingMs?: number) => ({
  idempotencyKey,
  answerFingerprint,
  leaseRemainingMs,
  answerLogged: false,
});

/**
 * A print as the server does it: log first, then write, then move position and seq.
 * With `fingerprint`, a keyed HTTP print whose record carries its answer.
 */
function print(
  log: RedoLog,
  h: { handle: TestHandle; fd: number },
  text: string,
  key?: string,
  fingerprint?: string,
) {
  const bytes = Buffer.from(text);
  const offset = h.handle.position;
  const seq = h.handle.lastSeq + 1;
  log.printing(h.handle, offset, bytes, seq, call(key, fingerprint, 25_000));
  log.flush();
  fs.writeSync(h.fd, bytes, 0, bytes.length, offset);
  h.handle.position = offset + bytes.length;
  h.handle.lastSeq = seq;
  return { offset, seq };
}

function completed(log: RedoLog, key: string, body: string): Omit<IdempotencyRecord, 'type'> {
  const record = {
    scope: 'ana',
    key,
    fingerprint: `fp-${key}`,
    status: 200,
    body,
    leaseRemainingMs: 30_000,
    completedAt: clock.now(),
  };
  log.idempotencyCompleted(record);
  return record;
}

describe('recovery after a crash', () => {
  it('brings back leases, handles with position and seq, idempotency records, and redoes lost bytes', () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    const f = openFile(log, lease, 'a.txt');
    print(log, f, 'hello ', 'k1');
    const rec = completed(log, 'k1', '{"offset":0}');
    print(log, f, 'world\n', 'k2');
    completed(log, 'k2', '{"offset":6}');
    fs.closeSync(f.fd);
    crash(log);
    // What power loss could do to unsynced data: the file lost its bytes.
    fs.truncateSync(f.handle.abs, 0);

    const { log: again, recovered } = open();
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('hello world\n');
    expect(recovered.leases).toEqual([
      { id: 'l_1', principal: 'ana', ttlMs: 30_000, expiresAt: lease.expiresAt, solo: false },
    ]);
    expect(recovered.handles).toEqual([
      expect.objectContaining({ id: 'h_a.txt', leaseId: 'l_1', position: 12, lastSeq: 2, mode: 'write' }),
    ]);
    expect(recovered.idempotency).toContainEqual({ type: 'idem', ...rec });
    expect(recovered.inDoubt).toEqual([]);
    expect(recovered.stats).toMatchObject({
      redoneWrites: 2,
      redoneBytes: 12,
      skippedWrites: 0,
      tornBytes: 0,
    });
    expect(again.inDoubtCount).toBe(0);
  });

  it('rewrites bytes that are already there without changing the file (redo is idempotent)', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'same.txt', 'append');
    for (let i = 0; i < 50; i++) print(log, f, `line ${i}\n`);
    fs.closeSync(f.fd);
    const before = fs.readFileSync(f.handle.abs);
    crash(log);
    const first = open();
    crash(first.log);
    const second = open();
    expect(second.recovered.stats.redoneWrites).toBe(50);
    expect(fs.readFileSync(f.handle.abs)).toEqual(before);
  });

  it('reports a keyed print logged without its response as in doubt, once, for the same key, handle and bytes', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'b.txt', 'append');
    print(log, f, 'one\n', 'k1');
    completed(log, 'k1', '{}');
    print(log, f, 'two\n', 'k2');
    fs.closeSync(f.fd);
    crash(log);

    const { log: again, recovered } = open();
    expect(recovered.inDoubt).toEqual([
      expect.objectContaining({ principal: 'ana', key: 'k2', handle: 'h_b.txt', seq: 2, offset: 4 }),
    ]);
    expect(again.inDoubtCount).toBe(1);
    expect(again.takeInDoubt('ana', 'k2', 'h_b.txt', 2, Buffer.from('other'))).toBeUndefined();
    expect(again.takeInDoubt('ana', 'k2', 'h_b.txt', 3, Buffer.from('two\n'))).toBeUndefined();
    expect(again.takeInDoubt('bob', 'k2', 'h_b.txt', 2, Buffer.from('two\n'))).toBeUndefined();
    expect(again.takeInDoubt('ana', 'k2', 'h_b.txt', undefined, Buffer.from('two\n'))).toEqual({
      offset: 4,
      seq: 2,
      bytesWritten: 4,
    });
    expect(again.takeInDoubt('ana', 'k2', 'h_b.txt', 2, Buffer.from('two\n'))).toBeUndefined();
    expect(again.inDoubtCount).toBe(0);
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('one\ntwo\n');
  });

  it('neither redoes nor counts a print whose write failed', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'c.txt');
    print(log, f, 'kept', 'k1');
    log.printing(f.handle, 4, Buffer.from('FAILED'), 2, call('k2'));
    log.printFailed(f.handle, 4, 2);
    fs.closeSync(f.fd);
    crash(log);
    const { recovered } = open();
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('kept');
    expect(recovered.handles[0]).toMatchObject({ position: 4, lastSeq: 1 });
    expect(recovered.inDoubt.map((p) => p.key)).toEqual(['k1']);
  });

  it('brings a keyed print logged with its answer back as a stored answer, not in doubt', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'e.txt', 'append');
    print(log, f, 'one\n', 'k1', 'fp1');
    clock.advance(1_000);
    const at = clock.now();
    print(log, f, 'two\n', 'k2', 'fp2');
    fs.closeSync(f.fd);
    crash(log);

    const { log: again, recovered } = open();
    expect(recovered.inDoubt).toEqual([]);
    expect(again.inDoubtCount).toBe(0);
    expect(recovered.idempotency).toEqual([
      expect.objectContaining({ scope: 'ana', key: 'k1', fingerprint: 'fp1', status: 200 }),
      {
        type: 'idem',
        scope: 'ana',
        key: 'k2',
        fingerprint: 'fp2',
        status: 200,
        body: '{"bytesWritten":4,"offset":4,"seq":2}',
        leaseRemainingMs: 25_000,
        completedAt: at,
      },
    ]);
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('one\ntwo\n');
  });

  it('undoes every print of a failed group, and the answers they stood for, back to before the first', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'g.txt');
    print(log, f, 'kept\n', 'k0', 'fp0');
    // One turn's group of three prints, logged together; its writev failed, so each is aborted in order.
    log.printing(f.handle, 5, Buffer.from('AAA'), 2, call('k1', 'fp1', 1));
    log.printing(f.handle, 8, Buffer.from('BBB'), 3, call('k2', undefined, 1));
    log.printing(f.handle, 11, Buffer.from('CCC'), 4, call('k3', 'fp3', 1));
    log.flush();
    for (const [offset, seq] of [
      [5, 2],
      [8, 3],
      [11, 4],
    ] as const) {
      log.printFailed(f.handle, offset, seq);
    }
    fs.closeSync(f.fd);
    crash(log);

    const { recovered } = open();
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('kept\n');
    expect(recovered.handles[0]).toMatchObject({ position: 5, lastSeq: 1 });
    expect(recovered.idempotency.map((r) => r.key)).toEqual(['k0']);
    expect(recovered.inDoubt).toEqual([]);
  });

  it("voids only the failed handle's print, not another handle's at the same offset of the same file", () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    const a = openFile(log, lease, 'same.txt', 'write', false, 'h_a');
    const b = openFile(log, lease, 'same.txt', 'write', false, 'h_b');
    // One turn: both handles print at offset 0; b's write lands, a's fails.
    log.printing(a.handle, 0, Buffer.from('AAAA'), 1, call('ka', 'fpa', 1));
    log.printing(b.handle, 0, Buffer.from('BBBB'), 1, call('kb', 'fpb', 1));
    log.flush();
    fs.writeSync(b.fd, Buffer.from('BBBB'), 0, 4, 0);
    log.printFailed(a.handle, 0, 1);
    fs.closeSync(a.fd);
    fs.closeSync(b.fd);
    crash(log);

    const { recovered } = open();
    expect(fs.readFileSync(b.handle.abs, 'utf8')).toBe('BBBB');
    expect(recovered.idempotency.map((r) => r.key)).toEqual(['kb']);
    const byId = Object.fromEntries(recovered.handles.map((h) => [h.id, h]));
    expect(byId.h_a).toMatchObject({ position: 0, lastSeq: 0 });
    expect(byId.h_b).toMatchObject({ position: 4, lastSeq: 1 });
  });

  it('redoes a truncating open instead of the prints it erased, so the file ends exactly as logged', () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    const first = openFile(log, lease, 'd.txt');
    print(log, first, 'aaaaaaaa');
    fs.closeSync(first.fd);
    const second = openFile(log, lease, 'd.txt', 'write', true, 'h_d2');
    print(log, second, 'bb');
    fs.closeSync(second.fd);
    crash(log);
    fs.writeFileSync(first.handle.abs, 'aaaaaaaa'); // the truncation did not reach the disk
    const { recovered } = open();
    expect(fs.readFileSync(first.handle.abs, 'utf8')).toBe('bb');
    expect(recovered.stats).toMatchObject({ redoneWrites: 1, redoneTruncations: 1 });
  });

  it('never writes into another file at the same path, nor under a removed path', () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    fs.mkdirSync(join(root, 'dir'));
    const replaced = openFile(log, lease, 'e.txt');
    print(log, replaced, 'old');
    fs.closeSync(replaced.fd);
    const removed = openFile(log, lease, 'dir/f.txt');
    print(log, removed, 'gone');
    fs.closeSync(removed.fd);
    log.pathRemoved(join(root, 'dir'));
    crash(log);
    fs.rmSync(replaced.handle.abs);
    fs.writeFileSync(`${replaced.handle.abs}.new`, 'new content');
    fs.renameSync(`${replaced.handle.abs}.new`, replaced.handle.abs);
    fs.rmSync(removed.handle.abs);
    fs.writeFileSync(removed.handle.abs, 'recreated');
    const { recovered } = open();
    expect(fs.readFileSync(replaced.handle.abs, 'utf8')).toBe('new content');
    expect(fs.readFileSync(removed.handle.abs, 'utf8')).toBe('recreated');
    expect(recovered.stats).toMatchObject({ redoneWrites: 0, skippedWrites: 1 });
  });

  it('tells a new file from the removed one by birth time, even when the inode number is handed out again', () => {
    const { log } = open();
    const f = openFile(log, grant(log, 'l_1'), 'k.txt');
    // As if the logged file had been removed and this one made with its freed inode number.
    f.handle.birth = f.handle.birth + 1;
    log.handleOpened({ ...f.handle, id: 'h_reborn' }, false);
    log.printing({ ...f.handle, id: 'h_reborn' }, 0, Buffer.from('old file'), 1, call(undefined));
    fs.closeSync(f.fd);
    crash(log);
    const { recovered } = open();
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('');
    expect(recovered.stats).toMatchObject({ redoneWrites: 0, skippedWrites: 1 });
  });

  it('forgets closed handles and ended leases, and leases the log proves had expired', () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    const closed = openFile(log, lease, 'g.txt');
    log.handleClosed(closed.handle);
    fs.closeSync(closed.fd);
    log.leaseEnded(grant(log, 'l_ended'));
    grant(log, 'l_stale', 1_000);
    clock.advance(20_000);
    log.leaseRenewed({ ...lease, expiresAt: clock.now() + lease.ttlMs });
    crash(log);
    const { recovered } = open();
    expect(recovered.handles).toEqual([]);
    expect(recovered.leases.map((l) => l.id)).toEqual(['l_1']);
    expect(recovered.stats.expiredLeases).toBe(1);
  });
});

describe('lazy renewals', () => {
  it('logs a renewal only once the logged expiry is more than half a TTL behind', () => {
    const { log } = open();
    const lease = grant(log, 'l_1', 10_000);
    const before = log.stats.records;
    for (let i = 0; i < 100; i++) {
      clock.advance(100);
      lease.expiresAt = clock.now() + lease.ttlMs;
      log.leaseRenewed(lease);
    }
    // 10 s of renewals every 100 ms with a 10 s TTL: one record per 5 s, not 100.
    expect(log.stats.records - before).toBe(1);
    crash(log);
    const { recovered } = open();
    expect(lease.expiresAt - (recovered.leases[0]?.expiresAt ?? 0)).toBeLessThanOrEqual(lease.ttlMs / 2);
  });
});

describe('checkpoints', () => {
  function withSource(log: RedoLog, leases: TestLease[], handles: TestHandle[], idem: IdempotencyRecord[]) {
    log.setSnapshotSource({ leases: () => leases, handles: () => handles, idempotency: () => idem });
  }

  it('start a new generation, keep the state, delete older files, and leave nothing to redo', async () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    const f = openFile(log, lease, 'h.txt', 'append');
    print(log, f, 'before\n', 'k1');
    const idem = completed(log, 'k1', '{"offset":0}');
    withSource(log, [lease], [f.handle], [{ type: 'idem', ...idem }]);
    await log.checkpoint();
    expect(listStateFiles(state)).toEqual({ logs: [2], checkpoints: [2], temps: [] });
    print(log, f, 'after\n');
    fs.closeSync(f.fd);
    crash(log);

    const { recovered } = open();
    expect(recovered.stats).toMatchObject({ checkpoint: 2, logsRead: 1, redoneWrites: 1 });
    expect(recovered.handles[0]).toMatchObject({ id: 'h_h.txt', position: 13, lastSeq: 2 });
    expect(recovered.leases.map((l) => l.id)).toEqual(['l_1']);
    expect(recovered.idempotency).toEqual([{ type: 'idem', ...idem }]);
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe('before\nafter\n');
  });

  it('runs by itself once the log passes its size, and again each time it grows that much', async () => {
    const { log } = open({ checkpointBytes: 4096 });
    const lease = grant(log, 'l_1');
    const f = openFile(log, lease, 'i.txt', 'append');
    withSource(log, [lease], [f.handle], []);
    let printed = 0;
    while (log.stats.checkpoints < 2 && printed < 5_000) {
      print(log, f, `${'x'.repeat(60)} ${++printed}\n`);
      if (printed % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(log.stats.checkpoints).toBe(2);
    // A generation ends only past the threshold: 4 KiB is about 40 print records of ~106 bytes.
    expect(printed).toBeGreaterThan(70);
    const files = listStateFiles(state);
    expect(files.checkpoints).toHaveLength(1);
    expect(files.logs[0]).toBe(files.checkpoints[0]);
    const content = fs.readFileSync(f.handle.abs, 'utf8');
    fs.closeSync(f.fd);
    crash(log);
    const { recovered } = open();
    expect(recovered.handles[0]?.lastSeq).toBe(printed);
    expect(fs.readFileSync(f.handle.abs, 'utf8')).toBe(content);
  });

  it('are written on close, so a clean restart reads one checkpoint and an empty log', async () => {
    const { log } = open({ fsync: 'batch' });
    const lease = grant(log, 'l_1');
    const f = openFile(log, lease, 'j.txt');
    print(log, f, 'data');
    withSource(log, [lease], [f.handle], []);
    await log.close();
    opened.splice(opened.indexOf(log), 1);
    log.leaseEnded(lease); // after close: ignored (shutdown ends every lease in memory only)
    fs.closeSync(f.fd);
    const { recovered } = open();
    // The checkpoint (meta, lease, open, end) and the new generation's meta record.
    expect(recovered.stats).toMatchObject({ checkpoint: 2, records: 5, redoneWrites: 0, tornBytes: 0 });
    expect(recovered.leases.map((l) => l.id)).toEqual(['l_1']);
    expect(recovered.handles[0]).toMatchObject({ position: 4, lastSeq: 1 });
  });

  it('fall back to the logs when a checkpoint was cut short', async () => {
    const { log } = open();
    const lease = grant(log, 'l_1');
    withSource(log, [lease], [], []);
    await log.checkpoint();
    crash(log);
    const ckpt = join(state, 'checkpoint-0000000002.ckpt');
    fs.writeFileSync(join(state, 'checkpoint-0000000003.ckpt'), fs.readFileSync(ckpt).subarray(0, 20));
    fs.writeFileSync(join(state, 'leftover.ckpt.tmp'), 'partial');
    // Generation 3's log is missing but so is a whole checkpoint 3: recovery uses checkpoint 2 and log 2.
    const state2 = recover(state, { root });
    expect(state2.stats.checkpoint).toBe(2);
    expect(state2.leases.map((l) => l.id)).toEqual(['l_1']);
    expect(listStateFiles(state).temps).toEqual([]);
  });
});

describe('the state directory lock', () => {
  it('refuses a second log on the same directory until the first is closed', async () => {
    const { log } = open();
    expect(() => open()).toThrow(/already used by this process/);
    log.setSnapshotSource({ leases: () => [], handles: () => [], idempotency: () => [] });
    await log.close();
    opened.splice(opened.indexOf(log), 1);
    expect(() => open()).not.toThrow();
  });

  it('refuses a directory whose lock names a live process, and takes over a dead one', () => {
    fs.writeFileSync(join(state, 'lock'), `${process.ppid}\n`);
    expect(() => open()).toThrow(/in use by process/);
    fs.writeFileSync(join(state, 'lock'), '2147483646\n');
    expect(() => open()).not.toThrow();
  });
});
