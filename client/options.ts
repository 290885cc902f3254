/**
 * Every client option with its default, resolved in this one place; the rest
 * of the client only ever sees the resolved form.
 */
import { allCodes, type Code, codeInfo } from '../common/codes.js';
import type { RpcError } from '../common/rpc-error.js';
import type { ServiceTable } from '../common/service-table.js';

/** Per-call options of every typed method. */
export interface CallOptions {
  /** Overall budget of this call across all its attempts, in ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Aborting it fails the call with `canceled` and stops its retries. */
  signal?: AbortSignal;
  /** Idempotency key to send as is; the client makes a fresh one per non-idempotent call otherwise. */
  idempotencyKey?: string;
}

/** Retry policy, in the shape of gRPC's service-config retryPolicy. */
export interface RetryPolicy {
  /** Most attempts per call, the first included (1 = no retries). */
  maxAttempts?: number;
  /** Upper bound of the first retry's random delay, in ms. */
  initialBackoffMs?: number;
  /** Cap on any retry's delay, in ms. */
  maxBackoffMs?: number;
  /** Growth of the delay bound per retry. */
  backoffMultiplier?: number;
  /**
   * Codes worth another attempt (the call may not have run, or the server asked to wait); a
   * body over the server's limit (resource_exhausted, reason body_too_large) is never retried.
   */
  retryableCodes?: readonly Code[];
  /** gRPC retry throttling; `false` turns it off. */
  throttle?: RetryThrottlePolicy | false;
}

/** gRPC retry throttling: a token bucket shared by all calls of one client. */
export interface RetryThrottlePolicy {
  /** Bucket size; retries stop while tokens <= maxTokens / 2. */
  maxTokens?: number;
  /** Tokens a successful call gives back (a retryable failure costs 1). */
  tokenRatio?: number;
}

/** Called when a lease the client was keeping alive is lost (expired, revoked elsewhere, or unreachable). */
export type LeaseLostListener = (leaseId: string, error: RpcError) => void;

/** Transport options shared by `createClient` and `createServiceClient`. */
export interface TransportOptions {
  /** Server origin, optionally with a path prefix (`http://127.0.0.1:8080`). With socketPath only the path counts. */
  baseUrl?: string;
  /** Unix domain socket to connect to instead of TCP. */
  socketPath?: string;
  /** Bearer token sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Default overall budget of each call across its attempts, in ms; `Infinity` for none. */
  timeoutMs?: number;
  /** Retry policy; `false` makes every call a single attempt. */
  retry?: RetryPolicy | false;
  /** Most connections kept to the server. */
  connections?: number;
}

/** Options of `createClient` (the flagship services). */
export interface ClientOptions extends TransportOptions {
  /** Keep alive the leases this client creates (default true); with false, close() still revokes them. */
  leaseKeepAlive?: boolean;
  /** Called when a kept-alive lease is lost; `client.on('leaseLost', ...)` works too. */
  onLeaseLost?: LeaseLostListener;
  /** Extra service tables (your own generated services) served by the same server. */
  services?: ServiceTable;
}

/** A retry policy with every field filled in. */
export interface ResolvedRetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly retryableCodes: ReadonlySet<Code>;
  readonly throttle: Required<RetryThrottlePolicy> | undefined;
}

/** Transport options with every field filled in. */
export interface ResolvedTransportOptions {
  readonly origin: string;
  readonly pathPrefix: string;
  readonly socketPath: string | undefined;
  readonly token: string | undefined;
  readonly timeoutMs: number;
  readonly retry: ResolvedRetryPolicy;
  readonly connections: number;
}

/** The defaults, in one place. */
export const clientDefaults = {
  baseUrl: 'http://127.0.0.1:8080',
  socketBaseUrl: 'http://localhost',
  timeoutMs: 30_000,
  connections: 64,
  /**
   * Enough to ride out a server's restart: with full jitter the nine retries'
   * delays are drawn below 0.2, 0.4, 0.8, 1.6, 3.2 and then 5 s (13 s in all
   * on average, under 3 s once in ~3 000 calls; at most 26 s, within the
   * default timeoutMs). A restart after kill -9 took 2.2-2.5 s to answer again
   * here; the earlier 5 attempts from 50 ms gave up after ~0.4 s on average,
   * and one call's failures emptied half the throttle's bucket.
   */
  retry: {
    maxAttempts: 10,
    initialBackoffMs: 200,
    maxBackoffMs: 5_000,
    backoffMultiplier: 2,
    // The codes the contract marks retryable (unavailable, resource_exhausted): the call may not have run.
    retryableCodes: allCodes.filter((code) => codeInfo[code].retryable) as readonly Code[],
  },
  // gRPC's shape with twice its bucket: one call's nine retries leave the client's retries on.
  throttle: { maxTokens: 20, tokenRatio: 0.1 },
  /**
   * Retries of a RemotePrint that overtook an earlier one of the same handle:
   * it waits for that earlier print to settle (at most `waitForEarlier`), or,
   * when the client has no such print in flight, a backoff of `initial` doubling to `max`.
   */
  sequenceGapBackoffMs: { initial: 2, max: 100, waitForEarlier: 1_000 },
  /** Keep-alive period as a fraction of the lease TTL. */
  keepAliveFraction: 1 / 3,
  /**
   * A keeper KeepAlive's budget across the caller's retries: a third of the TTL, but at least
   * `minMs`, so that it reaches a slow or just restarted server (an overdue KeepAlive used to get
   * 1 ms and never left the client), and at most `maxMs`.
   */
  keepAliveBudget: { fraction: 1 / 3, minMs: 500, maxMs: 10_000 },
  /** Bound of the delay before the first retry of a failed keeper KeepAlive; it doubles with each failure, up to the renewal period. */
  keepAliveRetryInitialMs: 200,
  /** Budget of the best-effort Revoke calls made by `close()`, in ms. */
  closeRevokeTimeoutMs: 1_000,
} as const;

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`${name} must be > 0, got ${value}`);
  return value;
}

/** Fills in a retry policy; `false` gives a single-attempt policy. */
export function resolveRetryPolicy(policy: RetryPolicy | false | undefined): ResolvedRetryPolicy {
  const d = clientDefaults.retry;
  const p = policy === false ? { maxAttempts: 1 } : (policy ?? {});
  const throttle =
    p.throttle === false
      ? undefined
      : {
          maxTokens: positive(
            'retry.throttle.maxTokens',
            p.throttle?.maxTokens ?? clientDefaults.throttle.maxTokens,
          ),
          tokenRatio: positive(
            'retry.throttle.tokenRatio',
            p.throttle?.tokenRatio ?? clientDefaults.throttle.tokenRatio,
          ),
        };
  return {
    maxAttempts: Math.floor(positive('retry.maxAttempts', p.maxAttempts ?? d.maxAttempts)),
    initialBackoffMs: positive('retry.initialBackoffMs', p.initialBackoffMs ?? d.initialBackoffMs),
    maxBackoffMs: positive('retry.maxBackoffMs', p.maxBackoffMs ?? d.maxBackoffMs),
    backoffMultiplier: positive('retry.backoffMultiplier', p.backoffMultiplier ?? d.backoffMultiplier),
    retryableCodes: new Set(p.retryableCodes ?? d.retryableCodes),
    throttle,
  };
}

/** Fills in the transport options and checks them. */
export function resolveTransportOptions(options: TransportOptions): ResolvedTransportOptions {
  const url = new URL(
    options.baseUrl ?? (options.socketPath ? clientDefaults.socketBaseUrl : clientDefaults.baseUrl),
  );
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`baseUrl must be http: or https:, got ${url.protocol}`);
  }
  return {
    origin: url.origin,
    pathPrefix: url.pathname.replace(/\/+$/, ''),
    socketPath: options.socketPath,
    token: options.token,
    timeoutMs: positive('timeoutMs', options.timeoutMs ?? clientDefaults.timeoutMs),
    retry: resolveRetryPolicy(options.retry),
    connections: Math.floor(positive('connections', options.connections ?? clientDefaults.connections)),
  };
}
