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
  /** The records' Map key for (scope, key); {@link keyHash} unless a test forces collisions. */
  keyHash?: (scope: string, key: string) => number;
}

/**
 * Estimated heap bytes of one record beyond the characters of its strings: the
 * record object (nine fields), its string's header and its share of the Map's
 * hash table. Measured by bench/idempotency-memory.ts (Node 20, x64, 8-byte
 * fields): 258 heap bytes a record with the scope "anonymous", of which 109
 * are the characters the accounting counts (the scope's among them, although
 * the records of a principal share its string, so a long principal name is
 * over-counted).
 */
export const recordOverheadBytes = 149;

/** How many records are added between two sweeps for expired records. */
const sweepEvery = 1024;

/**
 * One record. Compact on purpose (it is kept for a day, by the hundred
 * thousand): one flat string and small integers, no request objects, no
 * closures. `status` 0 means in flight (-1: abandoned, and no longer held);
 * `at` is ms since the store's epoch (a small integer for 12 days of uptime,
 * so V8 keeps it unboxed), the arrival time while in flight and the
 * completion time after. `scope` is the principal's string, shared by its
 * records.
 *
 * The key, the fingerprint and (once completed) the body are one string,
 * read back by slicing (replays and checkpoints; lookups compare in place):
 * two objects a record instead of four. A scavenge's cost goes by the objects
 * it copies, and every record is copied twice before it settles in the old
 * generation: with four, a scavenge at one connection took 1.1 ms with keys
 * against 0.6 ms without.
 *
 * It is also the ticket `begin` hands out, so that completing or abandoning
 * it needs no second lookup, and a late claim never touches a newer record
 * of the same key.
 */
class MemoryRecord implements StoredResponse {
  status = 0;
  leaseRemainingMs: number | undefined = undefined;
  private text: string;
  private readonly keyEnd: number;
  private readonly fingerprintEnd: number;

  constructor(
    readonly scope: string,
    key: string,
    readonly hash: number,
    fingerprint: string,
    public at: number,
    /** Its place in the store's arrival order (renumbered when an in-flight record moves to the newest end). */
    public arrival: number,
  ) {
    // Flattened once, with the body (setBody): an abandoned record's pieces die young.
    this.text = key + fingerprint;
    this.keyEnd = key.length;
    this.fingerprintEnd = key.length + fingerprint.length;
  }

  get key(): string {
    return this.text.slice(0, this.keyEnd);
  }

  get fingerprint(): string {
    return this.text.slice(this.keyEnd, this.fingerprintEnd);
  }

  /** The stored body ('' while in flight). */
  get body(): string {
    return this.text.slice(this.fingerprintEnd);
  }

  /** Characters of key, fingerprint and body. */
  get length(): number {
    return this.text.length;
  }

  is(scope: string, key: string): boolean {
    return key.length === this.keyEnd && this.scope === scope && this.text.startsWith(key);
  }

  hasFingerprint(fingerprint: string): boolean {
    return (
      fingerprint.length === this.fingerprintEnd - this.keyEnd &&
      this.text.startsWith(fingerprint, this.keyEnd)
    );
  }

  /** Stores the body (once, on completion). */
  setBody(body: string): void {
    this.text = flat(this.text + body);
  }
}

/** `status` of a record abandoned while in flight: its claim can no longer complete it. */
const abandoned = -1;

/**
 * The records' Map key: a 30-bit FNV-1a hash of (scope, key), a small
 * integer. With the scoped key itself as the Map key, each lookup in a Map of
 * ~10^5 records compared the key with the strings of the entries in its hash
 * chain, one cache miss each (and the scoped key had to be built and hashed):
 * 2.1 µs of a keyed RemotePrint went to Map lookups (perf at 32 connections,
 * two runs). An integer compares in the table itself. A record whose hash is
 * taken by another key (about one in 10^4 among 10^5 records, or every one a
 * client crafted to collide) goes to a second Map by its scoped key instead.
 */
export function keyHash(scope: string, key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < scope.length; i++) h = Math.imul(h ^ scope.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 10, 0x01000193); // '\n' between the two, as in scopedKey
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 15)) & 0x3fffffff;
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

/** Accounted bytes of a record: its strings (the scope as part of the scoped key) plus {@link recordOverheadBytes}. */
export function recordBytes(mapKey: string, fingerprint: string, body: string): number {
  return recordOverheadBytes + mapKey.length + fingerprint.length + body.length;
}

/** {@link recordBytes} of a held record. */
function heldBytes(record: MemoryRecord): number {
  return recordOverheadBytes + record.scope.length + 1 + record.length;
}

/**
 * A Map of records in arrival order, and where eviction and expiry continue
 * from in it: a Map iterator that lives across sweeps. A fresh iterator per
 * sweep would walk, every time, the holes that deleted entries leave at the
 * old end of V8's table until it is rehashed (34 µs a call at 100 000
 * records, measured); this one walks each once.
 */
class ArrivalMap<K> {
  readonly map = new Map<K, MemoryRecord>();
  private cursor: Iterator<[K, MemoryRecord]> | undefined;
  /** The oldest entry, taken from the cursor but not yet dropped. */
  private oldestEntry: [K, MemoryRecord] | undefined;

  /** The oldest entry still held; undefined when none. */
  oldest(): [K, MemoryRecord] | undefined {
    for (;;) {
      if (this.oldestEntry === undefined) {
        this.cursor ??= this.map.entries();
        const next = this.cursor.next();
        if (next.done === true) {
          // A finished iterator stays finished: start a fresh one next time.
          this.cursor = undefined;
          return undefined;
        }
        this.oldestEntry = next.value;
      }
      // Dropped since (abandoned, or expired on lookup), maybe replaced by a newer record.
      if (this.map.get(this.oldestEntry[0]) === this.oldestEntry[1]) return this.oldestEntry;
      this.oldestEntry = undefined;
    }
  }

  /** The oldest entry is dealt with (dropped or moved): the next one is the cursor's. */
  passOldest(): void {
    this.oldestEntry = undefined;
  }

  /**
   * Lets go of the cursor (while the store only grows): a live Map iterator
   * keeps the table it started on alive through every rehash (35 bytes a
   * record at 100 000, measured), and without deletions a fresh one walks no holes.
   */
  release(): void {
    this.cursor = undefined;
    this.oldestEntry = undefined;
  }
}

/**
 * Idempotency records by {@link keyHash} in one Map, in arrival order (a
 * record still in flight when it reaches the old end moves to the new end); a
 * record whose hash another key holds goes to a second Map, by scoped key.
 * Each record carries an arrival number, so that the two Maps make one order.
 *
 * Policy at the bounds: when a new or completed record takes the store past
 * `maxEntries` records or `maxBytes` accounted bytes, the oldest completed
 * records (by arrival) are dropped first until it fits again; a
 * retry with an evicted key runs again. In-flight records are never dropped
 * (so a store full of in-flight calls may exceed the bounds by the number of
 * concurrent keyed calls); a single response larger than `maxBytes` is
 * answered but not kept. Bytes are counted in UTF-16 code units of the key,
 * fingerprint and stored body, plus a fixed per-record overhead.
 *
 * Retention: a completed record is kept `retentionMs` after completion. Expired
 * records are never replayed (checked on lookup) and their memory is reclaimed
 * by a sweep every {@link sweepEvery} new records, at the bounds, or by `expire()`.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly byHash = new ArrivalMap<number>();
  /** Records whose hash was held by another key when they came (see {@link keyHash}). */
  private readonly collided = new ArrivalMap<string>();
  /** Resolvers of the duplicates waiting for an in-flight record (rare, so kept off the record). */
  private readonly waiters = new Map<MemoryRecord, (() => void)[]>();
  private readonly epoch: number;
  private readonly hashOf: (scope: string, key: string) => number;
  private bytes = 0;
  /** Arrival numbers handed out. */
  private arrivals = 0;
  private added = 0;
  private expired = 0;
  private evicted = 0;

  constructor(private readonly options: MemoryIdempotencyStoreOptions) {
    this.epoch = options.clock.now();
    this.hashOf = options.keyHash ?? keyHash;
  }

  begin(scope: string, key: string, fingerprint: string): BeginOutcome {
    const hash = this.hashOf(scope, key);
    const first = this.byHash.map.get(hash);
    let record = first?.is(scope, key) ? first : this.findCollided(scope, key);
    if (record !== undefined && record.status !== 0 && this.isExpired(record.at, this.now())) {
      this.drop(record);
      this.expired++;
      record = undefined;
    }
    if (record === undefined) {
      record = new MemoryRecord(scope, key, hash, fingerprint, this.now(), ++this.arrivals);
      // The common case, a new hash: one lookup above and this set.
      if (first === undefined) this.byHash.map.set(hash, record);
      else this.hold(record);
      this.bytes += heldBytes(record);
      if (++this.added >= sweepEvery || this.overBounds()) this.trim();
      return { state: 'run', ticket: record };
    }
    if (!record.hasFingerprint(fingerprint)) return { state: 'reused', fingerprint: record.fingerprint };
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
    const record = ticket as MemoryRecord;
    if (record.status !== 0) return;
    record.status = response.status;
    record.setBody(response.body);
    record.leaseRemainingMs = response.leaseRemainingMs;
    record.at = this.now();
    this.bytes += response.body.length;
    this.wake(record);
    if (this.overBounds()) this.trim();
  }

  abandon(ticket: IdempotencyTicket): void {
    const record = ticket as MemoryRecord;
    if (record.status !== 0) return;
    record.status = abandoned;
    this.drop(record);
    this.wake(record);
  }

  /** Scope, key and fingerprint of a ticket's record while it is in flight (a durable store logs them). */
  inFlight(ticket: IdempotencyTicket): { scope: string; key: string; fingerprint: string } | undefined {
    const record = ticket as MemoryRecord;
    if (record.status !== 0) return undefined;
    return { scope: record.scope, key: record.key, fingerprint: record.fingerprint };
  }

  get(scope: string, key: string): IdempotencyRecordView | undefined {
    const record = this.find(scope, key);
    if (record === undefined || (record.status !== 0 && this.isExpired(record.at, this.now())))
      return undefined;
    return { fingerprint: record.fingerprint, response: record.status === 0 ? undefined : record };
  }

  expire(): number {
    const now = this.now();
    const gone = [...this.held()].filter((r) => r.status !== 0 && this.isExpired(r.at, now));
    for (const record of gone) this.drop(record);
    this.expired += gone.length;
    return gone.length;
  }

  /**
   * Completed, unexpired records, oldest first (in each Map), for a durable
   * store's checkpoint. It may be read across turns of the event loop: the
   * Maps' iterators tolerate records added and dropped meanwhile.
   */
  *completed(): IterableIterator<CompletedIdempotencyRecord> {
    for (const record of this.held()) {
      if (record.status === 0 || this.isExpired(record.at, this.now())) continue;
      yield {
        scope: record.scope,
        key: record.key,
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
    const { scope, key } = completed;
    const old = this.find(scope, key);
    if (old !== undefined) {
      if (old.status === 0) return;
      this.drop(old);
    }
    if (this.isExpired(at, this.now())) return;
    const { fingerprint, response } = completed;
    const record = new MemoryRecord(scope, key, this.hashOf(scope, key), fingerprint, at, ++this.arrivals);
    record.status = response.status;
    record.setBody(response.body);
    record.leaseRemainingMs = response.leaseRemainingMs;
    this.hold(record);
    this.bytes += heldBytes(record);
    if (this.overBounds()) this.trim();
  }

  stats(): IdempotencyStoreStats {
    return { entries: this.size(), bytes: this.bytes, expired: this.expired, evicted: this.evicted };
  }

  private now(): number {
    return this.options.clock.now() - this.epoch;
  }

  private size(): number {
    return this.byHash.map.size + this.collided.map.size;
  }

  /** Whether a record completed at `at` (store time) has outlived its retention at `now`. */
  private isExpired(at: number, now: number): boolean {
    return at + this.options.retentionMs <= now;
  }

  private overBounds(): boolean {
    return this.size() > this.options.maxEntries || this.bytes > this.options.maxBytes;
  }

  /** The record of (scope, key), if held. */
  private find(scope: string, key: string): MemoryRecord | undefined {
    const first = this.byHash.map.get(this.hashOf(scope, key));
    return first?.is(scope, key) ? first : this.findCollided(scope, key);
  }

  private findCollided(scope: string, key: string): MemoryRecord | undefined {
    return this.collided.map.size === 0 ? undefined : this.collided.map.get(scopedKey(scope, key));
  }

  /** Adds a record whose key no held record has: by its hash, or by its scoped key if the hash is taken. */
  private hold(record: MemoryRecord): void {
    if (this.byHash.map.has(record.hash)) this.collided.map.set(scopedKey(record.scope, record.key), record);
    else this.byHash.map.set(record.hash, record);
  }

  /** Every held record, each Map oldest first; tolerates changes between steps. */
  private *held(): IterableIterator<MemoryRecord> {
    yield* this.byHash.map.values();
    yield* this.collided.map.values();
  }

  /** Lets go of a held record. */
  private drop(record: MemoryRecord): void {
    if (this.byHash.map.get(record.hash) === record) this.byHash.map.delete(record.hash);
    else if (!this.collided.map.delete(scopedKey(record.scope, record.key))) return; // not held
    this.bytes -= heldBytes(record);
  }

  /**
   * Walks from the oldest record of the two Maps (by arrival number): drops
   * expired ones, and completed ones while over a bound; stops at the first
   * completed record that is neither. A record still in flight is moved to the
   * newest end instead (it is never dropped). Records complete roughly in
   * arrival order, so a later expired record may wait for the next sweep (it
   * is never replayed meanwhile). One order across both Maps: records a client
   * made to collide cannot push out other clients' older ones first.
   */
  private trim(): void {
    this.added = 0;
    const now = this.now();
    let moves = this.size();
    let dropped = false;
    for (;;) {
      const a = this.byHash.oldest();
      const b = this.collided.map.size === 0 ? undefined : this.collided.oldest();
      const next =
        b === undefined || (a !== undefined && a[1].arrival < b[1].arrival)
          ? a && this.trimStep(this.byHash, a, now, moves)
          : this.trimStep(this.collided, b, now, moves);
      if (next === 'moved') moves--;
      else if (next === 'dropped') dropped = true;
      else {
        // Nothing (more) to drop: let go of the cursors while the store only grows.
        if (!dropped || this.collided.map.size === 0) this.collided.release();
        if (!dropped) this.byHash.release();
        return;
      }
    }
  }

  /** What trim does with one Map's oldest entry; undefined when it stops. */
  private trimStep<K>(
    records: ArrivalMap<K>,
    [mapKey, record]: [K, MemoryRecord],
    now: number,
    moves: number,
  ): 'moved' | 'dropped' | undefined {
    if (record.status === 0) {
      if (moves <= 0) return undefined;
      records.passOldest();
      records.map.delete(mapKey);
      record.arrival = ++this.arrivals;
      records.map.set(mapKey, record);
      return 'moved';
    }
    if (this.isExpired(record.at, now)) this.expired++;
    else if (this.overBounds()) this.evicted++;
    else return undefined;
    records.passOldest();
    this.drop(record);
    return 'dropped';
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
 * (scope, key) as one string, a Map key (the redo log's prints in doubt are
 * found by it). Keys are printable ASCII, so a newline cannot occur in one and
 * the pair is unambiguous.
 */
export function scopedKey(scope: string, key: string): string {
  return `${scope}\n${key}`;
}

/**
 * Makes V8 hold `text` as one flat string. A string built by concatenation (a
 * serialiser's output) is a tree of pieces that can take three
 * times the bytes of its text; reading a character flattens the tree in place,
 * and the GC then drops the pieces. Measured by bench/idempotency-memory.ts.
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
