/** The server's expiry timer against stores of either kind: slices while a store drops its limit, one sweep at a time. */
import { describe, expect, it } from 'vitest';
import { sweepBudget } from '../../server/idempotency/memory-store.js';
import type { IdempotencyStore } from '../../server/idempotency/store.js';
import { sweepPeriodically } from '../../server/idempotency/sweeper.js';

/** A store whose expire(limit) answers from `answers` in turn (then 0), recording its calls. */
function storeAnswering(answers: (() => number | Promise<number>)[]) {
  const limits: (number | undefined)[] = [];
  const store = {
    expire(limit?: number) {
      limits.push(limit);
      return (answers.shift() ?? (() => 0))();
    },
  } as unknown as IdempotencyStore;
  return { store, limits };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sweepPeriodically', () => {
  it('sweeps again in the next turn while the store drops its whole limit, then waits for the timer', async () => {
    const { store, limits } = storeAnswering([() => sweepBudget, () => sweepBudget, () => 3]);
    const stop = sweepPeriodically(store, 50);
    await wait(80);
    stop();
    expect(limits).toEqual([sweepBudget, sweepBudget, sweepBudget]);
  });

  it('runs one asynchronous sweep at a time, and a failed one does not end the timer', async () => {
    let settle: (n: number) => void = () => {};
    const { store, limits } = storeAnswering([
      () => Promise.reject(new Error('store down')),
      () => new Promise<number>((resolve) => (settle = resolve)),
    ]);
    const stop = sweepPeriodically(store, 20);
    await wait(110);
    // The rejected sweep, then the one still pending: no third while it runs.
    expect(limits).toHaveLength(2);
    settle(0);
    await wait(30);
    stop();
    expect(limits.length).toBeGreaterThan(2);
  });
});
