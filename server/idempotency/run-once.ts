import type { RpcError } from '../../common/rpc-error.js';
import { settleBy } from '../rpc/deadlines.js';
import { keyInUseError, keyReusedError } from './policy.js';
import type { BeginOutcome, IdempotencyStore, IdempotencyTicket, StoredResponse } from './store.js';

/** What a first run produced. */
export interface RunOutcome {
  /** The response, serialised as the transport sends it. */
  readonly response: StoredResponse;
  /** Whether it is final and so stored (see policy.ts); otherwise the record is dropped. */
  readonly final: boolean;
  /** The error the response carries, for the transport to send it (Retry-After, logging, metrics). */
  readonly error?: RpcError | undefined;
  /** The response is in the redo log already (a print's record carries it): see IdempotencyStore.complete. */
  readonly logged?: boolean;
}

/** What to send for a keyed request. */
export interface KeyedAnswer {
  readonly response: StoredResponse;
  /** Whether the response is a stored one (Idempotent-Replayed: true). */
  readonly replayed: boolean;
  /** Set on a first run that failed: send this error rather than `response`. */
  readonly error?: RpcError | undefined;
}

/**
 * One keyed request, as a transport hands it over. A transport may give its
 * call as one object with these methods (no closure per call): `run` gives the
 * method's own result and `outcome`/`failure` map it, so that a promise is
 * followed by one callback, not two. A `failure` that throws drops the record
 * and passes its error on (a call that maps its errors itself rethrows).
 */
export interface KeyedCall {
  /** The principal. */
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  /** When the caller stops waiting (epoch ms). */
  readonly deadline: number;
  /** Runs the request. */
  run(): unknown;
  /** Maps what `run` gave (or its promise fulfilled with) into the outcome. */
  outcome(result: unknown): RunOutcome;
  /** Maps what `run` threw (or its promise rejected with) into the outcome. */
  failure(error: unknown): RunOutcome;
  /**
   * Read once `run` gave a promise: true when it settles within this turn of
   * the event loop, so that no deadline race is needed (see CallContext).
   */
  readonly settlesThisTurn?: boolean;
  /** What the first caller gets when its deadline passes while the call runs (may throw; called unbound). */
  readonly late: () => KeyedAnswer;
  /**
   * The request's fingerprint in the older form that `stored` (a record's,
   * which differs from the current one) may have been written in by an earlier
   * server, so that a retry across the upgrade still matches its record;
   * undefined when no older form fits. Computed only then.
   */
  legacyFingerprint(stored: string): string | undefined;
}

/**
 * Runs a keyed request at most once per (scope, key) while its record lives:
 * the first request runs and its final response is stored; a later one with the
 * same fingerprint gets the stored response; one that arrives while the first
 * runs waits for it (until its own deadline: then 409 idempotency_key_in_use);
 * one with another fingerprint gets 422 idempotency_key_reused. When the first
 * caller's deadline passes while the call runs, it gets `late()`, and the record
 * still completes with the real result, for its retry.
 *
 * Synchronous stores and calls give a synchronous answer: no promise, no timer.
 */
export function runOnce(store: IdempotencyStore, call: KeyedCall): KeyedAnswer | Promise<KeyedAnswer> {
  return attempt(store, call, call.fingerprint);
}

/** runOnce with the fingerprint to look up (the call's, or its legacy one). */
function attempt(
  store: IdempotencyStore,
  call: KeyedCall,
  fingerprint: string,
): KeyedAnswer | Promise<KeyedAnswer> {
  const begun = store.begin(call.scope, call.key, fingerprint);
  return begun instanceof Promise
    ? begun.then((b) => proceed(store, call, fingerprint, b))
    : proceed(store, call, fingerprint, begun);
}

function proceed(
  store: IdempotencyStore,
  call: KeyedCall,
  fingerprint: string,
  begun: BeginOutcome,
): KeyedAnswer | Promise<KeyedAnswer> {
  switch (begun.state) {
    case 'replay':
      return { response: begun.response, replayed: true };
    case 'reused':
      if (fingerprint === call.fingerprint && call.legacyFingerprint(begun.fingerprint) === begun.fingerprint)
        return attempt(store, call, begun.fingerprint);
      throw keyReusedError();
    case 'wait':
      return awaitFirst(store, call, fingerprint, begun.settled);
    case 'run':
      return runFirst(store, call, begun.ticket);
  }
}

async function awaitFirst(
  store: IdempotencyStore,
  call: KeyedCall,
  fingerprint: string,
  settled: Promise<void>,
): Promise<KeyedAnswer> {
  const inTime = await settleBy(
    settled.then(() => true),
    call.deadline,
    () => false,
  );
  if (!inTime) throw keyInUseError();
  // The first call completed (replay) or left nothing behind (run it now): ask again.
  return attempt(store, call, fingerprint);
}

function runFirst(
  store: IdempotencyStore,
  call: KeyedCall,
  ticket: IdempotencyTicket,
): KeyedAnswer | Promise<KeyedAnswer> {
  let out: unknown;
  try {
    out = call.run();
  } catch (error) {
    return mapThenRecord(store, call, ticket, error, true);
  }
  if (!(out instanceof Promise)) return mapThenRecord(store, call, ticket, out, false);
  const recorded = out.then(
    (result: unknown) => mapThenRecord(store, call, ticket, result, false),
    (error: unknown) => mapThenRecord(store, call, ticket, error, true),
  );
  return call.settlesThisTurn === true ? recorded : settleBy(recorded, call.deadline, call.late);
}

/** Maps a result or an error into the outcome and records it; a mapping that throws drops the record. */
function mapThenRecord(
  store: IdempotencyStore,
  call: KeyedCall,
  ticket: IdempotencyTicket,
  value: unknown,
  isError: boolean,
): KeyedAnswer | Promise<KeyedAnswer> {
  let outcome: RunOutcome;
  try {
    outcome = isError ? call.failure(value) : call.outcome(value);
  } catch (error) {
    return dropAndThrow(store, ticket, error);
  }
  return record(store, ticket, outcome);
}

function dropAndThrow(
  store: IdempotencyStore,
  ticket: IdempotencyTicket,
  error: unknown,
): never | Promise<never> {
  return afterStore(store.abandon(ticket), () => {
    throw error;
  });
}

function record(
  store: IdempotencyStore,
  ticket: IdempotencyTicket,
  outcome: RunOutcome,
): KeyedAnswer | Promise<KeyedAnswer> {
  const stored = outcome.final
    ? store.complete(ticket, outcome.response, outcome.logged === true)
    : store.abandon(ticket);
  return afterStore(stored, () => ({ response: outcome.response, replayed: false, error: outcome.error }));
}

/** Answers once the store has done its part (at once for a synchronous store). */
function afterStore<T>(done: void | Promise<void>, then: () => T): T | Promise<T> {
  return done instanceof Promise ? done.then(then) : then();
}
