/**
 * Retained-key memory: fills the in-memory idempotency store with 100 000
 * completed records of small RemotePrint responses, as the HTTP transport
 * stores them, and prints the bytes per record (goal: at most 300): the JS
 * heap's and the ArrayBuffers' (the store keeps completed records in chunks
 * of bytes, see server/idempotency/record-arena.ts).
 *
 * Run: node --expose-gc --import tsx bench/idempotency-memory.ts [records]
 *  (or node --expose-gc dist/bench/idempotency-memory.js after `npm run build`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { systemClock } from '../server/clock/clock.js';
import { fingerprint } from '../server/idempotency/fingerprint.js';
import { MemoryIdempotencyStore, recordOverheadBytes } from '../server/idempotency/memory-store.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('run node with --expose-gc');
  process.exit(2);
}

const records = Number(process.argv[2] ?? 100_000);

/** Bytes in use on the JS heap and in ArrayBuffers, after full GCs. */
function memoryUsed(): number {
  for (let i = 0; i < 3; i++) gc?.();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** One scope's worth of records; returns the memory growth per record and the store's accounting. */
function fill(scope: string) {
  const store = new MemoryIdempotencyStore({
    clock: systemClock,
    retentionMs: 86_400_000,
    maxEntries: 10_000_000,
    maxBytes: 10 * 1024 ** 3,
  });
  const handle = `h_${randomBytes(16).toString('base64url')}`;
  const before = memoryUsed();
  let offset = 0;
  for (let seq = 1; seq <= records; seq++) {
    const data = `line ${seq} of the log\n`;
    // Keys arrive as flat strings (the HTTP parser copies header bytes); a serialiser's
    // output is built by concatenation, as the body below is.
    const key = Buffer.from(randomUUID(), 'latin1').toString('latin1');
    const outcome = store.begin(scope, key, fingerprint('http', 'Files.RemotePrint', { handle, data, seq }));
    if (outcome.state !== 'run') throw new Error(`unexpected ${outcome.state}`);
    const body = `{"bytesWritten":${data.length},"offset":${offset},"seq":${seq}}`;
    offset += data.length;
    store.complete(outcome.ticket, { status: 200, body, leaseRemainingMs: 30_000 });
  }
  const perRecord = (memoryUsed() - before) / records;
  const stats = store.stats();
  if (stats.entries !== records) throw new Error(`kept ${stats.entries} records, expected ${records}`);
  return { perRecord, accounted: stats.bytes / records, store };
}

console.log(`idempotency store memory, ${records} small RemotePrint records (UUID keys)`);
// The goal is for the common case (no tokens: principal "anonymous"); each record holds its
// principal's name, so a longer name costs its length.
for (const scope of ['anonymous', 'a-principal-with-a-longer-name']) {
  const { perRecord, accounted, store } = fill(scope);
  const verdict = scope === 'anonymous' ? `  goal <= 300: ${perRecord <= 300 ? 'met' : 'MISSED'}` : '';
  console.log(
    `  scope ${JSON.stringify(scope).padEnd(34)} memory ${perRecord.toFixed(1)} B/record` +
      `  accounted ${accounted.toFixed(1)} B/record (overhead constant ${recordOverheadBytes})${verdict}`,
  );
  // Keep the store alive until after the measurement.
  if (store.stats().entries === 0) console.log('empty');
}
