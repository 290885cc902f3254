/**
 * The idempotency store's contract. The in-memory store implements it today;
 * a durable store (redo log) and a shared store (several servers) can back it
 * later without touching the transports: every method may answer at once or
 * with a promise, and the caller (run-once.ts) handles both.
 */

/** A final response as first sent, which a replay sends again byte for byte. */
export interface StoredResponse {
  /** HTTP status (200, 204, or an error's status). */
  readonly status: number;
  /** The serialised body exactly as first sent; '' for none (204). */
  readonly body: string;
  /** The first answer's Lease-Remaining-Ms header, if it had one. */
  readonly leaseRemainingMs: number | undefined;
}

/**
 * An in-flight record's claim, handed to the one caller that runs the call.
 * Opaque: only the store that issued it reads it.
 */
export type IdempotencyTicket = unknown;

/** What `begin` decided for one (scope, key, fingerprint). */
export type BeginOutcome =
  /** No record: one is now in flight, and the caller runs the call and then completes or abandons it. */
  | { readonly state: 'run'; readonly ticket: IdempotencyTicket }
  /** A completed record with the same fingerprint: send its response, do not run. */
  | { readonly state: 'replay'; readonly response: StoredResponse }
  /** The same request is in flight: wait for `settled`, then call `begin` again. */
  | { readonly state: 'wait'; readonly settled: Promise<void> }
  /** The key is taken by another request (another method, transport or body): `fingerprint` is the record's. */
  | { readonly state: 'reused'; readonly fingerprint: string };

/** A record as `get` shows it. */
export interface IdempotencyRecordView {
  readonly fingerprint: string;
  /** The stored response; undefined while the call is in flight. */
  readonly response: StoredResponse | undefined;
}

/** Counters of a store, for metrics and benchmarks. */
export interface IdempotencyStoreStats {
  /** Records held, in flight and completed. */
  readonly entries: number;
  /** Accounted bytes of the records held (see the store's documentation). */
  readonly bytes: number;
  /** Completed records dropped because their retention ran out. */
  readonly expired: number;
  /** Completed records dropped early to stay within the entry or byte bound. */
  readonly evicted: number;
}

/**
 * Idempotency records scoped by (scope, key): `scope` is the principal, `key`
 * the Idempotency-Key, `fingerprint` identifies the request the key was first
 * used for (transport, method and a hash of the validated request).
 */
export interface IdempotencyStore {
  /** Looks the key up and either claims it (run), or says to replay, wait, or refuse it as reused. */
  begin(scope: string, key: string, fingerprint: string): BeginOutcome | Promise<BeginOutcome>;
  /**
   * Stores the final response of a claimed record and wakes its waiters.
   * `logged`: the response is durable already (the redo log record of the
   * call's effect carries it), so a durable store need not write it again.
   */
  complete(ticket: IdempotencyTicket, response: StoredResponse, logged?: boolean): void | Promise<void>;
  /** Drops a claimed record without storing anything (the answer was not final); wakes its waiters. */
  abandon(ticket: IdempotencyTicket): void | Promise<void>;
  /** The record of (scope, key), if any and not expired. */
  get(
    scope: string,
    key: string,
  ): IdempotencyRecordView | undefined | Promise<IdempotencyRecordView | undefined>;
  /**
   * Drops completed records whose retention has run out and returns how many:
   * every one, or with `limit` at most that many, oldest first (fewer than
   * `limit`: none left to drop). The server calls it with a limit once a
   * second, and again in the next turn while it returns the limit
   * (sweeper.ts); a store may take the limit as a hint.
   */
  expire(limit?: number): number | Promise<number>;
  /** Current counters. */
  stats(): IdempotencyStoreStats;
}
