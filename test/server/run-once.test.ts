/**
 * runOnce with a call given as one object (run, outcome, failure), as the
 * per-method transport gives it: what is stored, what is dropped, and when the
 * deadline race applies.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RpcError } from '../../common/rpc-error.js';
import { systemClock } from '../../server/clock/clock.js';
import { MemoryIdempotencyStore } from '../../server/idempotency/memory-store.js';
import {
  type KeyedAnswer,
  type KeyedCall,
  type RunOutcome,
  runOnce,
} from '../../server/idempotency/run-once.js';

const store = () =>
  new MemoryIdempotencyStore({
    clock: systemClock,
    retentionMs: 60_000,
    maxEntries: 100,
    maxBytes: 1_000_000,
  });

const lateAnswer: KeyedAnswer = {
  response: { status: 504, body: 'late', leaseRemainingMs: undefined },
  replayed: false,
};

/** A call whose `run` is given; results map to a 200 with their JSON, errors to their status. */
function call(
  key: string,
  run: () => unknown,
  extra: Partial<Pick<KeyedCall, 'outcome' | 'deadline' | 'settlesThisTurn'>> = {},
): KeyedCall {
  return {
    scope: 'p',
    key,
    fingerprint: 'fp',
    deadline: Date.now() + 10_000,
    run,
    outcome: (result: unknown): RunOutcome => ({
      response: { status: 200, body: JSON.stringify(result), leaseRemainingMs: undefined },
      final: true,
    }),
    failure: (error: unknown): RunOutcome => {
      const e = error as RpcError;
      return {
        response: { status: e.httpStatus, body: e.code, leaseRemainingMs: undefined },
        final: e.code !== 'unavailable',
        error: e,
      };
    },
    late: () => lateAnswer,
    legacyFingerprint: () => {
      throw new Error('no record here holds a legacy fingerprint');
    },
    ...extra,
  };
}

describe('runOnce', () => {
  it('stores what outcome makes of a result, and replays it without running again', async () => {
    const s = store();
    let runs = 0;
    const first = await runOnce(
      s,
      call('k', async () => ({ n: ++runs })),
    );
    expect(first).toMatchObject({ replayed: false, response: { status: 200, body: '{"n":1}' } });
    const again = await runOnce(
      s,
      call('k', async () => ({ n: ++runs })),
    );
    expect(again).toMatchObject({ replayed: true, response: { body: '{"n":1}' } });
    expect(runs).toBe(1);
  });

  it('stores a final error as failure maps it, and drops a retryable one', async () => {
    const s = store();
    const notFound = new RpcError({ code: 'not_found', message: 'gone' });
    const busy = new RpcError({ code: 'unavailable', message: 'busy' });
    const thrown = await runOnce(
      s,
      call('final', () => {
        throw notFound;
      }),
    );
    expect(thrown).toMatchObject({ replayed: false, error: notFound, response: { body: 'not_found' } });
    expect(
      (
        await runOnce(
          s,
          call('final', () => 1),
        )
      ).replayed,
    ).toBe(true);
    await runOnce(
      s,
      call('retryable', () => Promise.reject(busy)),
    );
    expect(s.get('p', 'retryable')).toBeUndefined();
  });

  it('drops the record and passes the error on when outcome throws', async () => {
    const s = store();
    const broken = call('k', async () => 1, {
      outcome: () => {
        throw new Error('cannot serialise');
      },
    });
    await expect(runOnce(s, broken)).rejects.toThrow('cannot serialise');
    expect(s.get('p', 'k')).toBeUndefined();
    expect(
      (
        await runOnce(
          s,
          call('k', async () => 2),
        )
      ).response.body,
    ).toBe('2');
  });

  it('answers late() when the deadline passes first, and still stores the real result', async () => {
    const s = store();
    const slow = call('k', () => sleep(80).then(() => 'done'), { deadline: Date.now() + 20 });
    expect(await runOnce(s, slow)).toBe(lateAnswer);
    await sleep(100);
    expect(s.get('p', 'k')?.response?.body).toBe('"done"');
  });

  it('does not race a call that says it settles within the turn (settlesThisTurn)', async () => {
    const s = store();
    // It settles after its deadline (it says otherwise): with no race, the real answer still comes.
    const prompt = call('k', () => sleep(40).then(() => 'now'), {
      deadline: Date.now() + 5,
      settlesThisTurn: true,
    });
    expect(await runOnce(s, prompt)).toMatchObject({ replayed: false, response: { body: '"now"' } });
  });
});
