/**
 * Numbers RemotePrint calls per handle (seq 1, 2, 3, ...) in call order, so
 * prints issued concurrently land exactly once and in that order: the server
 * applies only last+1 and answers `sequence_gap` to a print that overtook an
 * earlier one, which this interceptor retries (same key, short backoff) until
 * the gap fills or the call's deadline passes.
 */
import { randomUUID } from 'node:crypto';
import { RpcError } from '../common/rpc-error.js';
import type { Interceptor } from './caller.js';
import { CallDeadline } from './deadline.js';
import { clientDefaults } from './options.js';

interface HandleSequence {
  /** Last seq handed out. */
  last: number;
  /** Seqs whose print failed for good: if the server still expects one of them, the gap never fills. */
  readonly failed: Set<number>;
}

/** Whether an error is the server's "an earlier seq has not arrived yet". */
export function isSequenceGap(error: unknown): error is RpcError {
  return error instanceof RpcError && error.code === 'failed_precondition' && error.reason === 'sequence_gap';
}

/** Per-handle print numbering and the retries that wait for gaps to fill. */
export class PrintSequencer {
  readonly #sequences = new Map<string, HandleSequence>();
  readonly #timeoutMs: number;
  readonly #random: () => number;

  /** `timeoutMs`: budget of prints that set none (the client's default). */
  constructor(timeoutMs: number, random: () => number = Math.random) {
    this.#timeoutMs = timeoutMs;
    this.#random = random;
  }

  /** Handles with a live counter (for tests and leak checks). */
  get size(): number {
    return this.#sequences.size;
  }

  /** Hands out the next seq of a handle. */
  next(handle: string): number {
    let sequence = this.#sequences.get(handle);
    if (!sequence) {
      sequence = { last: 0, failed: new Set() };
      this.#sequences.set(handle, sequence);
    }
    sequence.last += 1;
    return sequence.last;
  }

  /** Drops a handle's counter (it was closed or its lease ended). */
  forget(handle: string): void {
    this.#sequences.delete(handle);
  }

  /** Whether the gap `error` reports can never fill: the seq the server waits for failed for good. */
  #gapIsPermanent(handle: string, error: RpcError): boolean {
    const expected = error.details.expected;
    const failed = this.#sequences.get(handle)?.failed;
    if (!failed) return true; // forgotten: the handle was closed meanwhile
    return typeof expected === 'number' && failed.has(expected);
  }

  #delayMs(gapRetry: number): number {
    const { initial, max } = clientDefaults.sequenceGapBackoffMs;
    return this.#random() * Math.min(max, initial * 2 ** gapRetry);
  }

  /** The interceptor: numbers Files.RemotePrint calls and retries them across sequence gaps. */
  readonly interceptor: Interceptor = (next) => async (target, request, options) => {
    const { service, method } = target;
    if (service.name !== 'Files') return next(target, request, options);
    if (method.name === 'RemoteClose') {
      const result = await next(target, request, options);
      this.forget((request as { handle: string }).handle);
      return result;
    }
    const print = request as { handle: string; seq?: number };
    if (method.name !== 'RemotePrint' || print.seq !== undefined) return next(target, request, options);

    const seq = this.next(print.handle);
    const deadline = new CallDeadline(options.timeoutMs ?? this.#timeoutMs, options.signal);
    const attemptOptions = { ...options, idempotencyKey: options.idempotencyKey ?? randomUUID() };
    const body = { ...print, seq };
    for (let gapRetry = 1; ; gapRetry++) {
      try {
        return await next(target, body, { ...attemptOptions, timeoutMs: deadline.remainingMs() });
      } catch (error) {
        if (!isSequenceGap(error)) {
          this.#sequences.get(print.handle)?.failed.add(seq);
          throw error;
        }
        if (this.#gapIsPermanent(print.handle, error)) throw error;
        const delay = this.#delayMs(gapRetry);
        if (delay >= deadline.remainingMs()) throw error;
        await deadline.sleep(delay);
      }
    }
  };
}
