/** The in-memory idempotency store on a manual clock: states, retention and the bounds policy. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import { MemoryIdempotencyStore, recordBytes } from '../../server/idempotency/memory-store.js';
import type { BeginOutcome, IdempotencyTicket, StoredResponse } from '../../server/idempotency/store.js';

const day = 86_400_000;
const ok = (body = '{}'): StoredResponse => ({ status: 200, body, leaseRemainingMs: undefined });

interface Limits {
  maxEntries?: number;
  maxBytes?: number;
  retentionMs?: number;
}

function makeStore(limits: Limits, keyHash: ((scope: string, key: string) => number) | undefined) {
  const clock = new ManualClock();
  const store = new MemoryIdempotencyStore({
    clock,
    retentionMs: limits.retentionMs ?? day,
    maxEntries: limits.maxEntries ?? 1_000,
    maxBytes: limits.maxBytes ?? 1_000_000,
    keyHash,
  });
  return { clock, store };
}

function ticket(outcome: BeginOutcome): IdempotencyTicket {
  if (outcome.state !== 'run') throw new Error(`expected run, got ${outcome.state}`);
  return outcome.ticket;
}

/** Begins and completes (scope, key) with a body. */
function stored(store: MemoryIdempotencyStore, key: string, body = '{}', scope = 'p'): void {
  store.complete(ticket(store.begin(scope, key, 'fp')), ok(body));
}

// Every rule again with all keys on one hash: the first record held takes the hash, every
// other goes to the store's second Map (by scoped key), as records with colliding hashes do.
describe.each([
  ['keys by hash', undefined],
  ['every key on one hash', () => 7],
])('MemoryIdempotencyStore, %s', (_, keyHash) => {
  const make = (limits: Limits = {}) => makeStore(limits, keyHash);

  it('lets the first caller run, then replays for the same fingerprint', () => {
    const { store } = make();
    const t = ticket(store.begin('p', 'k', 'fp'));
    store.complete(t, { status: 201, body: '{"a":1}', leaseRemainingMs: 30_000 });
    const again = store.begin('p', 'k', 'fp');
    expect(again.state).toBe('replay');
    expect(again.state === 'replay' && again.response).toMatchObject({
      status: 201,
      body: '{"a":1}',
      leaseRemainingMs: 30_000,
    });
  });

  it('refuses another fingerprint under the same key, in flight or completed', () => {
    const { store } = make();
    const t = ticket(store.begin('p', 'k', 'fp'));
    expect(store.begin('p', 'k', 'other').state).toBe('reused');
    store.complete(t, ok());
    expect(store.begin('p', 'k', 'other').state).toBe('reused');
  });

  it('scopes keys: the same key under another scope is another record', () => {
    const { store } = make();
    stored(store, 'k', '{}', 'alice');
    expect(store.begin('bob', 'k', 'other').state).toBe('run');
  });

  it('makes a duplicate wait for the in-flight record, and wakes it on completion', async () => {
    const { store } = make();
    const t = ticket(store.begin('p', 'k', 'fp'));
    const waiting = store.begin('p', 'k', 'fp');
    if (waiting.state !== 'wait') throw new Error(`expected wait, got ${waiting.state}`);
    let woken = false;
    const settled = waiting.settled.then(() => {
      woken = true;
    });
    await Promise.resolve();
    expect(woken).toBe(false);
    store.complete(t, ok());
    await settled;
    expect(store.begin('p', 'k', 'fp').state).toBe('replay');
  });

  it('drops an abandoned record and wakes its waiters, so the next caller runs', async () => {
    const { store } = make();
    const t = ticket(store.begin('p', 'k', 'fp'));
    const waiting = store.begin('p', 'k', 'fp');
    store.abandon(t);
    if (waiting.state === 'wait') await waiting.settled;
    expect(store.get('p', 'k')).toBeUndefined();
    expect(store.begin('p', 'k', 'fp').state).toBe('run');
    expect(store.stats().bytes).toBe(recordBytes('p\nk', 'fp', ''));
  });

  it('ignores a claim once it is spent: an abandoned claim cannot complete the next record of its key', () => {
    const { store } = make();
    const first = ticket(store.begin('p', 'k', 'fp'));
    store.abandon(first);
    const second = ticket(store.begin('p', 'k', 'fp'));
    store.complete(first, ok('{"from":"first"}'));
    store.abandon(first);
    expect(store.get('p', 'k')).toEqual({ fingerprint: 'fp', response: undefined });
    store.complete(second, ok('{"from":"second"}'));
    store.complete(second, ok('{"again":true}'));
    const replay = store.begin('p', 'k', 'fp');
    expect(replay.state === 'replay' && replay.response.body).toBe('{"from":"second"}');
    expect(store.stats()).toMatchObject({
      entries: 1,
      bytes: recordBytes('p\nk', 'fp', '{"from":"second"}'),
    });
  });

  it('expires a completed record after retention, counted from completion', () => {
    const { clock, store } = make({ retentionMs: 1_000 });
    const t = ticket(store.begin('p', 'k', 'fp'));
    clock.advance(5_000); // in flight: never expires
    store.complete(t, ok());
    clock.advance(999);
    expect(store.begin('p', 'k', 'fp').state).toBe('replay');
    clock.advance(1);
    expect(store.get('p', 'k')).toBeUndefined();
    expect(store.begin('p', 'k', 'fp').state).toBe('run');
  });

  it('reclaims expired records with expire()', () => {
    const { clock, store } = make({ retentionMs: 1_000 });
    stored(store, 'a');
    stored(store, 'b');
    clock.advance(500);
    stored(store, 'c');
    clock.advance(500);
    expect(store.expire()).toBe(2);
    expect(store.stats()).toMatchObject({ entries: 1, expired: 2, evicted: 0 });
  });

  it('evicts the oldest completed records at the entry bound, never in-flight ones', () => {
    const { store } = make({ maxEntries: 2 });
    const inFlight = ticket(store.begin('p', 'old-in-flight', 'fp'));
    stored(store, 'a');
    stored(store, 'b'); // 3 entries: 'a' (oldest completed) goes
    expect(store.get('p', 'a')).toBeUndefined();
    expect(store.get('p', 'old-in-flight')).toEqual({ fingerprint: 'fp', response: undefined });
    expect(store.get('p', 'b')?.response?.body).toBe('{}');
    store.complete(inFlight, ok('{"late":true}'));
    expect(store.stats()).toMatchObject({ entries: 2, evicted: 1 });
  });

  it('evicts the oldest completed records at the byte bound', () => {
    const one = recordBytes('p\na', 'fp', '{"x":1}');
    const { store } = make({ maxBytes: 2 * one });
    stored(store, 'a', '{"x":1}');
    stored(store, 'b', '{"x":1}');
    expect(store.stats().bytes).toBe(2 * one);
    stored(store, 'c', '{"x":1}');
    expect(store.get('p', 'a')).toBeUndefined();
    expect(store.get('p', 'b')).toBeDefined();
    expect(store.stats()).toMatchObject({ entries: 2, bytes: 2 * one, evicted: 1 });
  });

  it('gives its completed records back oldest first, and a new store takes them back', () => {
    const { clock, store } = make();
    stored(store, 'a', '{"n":1}');
    clock.advance(10);
    stored(store, 'b', '{"n":2}', 'q');
    store.begin('p', 'in-flight', 'fp');
    const records = [...store.completed()];
    expect(records.map((r) => [r.scope, r.key, r.response.body, r.completedAt - clock.now()])).toEqual([
      ['p', 'a', '{"n":1}', -10],
      ['q', 'b', '{"n":2}', 0],
    ]);

    const { store: next } = make();
    next.begin('q', 'b', 'fp'); // in flight here: a restored record does not replace it
    for (const r of records) next.restore(r);
    const replay = next.begin('p', 'a', 'fp');
    expect(replay.state === 'replay' && replay.response.body).toBe('{"n":1}');
    expect(next.begin('q', 'b', 'fp').state).toBe('wait');
    expect(next.stats().entries).toBe(2);
  });

  it('answers but does not keep a response larger than the whole byte bound', () => {
    const { store } = make({ maxBytes: 200 });
    stored(store, 'big', 'x'.repeat(500));
    expect(store.get('p', 'big')).toBeUndefined();
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});
