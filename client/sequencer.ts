/**
 * Numbers RemotePrint calls per handle (seq 1, 2, 3, ...) in call order, so
 * prints issued concurrently land exactly once and in that order: the server
 * applies only last+1 and answers `sequence_gap` to a print that overtook an
 * earlier one. Such a print is retried (same key, so never applied twice) as
 * soon as the print the server is waiting for settles, or after a short
 * backoff when that print is not this client's to watch, until the gap fills
 * or the call's deadline passes.
 */
import { randomUUID } from 'node:crypto';
import { RpcError } from '../common/rpc-error.js';
import type { Caller, CallTarget, Interceptor } from './caller.js';
import { CallDeadline } from './deadline.js';
import { type CallOptions, clientDefaults } from './options.js';

interface HandleSequence {
  /** Last seq handed out. */
  last: number;
  /** Prints on their way, by seq: each settles when its call ends. */
  readonly inFlight: Map<number, Promise<unknown>>;
  /** Seqs whose print failed for good: if the server still expects one of them, the gap never fills. */
  readonly failed: Set<number>;
}

/** Whether an error is the server's "an earlier seq has not arrived yet". */
export function isSequenceGap(error: unknown): error is RpcError {
  return error instanceof RpcError && error.code === 'failed_precondition' && error.reason === 'sequence_gap';
}

/** Errors after which a closed handle's counter is dropped: the handle is gone, or was never there. */
function handleIsGone(error: unknown): boolean {
  return (
    !(error instanceof RpcError) || !['unavailable', 'deadline_exceeded', 'canceled'].includes(error.code)
  );
}

/**
 * Per-handle print numbering and the retries that wait for gaps to fill.
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

  /** `timeoutMs`: budget of prints that set none (the client's default). */
  constructor(timeoutMs: number, random: () => number = Math.random) {
    this.#timeoutMs = timeoutMs;
    this.#random = random;
  }

  #sequence(handle: string): HandleSequence {
    let sequence = this.#sequences.get(handle);
    if (!sequence) {
      sequence = { last: 0, inFlight: new Map(), failed: new Set() };
      this.#sequences.set(handle, sequence);
    }
    return sequence;
  }

  /** Drops a handle's counter (it was closed or its lease ended). */
  forget(handle: string): void {
    this.#sequences.delete(handle);
  }

  /** The interceptor: numbers Files.RemotePrint calls and retries them across sequence gaps. */
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
      return await call;
    } catch (error) {
      sequence.failed.add(seq);
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
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    const { initial, max, waitForEarlier } = clientDefaults.sequenceGapBackoffMs;
    for (let gapRetry = 1; ; gapRetry++) {
      try {
        const attempt: CallOptions = {
          signal: options.signal,
          idempotencyKey,
          timeoutMs: deadline.remainingMs(),
        };
        return await next(target, body, attempt);
      } catch (error) {
        if (!isSequenceGap(error)) throw error;
        // The handle was forgotten (closed, lease lost), or the print the server waits for failed
        // for good: the gap never fills.
        if (this.#sequences.get((body as { handle: string }).handle) !== sequence) throw error;
        const expected = error.details.expected;
        if (typeof expected === 'number' && sequence.failed.has(expected)) throw error;
        // Retrying before the previous print is through would only meet the gap again; and that
        // print succeeds only once all before it are applied, so it is the only one to wait for.
        const earlier = sequence.inFlight.get(seq - 1);
        const delay = earlier ? waitForEarlier : this.#random() * Math.min(max, initial * 2 ** gapRetry);
        if (!earlier && delay >= deadline.remainingMs()) throw error;
        await deadline.sleep(Math.min(delay, deadline.remainingMs()), earlier);
      }
    }
  }
}
