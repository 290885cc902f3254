import { sweepBudget } from './memory-store.js';
import type { IdempotencyStore } from './store.js';

/**
 * Lets expired idempotency records go while the server is idle. New records
 * sweep the oldest as they come (memory-store.ts), but with no keyed calls
 * nothing did: records past their retention kept their memory and were
 * counted in leasegate_idempotency_records until traffic came back, and then
 * the first call paid for all of them. Once every `everyMs`, the store's
 * expire(limit) drops at most {@link sweepBudget} records a turn of the event
 * loop, in as many turns as it takes. Returns the function that stops it.
 */
export function sweepPeriodically(store: IdempotencyStore, everyMs = 1_000): () => void {
  let slice: NodeJS.Immediate | undefined;
  let pending = false;
  const run = (): void => {
    slice = undefined;
    const dropped = store.expire(sweepBudget);
    if (typeof dropped === 'number') {
      if (dropped === sweepBudget) slice = setImmediate(run);
      return;
    }
    // An asynchronous store: one sweep at a time; a failure waits for the next tick of the timer.
    pending = true;
    dropped.then(
      (n) => {
        pending = false;
        if (n === sweepBudget) slice = setImmediate(run);
      },
      () => {
        pending = false;
      },
    );
  };
  const timer = setInterval(() => {
    if (slice === undefined && !pending) run();
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (slice !== undefined) clearImmediate(slice);
  };
}
