/**
 * Numbers RemotePrint calls per handle (seq 1, 2, 3, ...) in call order, so
 * prints issued concurrently land exactly once and in that order: the server
 * applies only last+1 and answers `sequence_gap` to a print that overtook an
 * earlier one. Such a print is retried (same key, so never applied twice) as
 * soon as the print the server is waiting for settles, or after a short
 * backoff when that print is not this client's to watch, until the gap fills
 * or the call's deadline passes.
 *
 * A print that fails leaves its seq unused (refused: bad data, body too large)
 * or in doubt (unavailable, past its deadline or aborted after it was sent),
 * and the server would wait for that seq forever: every later print on the
 * handle failed with `sequence_gap` until it was closed. So the client fills
 * the seq with an empty print under a fresh key: the server applies it
 * (0 bytes), or answers `stale_sequence` when the failed print was applied
 * after all. Either way the seq is used, the failed print landed before the
 * fill or never will, and the prints after it go once the fill settles.
 * A fill that cannot get through (server unreachable) is tried again before
 * the next print is sent, which fails with `unavailable`, reason
 * `sequence_unrepaired` (nothing written), while it still cannot: the handle
 * recovers when the server does, as other calls do, rather than staying
 * broken until it is reopened.
 */
import { randomUUID } from 'node:crypto';
import { RpcError } from '../common/rpc-error.js';
import type { Caller, CallTarget, Interceptor } from './caller.js';
import { CallDeadline } from './deadline.js';
import { deadlineError, isLeaseGone } from './errors.js';
import { type CallOptions, clientDefaults } from './options.js';

interface HandleSequence {
  readonly handle: string;
  /** Last seq handed out. */
  last: number;
  /** Prints on their way, by seq: each settles when its call ends. */
  readonly inFlight: Map<number, Promise<unknown>>;
  /** Fills on their way, by seq: each resolves with the error that kept its seq unused, or undefined. */
  readonly filling: Map<number, Promise<RpcError | undefined>>;
  /** Seqs of failed prints still to fill: their fill failed, or the print was never sent. */
  readonly unfilled: Set<number>;
}

/** Whether an error is the server's "an earlier seq has not arrived yet". */
function isSequenceGap(error: unknown): error is RpcError {
  return error instanceof RpcError && error.code === 'failed_precondition' && error.reason === 'sequence_gap';
}

/** Errors after which a closed handle's counter is dropped: the handle is gone, or was never there. */
function handleIsGone(error: unknown): boolean {
  return (
    !(error instanceof RpcError) || !['unavailable', 'deadline_exceeded', 'canceled'].includes(error.code)
  );
}

/**
 * Answers by which the server says the handle takes no print at all: there is
 * no seq left to fill. The lease keeper's test, so that a bare 404 (a proxy's)
 * is not taken for the handle's end and the seq is still filled.
 */
function takesNoPrints(error: RpcError): boolean {
  return isLeaseGone(error) || error.reason === 'handle_not_writable';
}

/**
 * The error of a print not sent because the seq of an earlier failed print
 * could not be filled. `unavailable` whatever stopped the fill: nothing was
 * written, and the way out is to try again (the next print on the handle
 * tries the fill first), or to close the handle and open the file again. A
 * closed client is reported as such.
 */
function unrepairedError(seq: number, cause: RpcError): RpcError {
  // A fill that waited on an earlier one names the seq at the root.
  if (cause.reason === 'client_closed' || cause.reason === 'sequence_unrepaired') return cause;
  return new RpcError({
    code: 'unavailable',
    message:
      `print not sent, nothing written: seq ${seq} of this handle, left by a failed print, could not be ` +
      `filled (${cause.code}: ${cause.message}). The next print on the handle tries again; ` +
      'closing the handle and opening the file again also clears it',
    reason: 'sequence_unrepaired',
    details: { seq },
    cause,
  });
}

/**
 * The print's own deadline error in place of an attempt's: an attempt after
 * a gap gets only the time left, which its error would quote as the deadline.
 */
function ownDeadline(error: unknown, deadline: CallDeadline): unknown {
  if (!(error instanceof RpcError) || error.code !== 'deadline_exceeded' || deadline.remainingMs() >= 1)
    return error;
  return deadlineError(deadline.timeoutMs, error.cause);
}

/** `work`'s result, unless the call's deadline passes or it is aborted first. */
async function within<T>(deadline: CallDeadline, work: Promise<T>): Promise<T> {
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  work.then(done, done);
  while (!settled) {
    const stop = deadline.stopError();
    if (stop) throw stop;
    // Node's timers take at most 2^31-1 ms (Infinity would fire at once).
    await deadline.sleep(Math.min(deadline.remainingMs(), 2_147_483_647), work);
  }
  return work;
}

/**
 * Per-handle print numbering, the retries that wait for gaps to fill, and the fills.
 *
 * The request is copied with Object.assign and each attempt's options are a
 * literal, not object spreads: on Node 20 an object built by a spread (`{ ...a, b }`) outlives
 * scavenges and is promoted with what it holds (a loop doing nothing else:
 * 139 promoted bytes a turn, against 12 for a literal and 14 for
 * Object.assign; a sequential typed client: 258 bytes a call with spreads
 * here, 91 without; --trace-gc-nvp). The same holds in transport.ts and handle.ts.
 */
export class PrintSequencer {
  readonly #sequences = new Map<string, HandleSequence>();
  readonly #timeoutMs: number;
  readonly #random: () => number;

  /** `timeoutMs`: budget of prints that set none (the client's default), and of each fill. */
  constructor(timeoutMs: number, random: () => number = Math.random) {
    this.#timeoutMs = timeoutMs;
    this.#random = random;
  }

  #sequence(handle: string): HandleSequence {
    let sequence = this.#sequences.get(handle);
    if (!sequence) {
      sequence = { handle, last: 0, inFlight: new Map(), filling: new Map(), unfilled: new Set() };
      this.#sequences.set(handle, sequence);
    }
    return sequence;
  }

  /** Drops a handle's counter (it was closed or its lease ended). */
  forget(handle: string): void {
    this.#sequences.delete(handle);
  }

  /** The interceptor: numbers Files.RemotePrint calls, retries them across sequence gaps, fills failed ones. */
  readonly interceptor: Interceptor = (next) => async (target, request, options) => {
    const { service, method } = target;
    if (service.name !== 'Files') return next(target, request, options);
    const { handle, seq: given } = request as { handle: string; seq?: number };
    if (method.name === 'RemoteClose') {
      try {
        const result = await next(target, request, options);
        this.forget(handle);
        return result;
      } catch (error) {
        if (handleIsGone(error)) this.forget(handle);
        throw error;
      }
    }
    if (method.name !== 'RemotePrint' || given !== undefined) return next(target, request, options);

    // Numbered synchronously, before any await, so the numbers follow the order of the calls.
    const sequence = this.#sequence(handle);
    const seq = ++sequence.last;
    const call = this.#print(sequence, seq, next, target, Object.assign({}, request, { seq }), options);
    sequence.inFlight.set(seq, call);
    try {
      const result = await call;
      // Applied, so every seq before it is used: one left to fill was a print applied after all.
      if (sequence.unfilled.size > 0)
        for (const s of sequence.unfilled) if (s < seq) sequence.unfilled.delete(s);
      return result;
    } catch (error) {
      // A print never sent is in `unfilled` already (filled before the next print goes); a handle
      // closed or ended meanwhile (forgotten) has no seq to fill.
      if (
        this.#sequences.get(handle) === sequence &&
        !sequence.unfilled.has(seq) &&
        !(error instanceof RpcError && takesNoPrints(error))
      )
        this.#fill(sequence, seq, next, target);
      throw error;
    } finally {
      sequence.inFlight.delete(seq);
    }
  };

  async #print(
    sequence: HandleSequence,
    seq: number,
    next: Caller,
    target: CallTarget,
    body: object,
    options: CallOptions,
  ): Promise<unknown> {
    const deadline = new CallDeadline(options.timeoutMs ?? this.#timeoutMs, options.signal);
    if (this.#hasGapBefore(sequence, seq)) {
      try {
        await this.#repair(sequence, seq, next, target, deadline);
      } catch (error) {
        // Never sent: the next print's repair fills this seq too, before that print goes.
        sequence.unfilled.add(seq);
        throw error;
      }
    }
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    const { initial, max, waitForEarlier } = clientDefaults.sequenceGapBackoffMs;
    for (let gapRetry = 1; ; gapRetry++) {
      try {
        const attempt: CallOptions = {
          signal: options.signal,
          idempotencyKey,
          // Whole ms: the inner call's deadline error quotes it ("deadline of 300 ms exceeded").
          timeoutMs: Math.ceil(deadline.remainingMs()),
        };
        return await next(target, body, attempt);
      } catch (error) {
        if (!isSequenceGap(error)) throw ownDeadline(error, deadline);
        // The handle was forgotten (closed, lease lost): the gap never fills.
        if (this.#sequences.get(sequence.handle) !== sequence) throw error;
        // A print before this one failed: go again once its seq is filled.
        if (this.#hasGapBefore(sequence, seq)) {
          await this.#repair(sequence, seq, next, target, deadline);
          continue;
        }
        // Retrying before the previous print is through would only meet the gap again; and that
        // print succeeds only once all before it are applied, so it is the only one to wait for.
        const earlier = sequence.inFlight.get(seq - 1);
        const delay = earlier ? waitForEarlier : this.#random() * Math.min(max, initial * 2 ** gapRetry);
        if (!earlier && delay >= deadline.remainingMs()) throw error;
        await deadline.sleep(Math.min(delay, deadline.remainingMs()), earlier);
        // Out of time while waiting (timers fire up to 1 ms early): the print's own deadline error,
        // not that of an attempt sent with the 1 ms left.
        if (deadline.remainingMs() < 1) throw deadlineError(deadline.timeoutMs, error);
      }
    }
  }

  /** Whether a failed print before `seq` has its seq still to fill, or being filled. */
  #hasGapBefore(sequence: HandleSequence, seq: number): boolean {
    return this.#firstGap(sequence, seq) !== undefined;
  }

  /** The lowest seq below `seq` still to fill or being filled. */
  #firstGap(sequence: HandleSequence, seq: number): number | undefined {
    // Every print asks: no iterators while nothing failed.
    if (sequence.filling.size === 0 && sequence.unfilled.size === 0) return undefined;
    let first: number | undefined;
    for (const s of sequence.filling.keys()) if (s < seq && (first === undefined || s < first)) first = s;
    for (const s of sequence.unfilled) if (s < seq && (first === undefined || s < first)) first = s;
    return first;
  }

  /**
   * Before print `seq` goes: waits for the fills on their way below it, and
   * fills again, lowest first, the seqs whose fill failed earlier (the
   * server may be back). Throws when one stays unfilled, so that the print
   * is not sent only to meet the gap; the deadline and abort of the print
   * bound the wait.
   */
  async #repair(
    sequence: HandleSequence,
    seq: number,
    next: Caller,
    target: CallTarget,
    deadline: CallDeadline,
  ): Promise<void> {
    for (let gap = this.#firstGap(sequence, seq); gap !== undefined; gap = this.#firstGap(sequence, seq)) {
      const fill = sequence.filling.get(gap) ?? this.#fill(sequence, gap, next, target);
      const error = await within(deadline, fill);
      if (error) throw unrepairedError(gap, error);
    }
  }

  /**
   * Fills `seq` with an empty print under a fresh key, with the client's
   * default budget and no signal (the failed print's caller gave up on that
   * print, not on the handle). Resolves, never rejects: with undefined once
   * the seq is used (applied now, or already: `stale_sequence`) or the
   * handle takes no print at all, else with the error, the seq then waiting
   * for the next print's repair.
   */
  #fill(
    sequence: HandleSequence,
    seq: number,
    next: Caller,
    target: CallTarget,
  ): Promise<RpcError | undefined> {
    sequence.unfilled.delete(seq);
    const body = { handle: sequence.handle, data: '', seq };
    const fill = this.#print(sequence, seq, next, target, body, { idempotencyKey: randomUUID() }).then(
      () => undefined,
      (thrown: unknown) => {
        const error = RpcError.from(thrown);
        return error.reason === 'stale_sequence' || takesNoPrints(error) ? undefined : error;
      },
    );
    const settled = fill.then((error) => {
      sequence.filling.delete(seq);
      if (error) sequence.unfilled.add(seq);
      return error;
    });
    sequence.filling.set(seq, settled);
    return settled;
  }
}
