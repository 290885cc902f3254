/** The durable idempotency store: completions reach the log first, and come back after a crash. */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import { MemoryIdempotencyStore } from '../../server/idempotency/memory-store.js';
import type { BeginOutcome, IdempotencyTicket } from '../../server/idempotency/store.js';
import { DurableIdempotencyStore } from '../../server/redo-log/durable-idempotency-store.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';

const day = 86_400_000;
let dir: string;
let clock: ManualClock;
let logs: RedoLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-redo-idem-'));
  fs.mkdirSync(join(dir, 'root'));
  clock = new ManualClock();
});
afterEach(async () => {
  for (const log of logs) log.abandon();
  logs = [];
  await rm(dir, { recursive: true, force: true });
});

function start(maxEntries = 1_000) {
  const { log, recovered } = RedoLog.open({ stateDir: dir, root: join(dir, 'root'), fsync: 'never', clock });
  logs.push(log);
  const memory = new MemoryIdempotencyStore({ clock, retentionMs: day, maxEntries, maxBytes: 1_000_000 });
  const store = new DurableIdempotencyStore(memory, log, clock);
  store.restore(recovered.idempotency);
  log.setSnapshotSource({ leases: () => [], handles: () => [], idempotency: () => store.records() });
  return { log, store, memory };
}

function ticket(outcome: BeginOutcome): IdempotencyTicket {
  if (outcome.state !== 'run') throw new Error(`expected run, got ${outcome.state}`);
  return outcome.ticket;
}

const crash = (log: RedoLog) => {
  log.abandon();
  logs = logs.filter((l) => l !== log);
};

describe('DurableIdempotencyStore', () => {
  it('replays a completed record after a crash, with its status, body and header', () => {
    const first = start();
    first.store.complete(ticket(first.store.begin('ana', 'k1', 'fp1')), {
      status: 200,
      body: '{"offset":0}',
      leaseRemainingMs: 30_000,
    });
    first.store.complete(ticket(first.store.begin('ana', 'k2', 'fp2')), {
      status: 404,
      body: '{"code":"not_found"}',
      leaseRemainingMs: undefined,
    });
    crash(first.log);
    const { store } = start();
    expect(store.begin('ana', 'k1', 'fp1')).toEqual({
      state: 'replay',
      response: expect.objectContaining({ status: 200, body: '{"offset":0}', leaseRemainingMs: 30_000 }),
    });
    expect(store.begin('ana', 'k2', 'fp2')).toMatchObject({ state: 'replay', response: { status: 404 } });
    expect(store.begin('ana', 'k1', 'other')).toEqual({ state: 'reused', fingerprint: 'fp1' });
    expect(store.begin('bob', 'k1', 'fp1').state).toBe('run');
  });

  it('does not log a response larger than the byte bound, which the store does not keep', () => {
    const first = start();
    const logBytes = () =>
      fs.readdirSync(dir).reduce((sum, name) => sum + fs.statSync(join(dir, name)).size, 0);
    const before = logBytes();
    first.store.complete(ticket(first.store.begin('ana', 'huge', 'fp')), {
      status: 200,
      body: 'x'.repeat(2_000_000),
      leaseRemainingMs: undefined,
    });
    first.log.flush();
    expect(logBytes() - before).toBeLessThan(1_000);
    crash(first.log);
    const { store } = start();
    expect(store.begin('ana', 'huge', 'fp').state).toBe('run');
  });

  it('forgets calls that were in flight or abandoned: their retry runs again', () => {
    const first = start();
    first.store.begin('ana', 'in-flight', 'fp');
    first.store.abandon(ticket(first.store.begin('ana', 'abandoned', 'fp')));
    crash(first.log);
    const { store } = start();
    expect(store.begin('ana', 'in-flight', 'fp').state).toBe('run');
    expect(store.begin('ana', 'abandoned', 'fp').state).toBe('run');
  });

  it('keeps retention across restarts: a record expires a day after it completed, not after the restart', () => {
    const first = start();
    first.store.complete(ticket(first.store.begin('ana', 'old', 'fp')), {
      status: 200,
      body: '{}',
      leaseRemainingMs: undefined,
    });
    clock.advance(day - 1_000);
    first.store.complete(ticket(first.store.begin('ana', 'new', 'fp')), {
      status: 200,
      body: '{}',
      leaseRemainingMs: undefined,
    });
    crash(first.log);
    clock.advance(2_000);
    const { store } = start();
    expect(store.get('ana', 'old')).toBeUndefined();
    expect(store.get('ana', 'new')?.response?.status).toBe(200);
    expect(store.stats().entries).toBe(1);
  });

  it('carries its records through a checkpoint, which replaces the logs they were in', async () => {
    const first = start();
    for (let i = 0; i < 50; i++) {
      first.store.complete(ticket(first.store.begin('ana', `k${i}`, 'fp')), {
        status: 200,
        body: `{"i":${i}}`,
        leaseRemainingMs: undefined,
      });
    }
    await first.log.checkpoint();
    first.store.complete(ticket(first.store.begin('ana', 'after', 'fp')), {
      status: 200,
      body: '{}',
      leaseRemainingMs: undefined,
    });
    crash(first.log);
    const { store, memory } = start();
    expect(memory.stats().entries).toBe(51);
    expect(store.begin('ana', 'k7', 'fp')).toMatchObject({ state: 'replay', response: { body: '{"i":7}' } });
    expect(store.begin('ana', 'after', 'fp').state).toBe('replay');
    expect([...memory.completed()].map((r) => r.key).slice(0, 3)).toEqual(['k0', 'k1', 'k2']);
  });

  it('applies the entry bound to restored records as to new ones (oldest dropped first)', () => {
    const first = start();
    for (let i = 0; i < 10; i++) {
      clock.advance(1);
      first.store.complete(ticket(first.store.begin('ana', `k${i}`, 'fp')), {
        status: 200,
        body: '{}',
        leaseRemainingMs: undefined,
      });
    }
    crash(first.log);
    const { memory } = start(4);
    expect([...memory.completed()].map((r) => r.key)).toEqual(['k6', 'k7', 'k8', 'k9']);
  });
});
