/** The in-memory idempotency store on a manual clock: states, retention and the bounds policy. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import {
  keyHash,
  MemoryIdempotencyStore,
  recordBytes,
  sweepBudget,
} from '../../server/idempotency/memory-store.js';
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

// Every rule again with all keys on one hash: every record then sits in one probe run of the
// arena's index and of the in-flight table, as records with colliding hashes do.
describe.each([
  ['keys by hash', undefined],
  ['every key on one hash', () => 7],
  ['every key on hash -1 (a test hash is cut to 30 bits)', () => -1],
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
    expect(store.stats().bytes).toBe(recordBytes('p', 'k', 'fp', ''));
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
      bytes: recordBytes('p', 'k', 'fp', '{"from":"second"}'),
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

  it('expire() drops an expired record behind a live one (restored out of order)', () => {
    const { clock, store } = make({ retentionMs: 1_000 });
    stored(store, 'live');
    store.restore({
      scope: 'p',
      key: 'old',
      fingerprint: 'fp',
      response: ok(),
      completedAt: clock.now() - 900,
    });
    clock.advance(200);
    expect(store.expire()).toBe(1);
    expect(store.get('p', 'old')).toBeUndefined();
    expect(store.get('p', 'live')).toBeDefined();
    expect(store.stats()).toMatchObject({ entries: 1, expired: 1 });
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
    const one = recordBytes('p', 'a', 'fp', '{"x":1}');
    const { store } = make({ maxBytes: 2 * one });
    stored(store, 'a', '{"x":1}');
    stored(store, 'b', '{"x":1}');
    expect(store.stats().bytes).toBe(2 * one);
    stored(store, 'c', '{"x":1}');
    expect(store.get('p', 'a')).toBeUndefined();
    expect(store.get('p', 'b')).toBeDefined();
    expect(store.stats()).toMatchObject({ entries: 2, bytes: 2 * one, evicted: 1 });
  });

  it('tells keys, fingerprints and bodies apart where their characters run together', () => {
    const { store } = make();
    const ab = ticket(store.begin('p', 'ab', 'cd'));
    const abc = ticket(store.begin('p', 'abc', 'd')); // the same characters, another key
    expect(store.begin('p', 'ab', 'cdx').state).toBe('reused');
    expect(store.begin('p', 'ab', 'c').state).toBe('reused');
    expect(store.begin('p', 'a', 'bcd').state).toBe('run');
    store.complete(ab, ok('{"for":"ab"}'));
    store.complete(abc, ok(''));
    expect(store.get('p', 'ab')).toEqual({
      fingerprint: 'cd',
      response: expect.objectContaining({ body: '{"for":"ab"}' }),
    });
    expect(store.get('p', 'abc')).toEqual({
      fingerprint: 'd',
      response: expect.objectContaining({ body: '' }),
    });
    const reused = store.begin('p', 'abc', 'e');
    expect(reused.state === 'reused' && reused.fingerprint).toBe('d');
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

  it('answers but does not keep a response larger than the whole byte bound, and evicts nothing for it', () => {
    const { store } = make({ maxBytes: 200 });
    stored(store, 'small', '{}');
    const kept = store.stats();
    stored(store, 'big', 'x'.repeat(500));
    expect(store.get('p', 'big')).toBeUndefined();
    expect(store.get('p', 'small')?.response?.body).toBe('{}');
    expect(store.stats()).toEqual(kept);
    expect(store.begin('p', 'big', 'fp').state).toBe('run'); // its retry runs again
  });
});

describe('MemoryIdempotencyStore with some keys made to collide', () => {
  // Mallory's keys all share one hash (as keys crafted against an unseeded FNV-1a could).
  // Alice's keys hash normally.
  const collide = (scope: string, key: string) => (scope === 'mallory' ? 7 : keyHash(scope, key));

  it("evicts the oldest records, not the other clients' ones first", () => {
    const { store } = makeStore({ maxEntries: 4 }, collide);
    for (const key of ['m1', 'm2', 'm3']) stored(store, key, '{}', 'mallory');
    stored(store, 'a1', '{}', 'alice');
    stored(store, 'm4', '{}', 'mallory'); // 5 records: the oldest, m1, goes
    stored(store, 'm5', '{}', 'mallory'); // then m2, older than a1
    expect(store.get('alice', 'a1')).toBeDefined();
    expect(store.get('mallory', 'm1')).toBeUndefined();
    expect(store.get('mallory', 'm2')).toBeUndefined();
    expect(['m3', 'm4', 'm5'].map((k) => store.get('mallory', k) !== undefined)).toEqual([true, true, true]);
    expect(store.stats()).toMatchObject({ entries: 4, evicted: 2 });
    // And the flood cannot push alice's later records out ahead of its own.
    for (let i = 6; i < 100; i++) stored(store, `m${i}`, '{}', 'mallory');
    expect(store.get('alice', 'a1')).toBeUndefined(); // its turn came, by age
    stored(store, 'a2', '{}', 'alice');
    for (let i = 100; i < 103; i++) stored(store, `m${i}`, '{}', 'mallory');
    expect(store.get('alice', 'a2')).toBeDefined();
  });

  it('orders records by completion: one in flight outlives those completed before it', () => {
    const { store } = makeStore({ maxEntries: 3 }, collide);
    const inFlight = ticket(store.begin('mallory', 'm1', 'fp'));
    stored(store, 'm2', '{}', 'mallory'); // the same hash as m1
    stored(store, 'a1', '{}', 'alice');
    stored(store, 'a2', '{}', 'alice'); // over: m1 is in flight (never dropped); m2 is the oldest completed
    expect(store.get('mallory', 'm2')).toBeUndefined();
    store.complete(inFlight, ok());
    stored(store, 'a3', '{}', 'alice'); // over again: a1 (completed before m1) goes, then nothing
    expect(store.get('alice', 'a1')).toBeUndefined();
    expect(store.get('mallory', 'm1')).toBeDefined();
    expect(store.stats()).toMatchObject({ entries: 3, evicted: 2 });
  });
});

describe('dropping expired records in slices', () => {
  /** A store holding `n` records, all expired by the clock's advance. */
  function expiredStore(n: number) {
    const { clock, store } = makeStore({ retentionMs: 1_000, maxEntries: 100_000, maxBytes: 1e9 }, undefined);
    for (let i = 0; i < n; i++) stored(store, `old-${i}`);
    clock.advance(1_000);
    return { clock, store };
  }

  it('drops at most sweepBudget of them in the call that finds them, however many there are', () => {
    const n = sweepBudget * 3 + 10;
    const { store } = expiredStore(n);
    // Enough new records to reach a sweep (one every 1024 new records).
    for (let i = 0; i < 1_024; i++) stored(store, `new-${i}`);
    expect(store.stats().expired).toBe(sweepBudget);
    expect(store.stats().entries).toBe(n - sweepBudget + 1_024);
    // None is replayed meanwhile: an expired record is checked on lookup.
    expect(store.get('p', 'old-0')).toBeUndefined();
    expect(store.get('p', `old-${n - 1}`)).toBeUndefined();
  });

  it('expire(limit) drops up to limit from the oldest, and stops at a live record', () => {
    const n = 10;
    const { clock, store } = expiredStore(n);
    stored(store, 'live');
    expect(store.expire(4)).toBe(4);
    expect(store.expire(4)).toBe(4);
    expect(store.expire(4)).toBe(2);
    expect(store.expire(4)).toBe(0);
    expect(store.stats()).toMatchObject({ entries: 1, expired: n, evicted: 0 });
    expect(store.get('p', 'live')).toBeDefined();
    clock.advance(1_000);
    expect(store.expire(4)).toBe(1);
    expect(store.stats().entries).toBe(0);
  });
});
