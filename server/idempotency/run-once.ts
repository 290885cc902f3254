import type { RpcError } from '../../common/rpc-error.js';
import { settleBy } from '../rpc/deadlines.js';
import { isLegacyFingerprint } from './fingerprint.js';
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

/** One keyed request, as a transport hands it over. */
export interface KeyedCall {
  /** The principal. */
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  /** When the caller stops waiting (epoch ms). */
  readonly deadline: number;
  /** Runs the request; maps every error into the outcome (a throw drops the record and is passed on). */
  run(): RunOutcome | Promise<RunOutcome>;
  /** What the first caller gets when its deadline passes while the call runs (may throw; called unbound). */
  readonly late: () => KeyedAnswer;
  /**
   * The request's legacyFingerprint (fingerprint.ts), computed only when a record holds
   * one (written by a server before the current fingerprint), so that a retry
   * across the upgrade still matches its record.
   */
  readonly legacyFingerprint?: () => string;
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
  const begun = store.begin(call.scope, call.key, call.fingerprint);
  return begun instanceof Promise ? begun.then((b) => proceed(store, call, b)) : proceed(store, call, begun);
}

function proceed(
  store: IdempotencyStore,
  call: KeyedCall,
  begun: BeginOutcome,
): KeyedAnswer | Promise<KeyedAnswer> {
  switch (begun.state) {
    case 'replay':
      return { response: begun.response, replayed: true };
    case 'reused':
      if (call.legacyFingerprint !== undefined && isLegacyFingerprint(begun.fingerprint)) {
        const legacy = call.legacyFingerprint();
        if (legacy === begun.fingerprint)
          return runOnce(store, { ...call, fingerprint: legacy, legacyFingerprint: undefined });
      }
      throw keyReusedError();
    case 'wait':
      return awaitFirst(store, call, begun.settled);
    case 'run':
      return runFirst(store, call, begun.ticket);
  }
}

async function awaitFirst(
  store: IdempotencyStore,
  call: KeyedCall,
  settled: Promise<void>,
): Promise<KeyedAnswer> {
  const inTime = await settleBy(
    settled.then(() => true),
    call.deadline,
    () => false,
  );
  if (!inTime) throw keyInUseError();
  // The first call completed (replay) or left nothing behind (run it now): ask again.
  return runOnce(store, call);
}

function runFirst(
  store: IdempotencyStore,
  call: KeyedCall,
  ticket: IdempotencyTicket,
): KeyedAnswer | Promise<KeyedAnswer> {
  let outcome: RunOutcome | Promise<RunOutcome>;
  try {
    outcome = call.run();
  } catch (error) {
    return afterStore(store.abandon(ticket), () => {
      throw error;
    });
  }
  if (!(outcome instanceof Promise)) return record(store, ticket, outcome);
  const recorded = outcome.then(
    (o) => record(store, ticket, o),
    (error: unknown) =>
      afterStore(store.abandon(ticket), () => {
        throw error;
      }),
  );
  return settleBy(recorded, call.deadline, call.late);
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
