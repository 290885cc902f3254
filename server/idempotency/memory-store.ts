import type { Clock } from '../clock/clock.js';
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
}

/**
 * Estimated heap bytes of one record beyond the characters of its strings: the
 * record object, three string headers and its share of the Map's hash table.
 * Measured by bench/idempotency-memory.ts (Node 20, x64, 8-byte fields).
 */
export const recordOverheadBytes = 150;

/** How many records are added between two sweeps for expired records. */
const sweepEvery = 1024;

/**
 * One record. Compact on purpose (it is kept for a day, by the hundred
 * thousand): five fields of flat strings and small integers, no request
 * objects, no closures. `status` 0 means in flight (-1: abandoned, and no
 * longer held); `at` is ms since the store's epoch (a small integer for 12
 * days of uptime, so V8 keeps it unboxed), the arrival time while in flight
 * and the completion time after.
 */
class MemoryRecord implements StoredResponse {
  status = 0;
  body = '';
  leaseRemainingMs: number | undefined = undefined;

  constructor(
    readonly fingerprint: string,
    public at: number,
  ) {}
}

/** `status` of a record abandoned while in flight: its claim can no longer complete it. */
const abandoned = -1;

/**
 * The ticket `begin` hands out: the in-flight record itself and its Map key,
 * so that completing or abandoning it needs no second lookup in a Map of a
 * hundred thousand records (a lookup there is a few cache misses: 2.7 µs a
 * keyed call went to Map lookups, sampled with perf at 32 connections), and a
 * late claim never touches a newer record of the same key.
 */
class Claim {
  constructor(
    readonly mapKey: string,
    readonly record: MemoryRecord,
  ) {}
}

/** A completed record as a durable store saves and restores it (see server/redo-log/). */
export interface CompletedIdempotencyRecord {
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly response: StoredResponse;
  /** Clock time of completion: retention counts from it. */
  readonly completedAt: number;
}

/** Accounted bytes of a record: its strings plus {@link recordOverheadBytes}. */
export function recordBytes(mapKey: string, fingerprint: string, body: string): number {
  return recordOverheadBytes + mapKey.length + fingerprint.length + body.length;
}

/**
 * Idempotency records in one Map, in arrival order (a record still in flight
 * when it reaches the old end moves to the new end).
 *
 * Policy at the bounds: when a new or completed record takes the store past
 * `maxEntries` records or `maxBytes` accounted bytes, the oldest completed
 * records (by arrival) are dropped first until it fits again; a retry with an
 * evicted key runs again. In-flight records are never dropped (so a store full
 * of in-flight calls may exceed the bounds by the number of concurrent keyed
 * calls); a single response larger than `maxBytes` is answered but not kept.
 * Bytes are counted in UTF-16 code units of the key, fingerprint and stored
 * body, plus a fixed per-record overhead.
 *
 * Retention: a completed record is kept `retentionMs` after completion. Expired
 * records are never replayed (checked on lookup) and their memory is reclaimed
 * by a sweep every {@link sweepEvery} new records, at the bounds, or by `expire()`.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, MemoryRecord>();
  /**
   * Where eviction and expiry continue from: a Map iterator that lives across
   * sweeps. A fresh iterator per sweep would walk, every time, the holes that
   * deleted entries leave at the old end of V8's table until it is rehashed
   * (34 µs a call at 100 000 records, measured); this one walks each once.
   */
  private cursor: Iterator<[string, MemoryRecord]> | undefined;
  /** The oldest entry, taken from the cursor but not yet dropped. */
  private oldestEntry: [string, MemoryRecord] | undefined;
  /** Resolvers of the duplicates waiting for an in-flight record (rare, so kept off the record). */
  private readonly waiters = new Map<MemoryRecord, (() => void)[]>();
  private readonly epoch: number;
  private bytes = 0;
  private added = 0;
  private expired = 0;
  private evicted = 0;

  constructor(private readonly options: MemoryIdempotencyStoreOptions) {
    this.epoch = options.clock.now();
  }

  begin(scope: string, key: string, fingerprint: string): BeginOutcome {
    const mapKey = scopedKey(scope, key);
    let record = this.records.get(mapKey);
    if (record !== undefined && record.status !== 0 && this.isExpired(record, this.now())) {
      this.drop(mapKey, record);
      this.expired++;
      record = undefined;
    }
    if (record === undefined) {
      record = new MemoryRecord(fingerprint, this.now());
      this.records.set(flat(mapKey), record);
      this.bytes += recordBytes(mapKey, fingerprint, '');
      if (++this.added >= sweepEvery || this.overBounds()) this.trim();
      return { state: 'run', ticket: new Claim(mapKey, record) };
    }
    if (record.fingerprint !== fingerprint) return { state: 'reused', fingerprint: record.fingerprint };
    if (record.status !== 0) return { state: 'replay', response: record };
    let waiters = this.waiters.get(record);
    if (waiters === undefined) {
      waiters = [];
      this.waiters.set(record, waiters);
    }
    const list = waiters;
    return { state: 'wait', settled: new Promise<void>((resolve) => list.push(resolve)) };
  }

  complete(ticket: IdempotencyTicket, response: StoredResponse): void {
    const { record } = ticket as Claim;
    if (record.status !== 0) return;
    record.status = response.status;
    record.body = flat(response.body);
    record.leaseRemainingMs = response.leaseRemainingMs;
    record.at = this.now();
    this.bytes += response.body.length;
    this.wake(record);
    if (this.overBounds()) this.trim();
  }

  abandon(ticket: IdempotencyTicket): void {
    const { mapKey, record } = ticket as Claim;
    if (record.status !== 0) return;
    record.status = abandoned;
    this.drop(mapKey, record);
    this.wake(record);
  }

  /** Scope, key and fingerprint of a ticket's record while it is in flight (a durable store logs them). */
  inFlight(ticket: IdempotencyTicket): { scope: string; key: string; fingerprint: string } | undefined {
    const { mapKey, record } = ticket as Claim;
    if (record.status !== 0) return undefined;
    const { scope, key } = splitScopedKey(mapKey);
    return { scope, key, fingerprint: record.fingerprint };
  }

  get(scope: string, key: string): IdempotencyRecordView | undefined {
    const record = this.records.get(scopedKey(scope, key));
    if (record === undefined || (record.status !== 0 && this.isExpired(record, this.now()))) return undefined;
    return { fingerprint: record.fingerprint, response: record.status === 0 ? undefined : record };
  }

  expire(): number {
    const before = this.expired;
    const now = this.now();
    for (const [mapKey, record] of this.records) {
      if (record.status !== 0 && this.isExpired(record, now)) {
        this.drop(mapKey, record);
        this.expired++;
      }
    }
    return this.expired - before;
  }

  /**
   * Completed, unexpired records, oldest first, for a durable store's
   * checkpoint. It may be read across turns of the event loop: the Map's
   * iterator tolerates records added and dropped meanwhile.
   */
  *completed(): IterableIterator<CompletedIdempotencyRecord> {
    for (const [mapKey, record] of this.records) {
      if (record.status === 0 || this.isExpired(record, this.now())) continue;
      yield {
        ...splitScopedKey(mapKey),
        fingerprint: record.fingerprint,
        response: record,
        completedAt: record.at + this.epoch,
      };
    }
  }

  /**
   * Puts a completed record back (a durable store's recovery), as if it had
   * completed at `completedAt`: an expired one is skipped, one already held
   * is replaced, and the bounds apply as for any new record. Restore oldest first.
   */
  restore(completed: CompletedIdempotencyRecord): void {
    const at = completed.completedAt - this.epoch;
    const mapKey = scopedKey(completed.scope, completed.key);
    const old = this.records.get(mapKey);
    if (old !== undefined) {
      if (old.status === 0) return;
      this.drop(mapKey, old);
    }
    const record = new MemoryRecord(completed.fingerprint, at);
    if (this.isExpired(record, this.now())) return;
    record.status = completed.response.status;
    record.body = flat(completed.response.body);
    record.leaseRemainingMs = completed.response.leaseRemainingMs;
    this.records.set(flat(mapKey), record);
    this.bytes += recordBytes(mapKey, record.fingerprint, record.body);
    if (this.overBounds()) this.trim();
  }

  stats(): IdempotencyStoreStats {
    return { entries: this.records.size, bytes: this.bytes, expired: this.expired, evicted: this.evicted };
  }

  private now(): number {
    return this.options.clock.now() - this.epoch;
  }

  private isExpired(record: MemoryRecord, now: number): boolean {
    return record.at + this.options.retentionMs <= now;
  }

  private overBounds(): boolean {
    return this.records.size > this.options.maxEntries || this.bytes > this.options.maxBytes;
  }

  /**
   * Walks from the oldest record: drops expired ones, and completed ones while
   * over a bound; stops at the first completed record that is neither. A record
   * still in flight is moved to the newest end instead (it is never dropped).
   * Records complete roughly in arrival order, so a later expired record may
   * wait for the next sweep (it is never replayed meanwhile).
   */
  private trim(): void {
    this.added = 0;
    const now = this.now();
    let moves = this.records.size;
    let dropped = false;
    for (let entry = this.oldest(); entry !== undefined; entry = this.oldest()) {
      const [mapKey, record] = entry;
      if (record.status === 0) {
        if (moves-- <= 0) return;
        this.oldestEntry = undefined;
        this.records.delete(mapKey);
        this.records.set(mapKey, record);
      } else if (this.isExpired(record, now)) {
        this.oldestEntry = undefined;
        this.drop(mapKey, record);
        this.expired++;
        dropped = true;
      } else if (this.overBounds()) {
        this.oldestEntry = undefined;
        this.drop(mapKey, record);
        this.evicted++;
        dropped = true;
      } else {
        // Nothing to drop: let go of the cursor while the store only grows. A live Map
        // iterator keeps the table it started on alive through every rehash (35 bytes a
        // record at 100 000, measured), and without deletions a fresh one walks no holes.
        if (!dropped) {
          this.cursor = undefined;
          this.oldestEntry = undefined;
        }
        return;
      }
    }
  }

  /** The oldest record still held, by the cursor; undefined when none. */
  private oldest(): [string, MemoryRecord] | undefined {
    for (;;) {
      if (this.oldestEntry === undefined) {
        this.cursor ??= this.records.entries();
        const next = this.cursor.next();
        if (next.done === true) {
          // A finished iterator stays finished: start a fresh one next time.
          this.cursor = undefined;
          return undefined;
        }
        this.oldestEntry = next.value;
      }
      // Dropped since (abandoned, or expired on lookup), maybe replaced by a newer record.
      if (this.records.get(this.oldestEntry[0]) === this.oldestEntry[1]) return this.oldestEntry;
      this.oldestEntry = undefined;
    }
  }

  private drop(mapKey: string, record: MemoryRecord): void {
    this.records.delete(mapKey);
    this.bytes -= recordBytes(mapKey, record.fingerprint, record.body);
  }

  private wake(record: MemoryRecord): void {
    if (this.waiters.size === 0) return;
    const waiters = this.waiters.get(record);
    if (waiters === undefined) return;
    this.waiters.delete(record);
    for (const resolve of waiters) resolve();
  }
}

/**
 * The Map key of (scope, key). Keys are printable ASCII, so a newline cannot
 * occur in one and the split is unambiguous.
 */
export function scopedKey(scope: string, key: string): string {
  return `${scope}\n${key}`;
}

/** The scope and key of a Map key (the key has no newline, so the last one ends the scope). */
function splitScopedKey(mapKey: string): { scope: string; key: string } {
  const split = mapKey.lastIndexOf('\n');
  return { scope: mapKey.slice(0, split), key: mapKey.slice(split + 1) };
}

/**
 * Makes V8 hold `text` as one flat string. A string built by concatenation (the
 * scoped key, a serialiser's output) is a tree of pieces that can take three
 * times the bytes of its text; reading a character flattens the tree in place,
 * and the GC then drops the pieces. Measured by bench/idempotency-memory.ts.
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
