import { sweepBudget } from './memory-store.js';
import type { IdempotencyStore } from './store.js';

/**
 * Lets expired idempotency records go while the server is idle. New records
 * sweep the oldest as they come (memory-store.ts), but with no keyed calls
 * nothing did: records past their retention kept their memory and were
 * counted in leasegate_idempotency_records until traffic came back, and then
 * the first call paid for all of them. Once every `everyMs`, at most
 * {@link sweepBudget} records a turn of the event loop, in as many turns as
 * it takes. Returns the function that stops it.
 */
export function sweepPeriodically(store: IdempotencyStore, everyMs = 1_000): () => void {
  const sweep = store.sweep?.bind(store);
  if (sweep === undefined) return () => {};
  let slice: NodeJS.Immediate | undefined;
  const run = (): void => {
    slice = undefined;
    if (sweep(sweepBudget) === sweepBudget) slice = setImmediate(run);
  };
  const timer = setInterval(() => {
    if (slice === undefined) run();
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (slice !== undefined) clearImmediate(slice);
  };
}
