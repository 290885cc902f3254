/**
 * gRPC retry throttling (A6): a token bucket shared by every call of one
 * client. A retryable failure costs a token, a reply refunds `tokenRatio`;
 * while the bucket is at or below half, calls are not retried, so a dead or
 * overloaded server sees first attempts only instead of a retry storm.
 */
import type { RetryThrottlePolicy } from './options.js';

/** The token bucket of gRPC retry throttling. */
export class RetryThrottle {
  readonly #maxTokens: number;
  readonly #tokenRatio: number;
  #tokens: number;

  constructor(policy: Required<RetryThrottlePolicy>) {
    this.#maxTokens = policy.maxTokens;
    this.#tokenRatio = policy.tokenRatio;
    this.#tokens = policy.maxTokens;
  }

  /** Tokens in the bucket now. */
  get tokens(): number {
    return this.#tokens;
  }

  /** Whether a retry may be made now. */
  allowsRetry(): boolean {
    return this.#tokens > this.#maxTokens / 2;
  }

  /** A retryable failure (the server looked unhealthy). */
  onFailure(): void {
    this.#tokens = Math.max(0, this.#tokens - 1);
  }

  /** A reply that is not a retryable failure (the server is answering). */
  onSuccess(): void {
    this.#tokens = Math.min(this.#maxTokens, this.#tokens + this.#tokenRatio);
  }
}
