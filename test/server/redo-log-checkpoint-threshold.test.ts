/**
 * The log is checkpointed once it reaches max(checkpointBytes, the last
 * checkpoint's size), so that checkpoints cost at most as much I/O as the log:
 * across a restart too, where the last checkpoint is the one recovery read
 * (the threshold went back to checkpointBytes, and a big store was written
 * out again after every checkpointBytes of log).
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import type { IdempotencyRecord } from '../../server/redo-log/records.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';
import { checkpointName, listStateFiles } from '../../server/redo-log/state-dir.js';

let dir: string;
let root: string;
let state: string;
const clock = new ManualClock();
const logs: RedoLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-ckpt-threshold-'));
  root = join(dir, 'root');
  state = join(dir, 'state');
  fs.mkdirSync(root);
  fs.mkdirSync(state);
});
afterEach(async () => {
  for (const log of logs.splice(0)) log.abandon();
  await rm(dir, { recursive: true, force: true });
});

const checkpointBytes = 4096;

/** A log whose snapshot source holds `records` (a stand-in for the idempotency store). */
function open(records: IdempotencyRecord[]) {
  const opened = RedoLog.open({ stateDir: state, root, fsync: 'never', clock, checkpointBytes });
  logs.push(opened.log);
  opened.log.setSnapshotSource({ leases: () => [], handles: () => [], idempotency: () => records });
  return opened;
}

function record(i: number): IdempotencyRecord {
  const body = `{"i":${i},"pad":"${'x'.repeat(60)}"}`;
  return {
    type: 'idem',
    scope: 'ana',
    key: `k${i}`,
    fingerprint: 'fp',
    status: 200,
    body,
    leaseRemainingMs: 1,
    completedAt: 0,
  };
}

/** Logs records (each ~100 bytes) until the log holds `bytes` more, letting a checkpoint start if one would. */
async function logMore(log: RedoLog, records: IdempotencyRecord[], bytes: number): Promise<void> {
  const goal = log.stats.bytes + bytes;
  while (log.stats.bytes < goal) {
    const r = record(records.length);
    records.push(r);
    log.idempotencyCompleted(r);
    log.flush();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
}

it('after a restart, waits for the log to reach the size of the checkpoint recovery read', async () => {
  // A store of 400 records (~40 KB): its checkpoint is ten times checkpointBytes.
  const records = Array.from({ length: 400 }, (_, i) => record(i));
  const first = open(records);
  await first.log.close();
  logs.splice(logs.indexOf(first.log), 1);
  const [n] = listStateFiles(state).checkpoints;
  const size = fs.statSync(join(state, checkpointName(n ?? 0))).size;
  expect(size).toBeGreaterThan(8 * checkpointBytes);

  const { log, recovered } = open(records);
  expect(recovered.stats.checkpoint).toBe(n);
  // Half the checkpoint's size, several times checkpointBytes: no checkpoint yet.
  await logMore(log, records, size / 2);
  expect(log.stats.generation).toBe(n);
  expect(log.stats.checkpoints).toBe(0);
  // Past it: one.
  await logMore(log, records, size / 2 + 1_000);
  await vi.waitFor(() => expect(log.stats.checkpoints).toBe(1));
});

it('without a checkpoint to recover from, checkpoints once the log reaches checkpointBytes', async () => {
  const records: IdempotencyRecord[] = [];
  const { log } = open(records);
  await logMore(log, records, checkpointBytes + 200);
  await vi.waitFor(() => expect(log.stats.checkpoints).toBe(1));
});
