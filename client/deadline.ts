/**
 * One call's budget across all of its attempts, and the caller's AbortSignal:
 * each attempt gets a signal that fires on whichever comes first, and every
 * wait between attempts ends early on abort.
 */
import { EventEmitter } from 'node:events';
import type { RpcError } from '../common/rpc-error.js';
import { canceledError, deadlineError } from './errors.js';

/**
 * What undici watches to abort one attempt: an EventEmitter with a `reason`,
 * which undici takes as a request's signal (documented beside AbortSignal),
 * rather than an AbortController. On Node 20 every AbortSignal outlives two
 * scavenges and is promoted to the old generation, listeners or not: a loop
 * making one AbortController per turn promoted 356 bytes a turn against 18
 * without; in a sequential typed client this took ~800 promoted bytes a call
 * (2.5–3 ms scavenges every ~500 calls) down to 437 (--trace-gc-nvp; object
 * spreads were most of the rest, see sequencer.ts).
 */
export class AttemptAbort extends EventEmitter {
  /** Why the attempt was aborted (undici fails the request with it); undefined until then. */
  reason: unknown = undefined;
  #aborted = false;

  /** Whether it has fired (undici checks this when a request starts, as with an AbortSignal). */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Aborts the attempt (the first call only). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/** The time source of deadlines (monotonic). */
export const monotonicNow = (): number => performance.now();

/** The overall deadline and abort signal of one call. */
export class CallDeadline {
  readonly timeoutMs: number;
  readonly #at: number;
  readonly #signal: AbortSignal | undefined;

  constructor(timeoutMs: number, signal?: AbortSignal, now = monotonicNow()) {
    // NaN would be a call without a deadline and without Rpc-Timeout-Ms (0 or less: already past).
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs))
      throw new RangeError(`timeoutMs must be a number of ms, got ${String(timeoutMs)}`);
    this.timeoutMs = timeoutMs;
    this.#at = now + timeoutMs;
    this.#signal = signal;
  }

  /** Ms left, never below 0; Infinity without a deadline. */
  remainingMs(now = monotonicNow()): number {
    return Math.max(0, this.#at - now);
  }

  /** The error to end the call with now (canceled or deadline_exceeded), or undefined while it may go on. */
  stopError(cause?: unknown): RpcError | undefined {
    if (this.#signal?.aborted) return canceledError(this.#signal.reason);
    if (this.remainingMs() <= 0) return deadlineError(this.timeoutMs, cause);
    return undefined;
  }

  /** A signal for one attempt that fires on abort or at the deadline; call `dispose` when the attempt ends. */
  attemptSignal(): { signal: AttemptAbort; dispose: () => void } {
    const signal = new AttemptAbort();
    const onAbort = () => signal.abort(this.#signal?.reason);
    this.#signal?.addEventListener('abort', onAbort, { once: true });
    const remaining = this.remainingMs();
    const timer = Number.isFinite(remaining)
      ? setTimeout(() => signal.abort(deadlineError(this.timeoutMs)), remaining)
      : undefined;
    timer?.unref();
    return {
      signal,
      dispose: () => {
        if (timer) clearTimeout(timer);
        this.#signal?.removeEventListener('abort', onAbort);
      },
    };
  }

  /**
   * Waits `ms`, or less once `until` settles (whichever comes first); an abort
   * rejects with `canceled`.
   */
  sleep(ms: number, until?: Promise<unknown>): Promise<void> {
    const signal = this.#signal;
    if (signal?.aborted) return Promise.reject(canceledError(signal.reason));
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (error?: RpcError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish(canceledError(signal?.reason));
      const timer = setTimeout(() => finish(), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      until?.then(
        () => finish(),
        () => finish(),
      );
    });
  }
}
