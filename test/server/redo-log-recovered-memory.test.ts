/**
 * What recovery leaves on the heap: once the recovered state is restored (the
 * idempotency records into the store's off-heap arena), the server keeps none
 * of it. It kept the whole recovered object, a JS object per record, for the
 * life of the process: 312 MiB of heap after recovering 10^6 records against
 * 21 MiB before the restart (found by a soak test).
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../server/clock/clock.js';
import { MemoryIdempotencyStore } from '../../server/idempotency/memory-store.js';
import { buildServer } from '../../server/index.js';
import { DurableIdempotencyStore } from '../../server/redo-log/durable-idempotency-store.js';
import { RedoLog } from '../../server/redo-log/redo-log.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after full collections. */
async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

const records = 40_000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-recovered-'));
  mkdirSync(join(dir, 'root'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'empty'));
  const clock = systemClock;
  const root = realpathSync(join(dir, 'root'));
  const { log } = RedoLog.open({ stateDir: join(dir, 'state'), root, fsync: 'never', clock });
  const memory = new MemoryIdempotencyStore({
    clock,
    retentionMs: 86_400_000,
    maxEntries: 1e6,
    maxBytes: 1e9,
  });
  const store = new DurableIdempotencyStore(memory, log, clock);
  for (let i = 0; i < records; i++) {
    const begun = store.begin('anonymous', `key-${i}`, `fingerprint-${i % 1000}`.padEnd(16, '.'));
    if (begun.state !== 'run') throw new Error(`record ${i}: ${begun.state}`);
    store.complete(begun.ticket, {
      status: 200,
      body: `{"bytesWritten":64,"offset":${i * 64}}`,
      leaseRemainingMs: 1,
    });
  }
  log.abandon(); // a crash: the next start recovers every record from the log
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** How much the heap grows while a server built on `stateDir` is up (after full collections). */
async function heapOfServer(
  stateDir: string,
  check: (app: FastifyInstance) => Promise<void>,
): Promise<number> {
  const before = await heapAfterGc();
  const app = await buildServer({ root: join(dir, 'root'), stateDir, logLevel: 'silent' });
  try {
    await check(app);
    return (await heapAfterGc()) - before;
  } finally {
    await app.close();
  }
}

it('keeps none of the recovered records on the heap once they are restored', async () => {
  // A server on an empty state directory first (schemas compiled, docs built): the baseline.
  const empty = await heapOfServer(join(dir, 'empty'), async () => {});
  const recovered = await heapOfServer(join(dir, 'state'), async (app) => {
    const reply = await app.inject({
      method: 'POST',
      url: '/v1/Directories/MakeDirectory',
      headers: { 'idempotency-key': `key-${records - 1}` },
      payload: { path: 'x' },
    });
    // The last record came back (its key is taken by another request: 422), so recovery did run.
    expect(reply.statusCode).toBe(422);
  });
  // Each record held as JS objects took ~280 B (11 MB here); the arena holds them outside the heap.
  expect((recovered - empty) / records).toBeLessThan(50);
});
