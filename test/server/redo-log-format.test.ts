/** The redo log's frames and files: round trip of every record, torn tails, CRC damage, and the writer. */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameEncoder, scanFrames } from '../../server/redo-log/codec.js';
import { crc32, crc32Table } from '../../server/redo-log/crc32.js';
import { LogWriter } from '../../server/redo-log/log-writer.js';
import type { LogRecord } from '../../server/redo-log/records.js';
import { RecoveryError, recover } from '../../server/redo-log/recovery.js';
import { logName } from '../../server/redo-log/state-dir.js';

/** One record of every type, with awkward values (unicode, empty strings, big numbers, no key). */
const everyRecord: LogRecord[] = [
  { type: 'meta', version: 1, root: '/srv/root', createdAt: 1_767_225_600_000 },
  {
    type: 'lease',
    id: 'l_1',
    principal: 'ana ñ 🦀',
    ttlMs: 30_000,
    expiresAt: 1_767_225_630_000,
    solo: true,
    at: 1,
  },
  { type: 'renew', id: 'l_1', expiresAt: 1_767_225_660_000, at: 2 },
  {
    type: 'open',
    id: 'h_1',
    principal: 'ana ñ 🦀',
    leaseId: 'l_1',
    abs: '/srv/root/a b/ü.txt',
    display: '/a b/ü.txt',
    mode: 'append',
    reopenFlags: 1025,
    dev: 2049,
    ino: 2 ** 40 + 7,
    birth: 1_767_225_599_123.456,
    position: 12,
    lastSeq: 3,
    truncated: true,
  },
  { type: 'print', handle: 'h_1', offset: 12, seq: 4, key: 'k-1', bytes: Buffer.from('héllo\n') },
  { type: 'print', handle: 'h_1', offset: 19, seq: 5, key: undefined, bytes: Buffer.alloc(0) },
  { type: 'print-abort', handle: 'h_1', offset: 19, seq: 5 },
  {
    type: 'print',
    handle: 'h_1',
    offset: 19,
    seq: 5,
    key: 'k-2',
    bytes: Buffer.from('answered\n'),
    answer: { fingerprint: '\u00ff\u0000binary\u0080', leaseRemainingMs: 29_000, at: 1_767_225_600_001 },
  },
  {
    type: 'print',
    handle: 'h_1',
    offset: 28,
    seq: 6,
    key: 'k-3',
    bytes: Buffer.alloc(0),
    answer: { fingerprint: 'f', leaseRemainingMs: undefined, at: 0 },
  },
  { type: 'close', handle: 'h_1' },
  { type: 'lease-end', id: 'l_1' },
  {
    type: 'tombstone',
    id: 'l_1',
    principal: 'p',
    reason: 'lease_revoked',
    forgetAt: 1_700_000_600_000,
    handles: ['h_1', 'h_2'],
  },
  {
    type: 'tombstone',
    id: 'l_2',
    principal: 'p',
    reason: 'lease_expired',
    forgetAt: 1_700_000_000_000,
    handles: [],
  },
  { type: 'remove', abs: '/srv/root/a b' },
  {
    type: 'idem',
    scope: 'anonymous',
    key: '"quoted key"',
    fingerprint: '\u00ff\u0000binary\u0080',
    status: 200,
    body: '{"bytesWritten":6,"offset":12,"seq":4}',
    leaseRemainingMs: 30_000,
    completedAt: 1_767_225_600_123,
  },
  {
    type: 'idem',
    scope: 's',
    key: 'k',
    fingerprint: 'f',
    status: 204,
    body: '',
    leaseRemainingMs: undefined,
    completedAt: 0,
  },
  { type: 'end', count: 14 },
];

const encode = (records: readonly LogRecord[]): Buffer => {
  const encoder = new FrameEncoder(16);
  for (const r of records) encoder.add(r);
  return Buffer.from(encoder.view());
};

/** Records compared as plain data (Buffers as byte arrays). */
const plain = (records: readonly LogRecord[]) =>
  records.map((r) => (r.type === 'print' ? { ...r, bytes: [...r.bytes] } : r));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-redo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('frames', () => {
  it('computes the standard CRC-32 (the check value of "123456789" is cbf43926)', () => {
    expect(crc32(Buffer.from('123456789')).toString(16)).toBe('cbf43926');
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('gives the same CRC by zlib (long runs) and by the table (short ones), at any offset', () => {
    const bytes = Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 131 + 7) & 0xff));
    expect(crc32(Buffer.from('123456789'.repeat(20))).toString(16)).toBe(
      crc32Table(Buffer.from('123456789'.repeat(20))).toString(16),
    );
    for (const [start, end] of [
      [0, 95],
      [0, 96],
      [3, 200],
      [17, 700],
      [100, 101],
    ] as const) {
      expect(crc32(bytes, start, end)).toBe(crc32Table(bytes, start, end));
    }
  });

  it('round-trips every record type, growing the buffer as needed', () => {
    const scan = scanFrames(encode(everyRecord));
    expect(scan.damage).toBeUndefined();
    expect(plain(scan.records)).toEqual(plain(everyRecord));
  });

  it('writes strings as their UTF-8 bytes, short or long, ASCII or not', () => {
    for (const text of [
      '',
      'plain ascii',
      '\u00e9t\u00e9 \u00ff\u0080', // two bytes each
      '\u0800 \u20ac \uffff', // three
      '\u{1f600} a surrogate pair',
      `${'x'.repeat(63)}\u00e9`, // at the length where the JavaScript path ends
      `${'x'.repeat(64)}\u00e9`,
      'a lone surrogate \ud800 here',
    ]) {
      const utf8 = Buffer.from(text, 'utf8');
      const payload = Buffer.concat([Buffer.from([9]), Buffer.alloc(4), utf8]); // tag of `remove`
      payload.writeUInt32LE(utf8.length, 1);
      const frame = Buffer.alloc(8);
      frame.writeUInt32LE(payload.length, 0);
      frame.writeUInt32LE(crc32(payload), 4);
      expect(encode([{ type: 'remove', abs: text }]).toString('hex')).toBe(
        Buffer.concat([frame, payload]).toString('hex'),
      );
    }
  });

  it('stops at a frame cut anywhere, keeping every whole frame before it', () => {
    const data = encode(everyRecord);
    const ends: number[] = [];
    for (let i = 1, pos = 0; i <= everyRecord.length; i++) {
      pos += 8 + data.readUInt32LE(pos);
      ends.push(pos);
    }
    for (let cut = 0; cut < data.length; cut++) {
      const scan = scanFrames(data.subarray(0, cut));
      const whole = ends.filter((e) => e <= cut).length;
      expect(scan.records).toHaveLength(whole);
      expect(scan.goodEnd).toBe(whole === 0 ? 0 : ends[whole - 1]);
      expect(scan.damage === undefined).toBe(cut === scan.goodEnd);
    }
  });

  it('refuses a frame whose payload was altered (CRC), and a zero-filled tail', () => {
    const data = encode(everyRecord.slice(0, 5));
    const flipped = Buffer.from(data);
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 0x40;
    const scan = scanFrames(flipped);
    expect(scan.damage).toBe('crc');
    expect(scan.records).toHaveLength(4);
    const zeros = scanFrames(Buffer.concat([data, Buffer.alloc(4096)]));
    expect(zeros).toMatchObject({ damage: 'length', goodEnd: data.length });
    expect(zeros.records).toHaveLength(5);
  });
});

describe('recovery of damaged logs', () => {
  const root = '/srv/root';
  const meta: LogRecord = { type: 'meta', version: 1, root, createdAt: 0 };
  const lease = (id: string): LogRecord => ({
    type: 'lease',
    id,
    principal: 'p',
    ttlMs: 30_000,
    expiresAt: 30_000,
    solo: false,
    at: 0,
  });

  it('reads format versions 1 and 2, and refuses a later one without cutting anything', () => {
    const tombstone: LogRecord = {
      type: 'tombstone',
      id: 'l_t',
      principal: 'p',
      reason: 'lease_revoked',
      forgetAt: 1,
      handles: [],
    };
    fs.writeFileSync(join(dir, logName(1)), encode([{ ...meta, version: 2 }, lease('l_a'), tombstone]));
    expect(recover(dir, { root }).tombstones.map((t) => t.id)).toEqual(['l_t']);
    const later = encode([{ ...meta, version: 3 }, lease('l_a')]);
    const torn = Buffer.concat([later, Buffer.from([1, 2, 3])]);
    fs.writeFileSync(join(dir, logName(1)), torn);
    expect(() => recover(dir, { root })).toThrow(/format version 3; this server reads 1 and 2/);
    expect(fs.statSync(join(dir, logName(1))).size).toBe(torn.length);
  });

  it('cuts a torn tail off the last log and appends after the good part', () => {
    const good = encode([meta, lease('l_a'), lease('l_b')]);
    const torn = encode([lease('l_c')]).subarray(0, 11);
    fs.writeFileSync(join(dir, logName(1)), Buffer.concat([good, torn]));
    const state = recover(dir, { root });
    expect(state.leases.map((l) => l.id)).toEqual(['l_a', 'l_b']);
    expect(state.stats).toMatchObject({ tornBytes: 11, damage: 'short' });
    expect(state).toMatchObject({ generation: 1, logSize: good.length });
    expect(fs.statSync(join(dir, logName(1))).size).toBe(good.length);
  });

  it('cuts at a CRC mismatch in the last log, losing only what follows it', () => {
    const data = encode([meta, lease('l_a'), lease('l_b'), lease('l_c')]);
    const secondLease = 8 + data.readUInt32LE(0) + 8 + data.readUInt32LE(8 + data.readUInt32LE(0));
    data[secondLease + 12] = (data[secondLease + 12] as number) ^ 1;
    fs.writeFileSync(join(dir, logName(1)), data);
    const state = recover(dir, { root });
    expect(state.leases.map((l) => l.id)).toEqual(['l_a']);
    expect(state.stats.damage).toBe('crc');
  });

  it('refuses damage in a log that is not the last one: that is not a torn tail', () => {
    const data = encode([meta, lease('l_a'), lease('l_b')]);
    data[data.length - 2] = (data[data.length - 2] as number) ^ 1;
    fs.writeFileSync(join(dir, logName(1)), data);
    fs.writeFileSync(join(dir, logName(2)), encode([meta]));
    expect(() => recover(dir, { root })).toThrow(RecoveryError);
  });

  it('refuses a state directory made for another root, and a missing generation', () => {
    fs.writeFileSync(join(dir, logName(1)), encode([meta]));
    expect(() => recover(dir, { root: '/elsewhere' })).toThrow(/belongs to the served root/);
    fs.writeFileSync(join(dir, logName(3)), encode([meta]));
    expect(() => recover(dir, { root })).toThrow(/generation 2 is missing/);
  });

  it('starts a fresh generation 1 in an empty directory', () => {
    const state = recover(dir, { root });
    expect(state).toMatchObject({ generation: 1, logSize: 0, leases: [], handles: [] });
  });
});

describe('LogWriter', () => {
  it('appends at the size recovery kept, cutting what lay beyond', () => {
    const path = join(dir, 'w.log');
    fs.writeFileSync(path, 'keep|garbage');
    const w = LogWriter.open(path, 5, 'never');
    w.append(Buffer.from('more'));
    w.close();
    expect(fs.readFileSync(path, 'utf8')).toBe('keep|more');
  });

  it('in always mode, has a durability promise after an append and none once synced', async () => {
    const w = LogWriter.open(join(dir, 'a.log'), 0, 'always');
    expect(w.whenDurable()).toBeUndefined();
    w.append(Buffer.from('x'));
    const first = w.whenDurable();
    w.append(Buffer.from('y'));
    const second = w.whenDurable();
    expect(first).toBeInstanceOf(Promise);
    await Promise.all([first, second]);
    expect(w.whenDurable()).toBeUndefined();
    w.close();
  });

  it('in batch and never modes, replies never wait for the disk', () => {
    for (const mode of ['batch', 'never'] as const) {
      const w = LogWriter.open(join(dir, `${mode}.log`), 0, mode);
      w.append(Buffer.from('x'));
      expect(w.whenDurable()).toBeUndefined();
      w.close();
    }
  });

  it('in batch mode, syncs in the background within a few ms', async () => {
    const w = LogWriter.open(join(dir, 'b.log'), 0, 'batch', 2);
    w.append(Buffer.from('x'));
    const synced = () => (w as unknown as { synced: number }).synced;
    expect(synced()).toBe(0);
    for (let i = 0; i < 100 && synced() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(synced()).toBe(1);
    w.close();
  });

  it('in batch mode, waits its window before syncing', async () => {
    const w = LogWriter.open(join(dir, 'w.log'), 0, 'batch', 400);
    w.append(Buffer.from('x'));
    const synced = () => (w as unknown as { synced: number }).synced;
    await new Promise((r) => setTimeout(r, 100));
    expect(synced()).toBe(0);
    for (let i = 0; i < 100 && synced() === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(synced()).toBe(1);
    w.close();
  });

  it('refuses appends once closed', () => {
    const w = LogWriter.open(join(dir, 'c.log'), 0, 'never');
    w.close();
    expect(() => w.append(Buffer.from('x'))).toThrow(/closed/);
  });
});
