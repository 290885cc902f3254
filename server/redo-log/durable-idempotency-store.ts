import type { Clock } from '../clock/clock.js';
import type { CompletedIdempotencyRecord, MemoryIdempotencyStore } from '../idempotency/memory-store.js';
import type {
  BeginOutcome,
  IdempotencyRecordView,
  IdempotencyStore,
  IdempotencyStoreStats,
  IdempotencyTicket,
  StoredResponse,
} from '../idempotency/store.js';
import type { IdempotencyRecord } from './records.js';
import type { RedoLog } from './redo-log.js';

/**
 * The idempotency store of a server with a redo log: the in-memory store,
 * with every completion written to the log before the inner store (and so any
 * duplicate waiting for it) sees it, and before the first caller's reply is
 * sent; a keyed HTTP print's completion is in its print record already
 * (`logged`), which was written before its bytes. After a crash, recovery puts the records back (`restore`), so a
 * retry across the crash gets the stored answer. Checkpoints read the
 * records back out (`records`). In-flight records are not logged: a call
 * that never completed left no answer to replay, and runs again.
 */
export class DurableIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly inner: MemoryIdempotencyStore,
    private readonly log: RedoLog,
    private readonly clock: Clock,
  ) {}

  /** The inner store's answer: its ticket names the record, which holds what the log needs. */
  begin(scope: string, key: string, fingerprint: string): BeginOutcome {
    return this.inner.begin(scope, key, fingerprint);
  }

  /**
   * Logs the response, unless `logged` (a keyed print's record carries it),
   * then stores it. Throws `unavailable` if the log cannot take it: then
   * nothing is stored or sent.
   *
   * A `logged` answer is in the generation its print went to. A checkpoint
   * cannot fall between the two: the print is logged and written in one
   * setImmediate callback, and its call completes in the microtasks that
   * follow it, while a checkpoint starts from a later callback (RedoLog.flush
   * schedules it); so the record is completed when the checkpoint's snapshot
   * is taken, and the checkpoint carries it.
   */
  complete(ticket: IdempotencyTicket, response: StoredResponse, logged = false): void {
    // A response the inner store will not keep (larger than its byte bound) is not logged either.
    const claim = logged || !this.inner.keeps(ticket, response) ? undefined : this.inner.inFlight(ticket);
    if (claim === undefined) {
      // Logged with its effect already, or no longer in flight (then the inner store ignores it too).
      this.inner.complete(ticket, response);
      return;
    }
    try {
      this.log.idempotencyCompleted({
        ...claim,
        status: response.status,
        body: response.body,
        leaseRemainingMs: response.leaseRemainingMs,
        completedAt: this.clock.now(),
      });
    } catch (error) {
      this.inner.abandon(ticket);
      throw error;
    }
    this.inner.complete(ticket, response);
  }

  abandon(ticket: IdempotencyTicket): void {
    this.inner.abandon(ticket);
  }

  get(scope: string, key: string): IdempotencyRecordView | undefined {
    return this.inner.get(scope, key);
  }

  expire(limit?: number): number {
    return this.inner.expire(limit);
  }

  stats(): IdempotencyStoreStats {
    return this.inner.stats();
  }

  /** Puts recovered records back, oldest first (expired ones are skipped by the inner store). */
  restore(records: readonly IdempotencyRecord[]): void {
    const sorted = [...records].sort((a, b) => a.completedAt - b.completedAt);
    for (const r of sorted) {
      const { scope, key, fingerprint, status, body, leaseRemainingMs, completedAt } = r;
      this.inner.restore({
        scope,
        key,
        fingerprint,
        response: { status, body, leaseRemainingMs },
        completedAt,
      });
    }
  }

  /** The completed records as log records, for a checkpoint (read lazily). */
  *records(): IterableIterator<IdempotencyRecord> {
    for (const r of this.inner.completed() as IterableIterator<CompletedIdempotencyRecord>) {
      const { status, body, leaseRemainingMs } = r.response;
      yield {
        type: 'idem',
        scope: r.scope,
        key: r.key,
        fingerprint: r.fingerprint,
        status,
        body,
        leaseRemainingMs,
        completedAt: r.completedAt,
      };
    }
  }
}
