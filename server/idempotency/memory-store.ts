import { randomInt } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import { InFlightTable } from './in-flight-table.js';
import { type EntryRef, RecordArena } from './record-arena.js';
import type {
  BeginOutcome,
  IdempotencyRecordView,
  IdempotencyStore,
  IdempotencyStoreStats,
  IdempotencyTicket,
  StoredResponse,
} from './store.js';

/** Options of the in-memory store. */
export interface MemoryIdempotencyStoreOptions {
  clock: Clock;
  /** How long a completed record is kept, in ms (default 24 h). */
  retentionMs: number;
  /** Most records held (in flight and completed). */
  maxEntries: number;
  /** Most accounted bytes held (see {@link recordBytes}). */
  maxBytes: number;
  /** The records' hash of (scope, key); {@link seededKeyHash} with a random seed unless a test forces collisions. */
  keyHash?: (scope: string, key: string) => number;
}

/**
 * Estimated bytes of one completed record beyond the characters of its
 * strings: its entry's header in the arena, its share of the arena's index
 * (three 4-byte slots, the table at most half full) and of a chunk's unused
 * end. Measured by bench/idempotency-memory.ts (Node 20, x64; JS heap and
 * ArrayBuffers): 190 bytes a record with the scope "anonymous", of which 109
 * are the characters the accounting counts (181 and 111 at 10^6 records).
 */
export const recordOverheadBytes = 81;

/** How many records are added between two sweeps for expired records. */
const sweepEvery = 1024;

/**
 * Most expired records one sweep drops. A first call after a quiet spell
 * longer than the retention dropped every record at once: 570 ms for 10^6 in
 * one begin(). 1024 drops take ~0.3 ms (median of ~1000 sweeps through 10^6
 * expired records; the slowest were the GC's); the rest go with the next
 * sweeps: one every {@link sweepEvery} new records, and the server's timer
 * (sweeper.ts), which calls expire(limit) in slices until none is left. Eviction at the
 * bounds has no budget: it drops as many as the record just added needs.
 */
export const sweepBudget = 1024;

/**
 * A record in flight: created by `begin`, and the ticket it hands out, so
 * that completing or abandoning it needs no second lookup, and a late claim
 * never touches a newer record of the same key. On completion it moves into
 * the arena (record-arena.ts) as bytes, and this object dies young. `scope`
 * is the principal's string, shared by its records.
 */
class InFlightRecord {
  /** 0 while in flight, then {@link abandoned} or {@link completedState}. */
  state = 0;

  constructor(
    readonly scope: string,
    readonly key: string,
    readonly hash: number,
    readonly fingerprint: string,
  ) {}

  is(scope: string, key: string): boolean {
    return this.key === key && this.scope === scope;
  }
}

/** `state` of a record abandoned while in flight, and of one completed: its claim is spent. */
const abandoned = -1;
const completedState = 1;

/**
 * The records' hash of (scope, key): a 30-bit FNV-1a hash, a small integer,
 * from an offset basis mixed with `seed`. With the scoped key itself as a Map
 * key, each lookup in a Map of ~10^5 records compared the key with the
 * strings of the entries in its hash chain, one cache miss each (and the
 * scoped key had to be built and hashed): 2.1 µs of a keyed RemotePrint went
 * to Map lookups (perf at 32 connections, two runs). An integer compares in
 * the table itself. Keys that share a hash share a probe run of the tables
 * (each compares the keys); a store seeds its hash at random, so that a
 * client cannot craft keys that crowd one run offline.
 */
export function seededKeyHash(seed: number): (scope: string, key: string) => number {
  const basis = (0x811c9dc5 ^ seed) | 0;
  return (scope, key) => {
    let h = basis;
    for (let i = 0; i < scope.length; i++) h = Math.imul(h ^ scope.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 10, 0x01000193); // '\n' between the two, as in scopedKey
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return (h ^ (h >>> 15)) & 0x3fffffff;
  };
}

/** {@link seededKeyHash} with seed 0, for tests that need to know a key's hash. */
export const keyHash = seededKeyHash(0);

/** A completed record as a durable store saves and restores it (see server/redo-log/). */
export interface CompletedIdempotencyRecord {
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly response: StoredResponse;
  /** Clock time of completion: retention counts from it. */
  readonly completedAt: number;
}

/**
 * Accounted bytes of a record whose scope, key, fingerprint and body hold
 * `characters` UTF-16 code units in all: those, one for the separator of scope
 * and key (as in {@link scopedKey}), and {@link recordOverheadBytes}.
 */
function accounted(characters: number): number {
  return recordOverheadBytes + 1 + characters;
}

/** {@link accounted} bytes of a record of these strings. */
export function recordBytes(scope: string, key: string, fingerprint: string, body: string): number {
  return accounted(scope.length + key.length + fingerprint.length + body.length);
}

/**
 * Records in flight in an {@link InFlightTable} by their hash, and completed
 * records in a {@link RecordArena}, off the JavaScript heap, in completion
 * order, found through its index by the same hash (see {@link seededKeyHash}).
 *
 * Policy at the bounds: when a new or completed record takes the store past
 * `maxEntries` records or `maxBytes` accounted bytes, the oldest completed
 * records (by completion) are dropped first until it fits again; a
 * retry with an evicted key runs again. In-flight records are never dropped
 * (so a store full of in-flight calls may exceed the bounds by the number of
 * concurrent keyed calls); a single response larger than `maxBytes` is
 * answered but not kept. Bytes are counted as {@link recordBytes}: UTF-16
 * code units of the principal, key, fingerprint and stored body, plus a fixed
 * per-record overhead.
 *
 * Retention: a completed record is kept `retentionMs` after completion. Expired
 * records are never replayed (checked on lookup) and their memory is reclaimed
 * by a sweep every {@link sweepEvery} new records, at the bounds, or by `expire()`.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly running = new InFlightTable<InFlightRecord>();
  private readonly arena = new RecordArena();
  /** Resolvers of the duplicates waiting for an in-flight record (rare, so kept off the record). */
  private readonly waiters = new Map<InFlightRecord, (() => void)[]>();
  private readonly epoch: number;
  private readonly hashOf: (scope: string, key: string) => number;
  private bytes = 0;
  private added = 0;
  private expired = 0;
  private evicted = 0;

  constructor(private readonly options: MemoryIdempotencyStoreOptions) {
    this.epoch = options.clock.now();
    const given = options.keyHash;
    // 30 bits, as the tables expect (a test's hash may give any integer).
    this.hashOf =
      given === undefined
        ? seededKeyHash(randomInt(0x7fffffff))
        : (scope, key) => given(scope, key) & 0x3fffffff;
  }

  begin(scope: string, key: string, fingerprint: string): BeginOutcome {
    const hash = this.hashOf(scope, key);
    const running = this.running.get(hash, scope, key);
    if (running !== undefined) {
      if (running.fingerprint !== fingerprint) return { state: 'reused', fingerprint: running.fingerprint };
      return { state: 'wait', settled: this.waitFor(running) };
    }
    const done = this.arena.find(hash, scope, key);
    if (done !== undefined) {
      if (!this.isExpired(this.arena.timeOf(done), this.now())) {
        if (!this.arena.hasFingerprint(done, fingerprint))
          return { state: 'reused', fingerprint: this.arena.read(done).fingerprint };
        return { state: 'replay', response: this.arena.read(done) };
      }
      this.dropCompleted(done);
      this.expired++;
    }
    const record = new InFlightRecord(scope, key, hash, fingerprint);
    this.running.add(record);
    this.bytes += recordBytes(scope, key, fingerprint, '');
    if (++this.added >= sweepEvery || this.overBounds()) this.trim(sweepBudget);
    return { state: 'run', ticket: record };
  }

  complete(ticket: IdempotencyTicket, response: StoredResponse): void {
    const record = ticket as InFlightRecord;
    if (record.state !== 0) return;
    if (!this.keeps(ticket, response)) {
      // Kept, it would evict every other record and then itself: answered, not kept.
      this.abandon(ticket);
      return;
    }
    record.state = completedState;
    this.running.delete(record);
    this.bytes += response.body.length;
    this.arena.add({
      scope: record.scope,
      key: record.key,
      hash: record.hash,
      fingerprint: record.fingerprint,
      body: response.body,
      status: response.status,
      leaseRemainingMs: response.leaseRemainingMs,
      at: this.now(),
    });
    this.wake(record);
    if (this.overBounds()) this.trim(sweepBudget);
  }

  abandon(ticket: IdempotencyTicket): void {
    const record = ticket as InFlightRecord;
    if (record.state !== 0) return;
    record.state = abandoned;
    this.running.delete(record);
    this.bytes -= recordBytes(record.scope, record.key, record.fingerprint, '');
    this.wake(record);
  }

  /** Whether `complete` would keep this response: false when the record alone is larger than the byte bound. */
  keeps(ticket: IdempotencyTicket, response: StoredResponse): boolean {
    const { scope, key, fingerprint } = ticket as InFlightRecord;
    return recordBytes(scope, key, fingerprint, response.body) <= this.options.maxBytes;
  }

  /** Scope, key and fingerprint of a ticket's record while it is in flight (a durable store logs them). */
  inFlight(ticket: IdempotencyTicket): { scope: string; key: string; fingerprint: string } | undefined {
    const record = ticket as InFlightRecord;
    if (record.state !== 0) return undefined;
    return { scope: record.scope, key: record.key, fingerprint: record.fingerprint };
  }

  get(scope: string, key: string): IdempotencyRecordView | undefined {
    const hash = this.hashOf(scope, key);
    const running = this.running.get(hash, scope, key);
    if (running !== undefined) return { fingerprint: running.fingerprint, response: undefined };
    const done = this.arena.find(hash, scope, key);
    if (done === undefined || this.isExpired(this.arena.timeOf(done), this.now())) return undefined;
    const entry = this.arena.read(done);
    return { fingerprint: entry.fingerprint, response: entry };
  }

  /**
   * With `limit`, drops expired records from the oldest, at most `limit` (one
   * look when the oldest is live): the server's timer (sweeper.ts). Without,
   * drops every expired record, wherever it is (the clock may have gone back
   * meanwhile), walking them all.
   */
  expire(limit?: number): number {
    if (limit !== undefined) {
      const before = this.expired;
      this.trim(limit);
      return this.expired - before;
    }
    const now = this.now();
    let gone = 0;
    for (let ref = this.arena.next(undefined); ref !== undefined; ref = this.arena.next(ref)) {
      if (this.arena.isDead(ref) || !this.isExpired(this.arena.timeOf(ref), now)) continue;
      this.dropCompleted(ref);
      gone++;
    }
    this.arena.oldest(); // lets go of chunks left with dead entries only
    this.expired += gone;
    return gone;
  }

  /**
   * Completed, unexpired records, oldest first, for a durable store's
   * checkpoint. It may be read across turns of the event loop: records added
   * meanwhile come at the end, dropped ones are skipped.
   */
  *completed(): IterableIterator<CompletedIdempotencyRecord> {
    for (let ref = this.arena.next(undefined); ref !== undefined; ref = this.arena.next(ref)) {
      if (this.arena.isDead(ref)) continue;
      const entry = this.arena.read(ref);
      if (this.isExpired(entry.at, this.now())) continue;
      const { scope, key, fingerprint } = entry;
      yield { scope, key, fingerprint, response: entry, completedAt: entry.at + this.epoch };
    }
  }

  /**
   * Puts a completed record back (a durable store's recovery), as if it had
   * completed at `completedAt`: an expired one is skipped, one already held
   * is replaced, and the bounds apply as for any new record. Restore oldest first.
   */
  restore(completed: CompletedIdempotencyRecord): void {
    const at = completed.completedAt - this.epoch;
    const { scope, key, fingerprint, response } = completed;
    const hash = this.hashOf(scope, key);
    if (this.running.get(hash, scope, key) !== undefined) return;
    const old = this.arena.find(hash, scope, key);
    if (old !== undefined) this.dropCompleted(old);
    if (this.isExpired(at, this.now())) return;
    this.arena.add({ scope, key, hash, fingerprint, ...response, at });
    this.bytes += recordBytes(scope, key, fingerprint, response.body);
    if (this.overBounds()) this.trim(sweepBudget);
  }

  stats(): IdempotencyStoreStats {
    return { entries: this.size(), bytes: this.bytes, expired: this.expired, evicted: this.evicted };
  }

  private now(): number {
    return this.options.clock.now() - this.epoch;
  }

  private size(): number {
    return this.running.size + this.arena.size;
  }

  /** Whether a record completed at `at` (store time) has outlived its retention at `now`. */
  private isExpired(at: number, now: number): boolean {
    return at + this.options.retentionMs <= now;
  }

  private overBounds(): boolean {
    return this.size() > this.options.maxEntries || this.bytes > this.options.maxBytes;
  }

  private waitFor(record: InFlightRecord): Promise<void> {
    let waiters = this.waiters.get(record);
    if (waiters === undefined) {
      waiters = [];
      this.waiters.set(record, waiters);
    }
    const list = waiters;
    return new Promise<void>((resolve) => list.push(resolve));
  }

  /** Lets go of a completed record. */
  private dropCompleted(ref: EntryRef): void {
    this.bytes -= accounted(this.arena.characters(ref));
    this.arena.kill(ref);
  }

  /**
   * Drops completed records from the oldest: any while over a bound, and then
   * up to `limit` expired ones; stops at the first that is neither. Records
   * complete in time order, so an expired record behind a live one (the clock
   * went back) waits for `expire()` or a later sweep (it is never replayed
   * meanwhile).
   */
  private trim(limit: number): void {
    this.added = 0;
    const now = this.now();
    let spare = limit;
    for (let ref = this.arena.oldest(); ref !== undefined; ref = this.arena.oldest()) {
      const expired = this.isExpired(this.arena.timeOf(ref), now);
      if (this.overBounds()) {
        if (expired) this.expired++;
        else this.evicted++;
      } else if (expired && spare > 0) {
        spare--;
        this.expired++;
      } else return;
      this.dropCompleted(ref);
    }
  }

  private wake(record: InFlightRecord): void {
    if (this.waiters.size === 0) return;
    const waiters = this.waiters.get(record);
    if (waiters === undefined) return;
    this.waiters.delete(record);
    for (const resolve of waiters) resolve();
  }
}

/**
 * (scope, key) as one string, a Map key (the redo log's prints in doubt are
 * found by it). Keys are printable ASCII, so a newline cannot occur in one and
 * the pair is unambiguous.
 */
export function scopedKey(scope: string, key: string): string {
  return `${scope}\n${key}`;
}
