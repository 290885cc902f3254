/**
 * A checkpoint of a full idempotency store is written in slices, with turns
 * of the event loop between them, so that calls are served meanwhile (it was
 * encoded in 1 MiB stretches: 60-170 ms without a turn at 10^6 records); and
 * a crash at any point while it is written, with calls going on, still
 * recovers every acknowledged record. Real RedoLog, real stores, real files.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import { MemoryIdempotencyStore } from '../../server/idempotency/memory-store.js';
import type { IdempotencyTicket } from '../../server/idempotency/store.js';
import { DurableIdempotencyStore } from '../../server/redo-log/durable-idempotency-store.js';
import type { IdempotencyRecord } from '../../server/redo-log/records.js';
import { recover } from '../../server/redo-log/recovery.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';

let dir: string;
let root: string;
let clock: ManualClock;
const logs: RedoLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-ckpt-slices-'));
  root = join(dir, 'root');
  fs.mkdirSync(root);
  fs.mkdirSync(join(dir, 'state'));
  clock = new ManualClock();
});
afterEach(async () => {
  for (const log of logs.splice(0)) log.abandon();
  await rm(dir, { recursive: true, force: true });
});

/** A log and a durable store of `records` completed records (bounded at `records`), with records() wrapped by `wrap`. */
function fullStore(
  records: number,
  wrap: (records: Iterable<IdempotencyRecord>) => Iterable<IdempotencyRecord> = (r) => r,
) {
  const { log } = RedoLog.open({ stateDir: join(dir, 'state'), root, fsync: 'never', clock });
  logs.push(log);
  const memory = new MemoryIdempotencyStore({
    clock,
    retentionMs: 86_400_000,
    maxEntries: records,
    maxBytes: 1e9,
  });
  const store = new DurableIdempotencyStore(memory, log, clock);
  log.setSnapshotSource({ leases: () => [], handles: () => [], idempotency: () => wrap(store.records()) });
  for (let i = 0; i < records; i++) complete(store, `key-${i}`);
  log.flush();
  return { log, store, memory };
}

/** A keyed call as the server completes it: a UUID-sized key, a print's answer (~150-byte frames). */
function complete(store: DurableIdempotencyStore, key: string): void {
  const begun = store.begin('anonymous', key.padEnd(36, '.'), 'fingerprint.....');
  if (begun.state !== 'run') throw new Error(`${key}: ${begun.state}`);
  const ticket: IdempotencyTicket = begun.ticket;
  store.complete(ticket, {
    status: 200,
    body: `{"bytesWritten":12,"offset":${key.length},"seq":42}`,
    leaseRemainingMs: 1,
  });
}

/** Counts the turns of the event loop (one setImmediate callback each) until stopped. */
function turnCounter() {
  const counter = { turns: 0, stopped: false };
  const tick = () => {
    counter.turns++;
    if (!counter.stopped) setImmediate(tick);
  };
  setImmediate(tick);
  return counter;
}

it('gives the event loop a turn at least every ~64 KiB of frames while it writes the idempotency records', async () => {
  const counter = turnCounter();
  // Records read between two turns (a run): the checkpoint reads them lazily as it encodes.
  const runs: number[] = [];
  let seen = -1;
  let run = 0;
  const { log } = fullStore(40_000, function* (records) {
    for (const r of records) {
      if (counter.turns !== seen) {
        if (seen >= 0) runs.push(run);
        seen = counter.turns;
        run = 0;
      }
      run++;
      yield r;
    }
    runs.push(run);
  });
  await log.checkpoint();
  counter.stopped = true;
  expect(runs.reduce((a, b) => a + b, 0)).toBe(40_000);
  // 64 KiB is ~440 frames of ~150 bytes; a 1 MiB stretch was ~7,000 (40,000 records in 6 runs).
  expect(Math.max(...runs)).toBeLessThan(1_000);
  expect(runs.length).toBeGreaterThan(40);
});

it('recovers every acknowledged record after a crash at any point of a checkpoint, while calls complete and evict', async () => {
  const bound = 20_000;
  const { log, store, memory } = fullStore(bound);
  const done = log.checkpoint();
  let finished = false;
  done.then(() => {
    finished = true;
  });
  const crashes: { state: string; live: Map<string, string> }[] = [];
  let next = bound;
  for (let turn = 0; !finished; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    // Everything completed so far has been written (each tick's records are): a crash now must keep all of it.
    if (turn % 4 === 0) {
      const state = copyStateDir(join(dir, 'state'), join(dir, `crash-${turn}`));
      if (state !== undefined) crashes.push({ state, live: liveRecords(memory) });
    }
    // Calls go on: each new record evicts the oldest (the store is at its bound).
    for (let i = 0; i < 25; i++) complete(store, `key-${next++}`);
    clock.advance(1);
  }
  await done;
  log.flush();
  crashes.push({
    state: copyStateDir(join(dir, 'state'), join(dir, 'crash-end')) ?? '',
    live: liveRecords(memory),
  });
  // Crash points before, inside and after the write of the checkpoint file.
  expect(crashes.length).toBeGreaterThan(5);
  for (const { state, live } of crashes) {
    const recovered = new Map(recover(state, { root }).idempotency.map((r) => [r.key, r.body]));
    const lost = [...live].filter(([key, body]) => recovered.get(key) !== body);
    expect({ state, lost: lost.length }).toEqual({ state, lost: 0 });
  }
});

/** Key -> body of each completed record the store holds now. */
function liveRecords(memory: MemoryIdempotencyStore): Map<string, string> {
  return new Map([...memory.completed()].map((r) => [r.key, r.response.body]));
}

/**
 * Copies the state directory as a crash would leave it, or undefined when the
 * checkpoint renamed or deleted a file meanwhile (its threadpool work runs
 * beside this copy), so that the copy could mix two moments.
 */
function copyStateDir(from: string, to: string): string | undefined {
  const names = fs.readdirSync(from).filter((name) => name !== 'lock');
  fs.mkdirSync(to);
  try {
    for (const name of names) fs.writeFileSync(join(to, name), fs.readFileSync(join(from, name)));
  } catch {
    return undefined;
  }
  const after = fs.readdirSync(from).filter((name) => name !== 'lock');
  return after.join('\n') === names.join('\n') ? to : undefined;
}
