/**
 * Retries of one call: exponential backoff with full jitter (gRPC's policy
 * shape), Retry-After honoured, bounded by attempts, by the call's overall
 * deadline and by the shared throttle (which a Retry-After does not touch). Retrying is safe for every call the
 * client makes: idempotent methods by their nature, the others because they
 * carry one Idempotency-Key across attempts and the server replays.
 */
import { RpcError } from '../common/rpc-error.js';
import type { CallDeadline } from './deadline.js';
import type { ResolvedRetryPolicy } from './options.js';
import { RetryThrottle } from './retry-throttle.js';

/** How a failed attempt is treated. */
export type RetryVerdict =
  /** A failure the server may recover from: costs a throttle token. */
  | 'retry'
  /** The server asked to come back later without being unhealthy (a duplicate still running). */
  | 'wait'
  /** Final: the call ends with this error. */
  | 'fatal';

/** Runs attempts of one call until one succeeds or retrying must stop. */
export class Retrier {
  readonly #policy: ResolvedRetryPolicy;
  readonly #throttle: RetryThrottle | undefined;
  readonly #random: () => number;

  constructor(policy: ResolvedRetryPolicy, random: () => number = Math.random) {
    this.#policy = policy;
    this.#throttle = policy.throttle ? new RetryThrottle(policy.throttle) : undefined;
    this.#random = random;
  }

  /** What to do after an attempt failed with `error`. */
  classify(error: RpcError): RetryVerdict {
    // A body over the server's limit meets the same limit on every attempt (the server sends it
    // without Retry-After, as waiting does not help); any other 429, a proxy's included, is retried.
    if (error.code === 'resource_exhausted' && error.reason === 'body_too_large') return 'fatal';
    if (this.#policy.retryableCodes.has(error.code)) return 'retry';
    if (error.code === 'aborted' && error.reason === 'idempotency_key_in_use') return 'wait';
    // The server gave up on its share of the budget; worth another try only while time is left,
    // which `run` checks before waiting.
    if (error.code === 'deadline_exceeded' && error.httpStatus === 504) return 'retry';
    return 'fatal';
  }

  /** Upper bound of the n-th retry's delay (1-based), before jitter. */
  backoffBoundMs(retry: number): number {
    const p = this.#policy;
    return Math.min(p.maxBackoffMs, p.initialBackoffMs * p.backoffMultiplier ** (retry - 1));
  }

  /** The delay before the n-th retry: full jitter, but at least what Retry-After asks. */
  delayMs(retry: number, error: RpcError): number {
    const jittered = this.#random() * this.backoffBoundMs(retry);
    const asked = error.retryAfterSeconds === undefined ? 0 : error.retryAfterSeconds * 1000;
    return Math.max(jittered, asked);
  }

  /**
   * Runs `attempt` until it resolves, or a final error: a non-retryable code,
   * the last allowed attempt, an empty throttle, a delay that would outlast the
   * deadline, or the deadline / abort themselves.
   */
  async run<T>(attempt: (n: number) => Promise<T>, deadline: CallDeadline): Promise<T> {
    for (let n = 1; ; n++) {
      let error: RpcError;
      try {
        const result = await attempt(n);
        this.#throttle?.onSuccess();
        return result;
      } catch (thrown) {
        error = RpcError.from(thrown);
      }
      const stop = deadline.stopError(error);
      if (stop) throw error.code === stop.code ? error : stop;
      const verdict = this.classify(error);
      if (verdict === 'fatal') {
        this.#throttle?.onSuccess();
        throw error;
      }
      // A server that says when to come back (Retry-After > 0: rate limited, shutting down) is
      // answering, and coming back when it says is no retry storm: the throttle neither counts
      // nor stops it. Rate limited 40 calls at 5/s lost 26 to the throttle.
      const throttled = verdict === 'retry' && !((error.retryAfterSeconds ?? 0) > 0);
      if (throttled) this.#throttle?.onFailure();
      if (n >= this.#policy.maxAttempts) throw error;
      if (throttled && this.#throttle && !this.#throttle.allowsRetry()) throw error;
      const delay = this.delayMs(n, error);
      if (delay >= deadline.remainingMs()) throw error;
      await deadline.sleep(delay);
    }
  }
}
