/**
 * Keeps alive the leases this client created (by Leases.Grant, or by a
 * RemoteOpen without leaseId): one KeepAlive per lease, not per handle, every
 * TTL/3 with jitter, on unref'd timers so it never holds the process open.
 * It stops for a lease when the user revokes it, when the last handle of a
 * lease that RemoteOpen made for that handle alone is closed, when the server
 * says the lease is gone (reported to `onLost` with the server's error), and
 * on `close()`, which also revokes what is still held, best effort.
 *
 * The client's own estimate of the expiry never ends a lease: a server restarted
 * from its state directory brings leases back with a grace of one TTL from
 * the restart, so a lease past its local expiry may well be alive. Every
 * KeepAlive goes to the server with a real budget, failed ones are retried
 * with backoff, and a lease the server cannot be reached about is given up
 * (`unavailable`, reason `keep_alive_failed`, the last error as cause) only
 * once no server could still hold it: when a KeepAlive sent one TTL past its
 * local expiry and one TTL past the first failure fails too (the second span
 * matters after the process was paused).
 */
import { RpcError } from '../common/rpc-error.js';
import type { MethodDescriptor, ServiceDescriptor } from '../common/service-table.js';
import type { Caller, CallTarget, Interceptor } from './caller.js';
import { monotonicNow } from './deadline.js';
import { isLeaseGone } from './errors.js';
import { clientDefaults } from './options.js';

/** The lease object of the wire contract. */
interface WireLease {
  leaseId: string;
  ttlMs: number;
  expiresAt: string;
}

interface TrackedLease {
  readonly leaseId: string;
  ttlMs: number;
  /** Local (monotonic) time by which the server ends the lease unless it is renewed (or the server restarts). */
  expiresAt: number;
  /** Local time the first of the KeepAlives failing in a row failed; undefined while they succeed. */
  failingSince: number | undefined;
  /** KeepAlives failed in a row (sets the backoff). */
  failures: number;
  /** A keeper KeepAlive is in flight. */
  renewing: boolean;
  /** Handles opened under it by this client. */
  readonly handles: Set<string>;
  /** Made by RemoteOpen for one handle: it ends with its last handle. */
  readonly handleOnly: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** What the keeper needs from the client. */
export interface LeaseKeeperParts {
  /** The caller KeepAlive and Revoke go through (retries included, no interceptors). */
  readonly call: Caller;
  /** The Leases service descriptor (for KeepAlive and Revoke). */
  readonly leases: ServiceDescriptor;
  /** Send KeepAlives (false: only track, so that close() still revokes). */
  readonly keepAlive: boolean;
  /** Told when a lease is lost, with the handles it took down. */
  readonly onLost: (leaseId: string, error: RpcError) => void;
  /** Told which handles ended with a lease (lost, or revoked by the user), so per-handle state can go. */
  readonly onHandlesEnded?: (handles: readonly string[]) => void;
  readonly random?: () => number;
}

/** The error of a lease given up because no KeepAlive got through for longer than any server could hold it. */
function keepAliveFailedError(tracked: TrackedLease, failingForMs: number, cause: RpcError): RpcError {
  return new RpcError({
    code: 'unavailable',
    reason: 'keep_alive_failed',
    message:
      `gave up lease ${tracked.leaseId}: its KeepAlives failed for ${Math.round(failingForMs)} ms, ` +
      `past the time any server could still hold it (one TTL, ${tracked.ttlMs} ms, after its expiry ` +
      `or after a restart); last error: ${cause.message}`,
    cause,
  });
}

function isWireLease(value: unknown): value is WireLease {
  const v = value as Partial<WireLease> | null;
  return typeof v?.leaseId === 'string' && typeof v.ttlMs === 'number';
}

/** Tracks this client's leases and renews them. */
export class LeaseKeeper {
  readonly #leases = new Map<string, TrackedLease>();
  readonly #handleLease = new Map<string, string>();
  readonly #parts: LeaseKeeperParts;
  readonly #random: () => number;
  readonly #keepAliveMethod: MethodDescriptor;
  readonly #revokeMethod: MethodDescriptor;
  #closed = false;

  constructor(parts: LeaseKeeperParts) {
    this.#parts = parts;
    this.#random = parts.random ?? Math.random;
    const { KeepAlive, Revoke } = parts.leases.methods;
    if (!KeepAlive || !Revoke) throw new TypeError('the Leases service has no KeepAlive or Revoke method');
    this.#keepAliveMethod = KeepAlive;
    this.#revokeMethod = Revoke;
  }

  /** Ids of the leases being tracked now. */
  get leaseIds(): readonly string[] {
    return [...this.#leases.keys()];
  }

  /** Starts tracking a lease (a handle's own, or a shared one from Grant). */
  track(lease: WireLease, handleOnly: boolean, handle?: string): void {
    if (this.#closed) return;
    let tracked = this.#leases.get(lease.leaseId);
    if (!tracked) {
      tracked = {
        leaseId: lease.leaseId,
        ttlMs: lease.ttlMs,
        expiresAt: monotonicNow() + lease.ttlMs,
        failingSince: undefined,
        failures: 0,
        renewing: false,
        handles: new Set(),
        handleOnly,
        timer: undefined,
      };
      this.#leases.set(lease.leaseId, tracked);
      this.#schedule(tracked, this.#period(tracked.ttlMs));
    }
    if (handle !== undefined) {
      tracked.handles.add(handle);
      this.#handleLease.set(handle, lease.leaseId);
    }
  }

  /** Stops tracking a lease (no event: the caller knows). */
  untrack(leaseId: string): boolean {
    const tracked = this.#leases.get(leaseId);
    if (!tracked) return false;
    clearTimeout(tracked.timer);
    this.#leases.delete(leaseId);
    for (const handle of tracked.handles) this.#handleLease.delete(handle);
    if (tracked.handles.size > 0) this.#parts.onHandlesEnded?.([...tracked.handles]);
    return true;
  }

  /** A handle was closed: a lease made for it alone stops being kept alive with its last handle. */
  handleClosed(handle: string): void {
    const leaseId = this.#handleLease.get(handle);
    if (leaseId === undefined) return;
    this.#handleLease.delete(handle);
    const tracked = this.#leases.get(leaseId);
    tracked?.handles.delete(handle);
    if (tracked?.handleOnly && tracked.handles.size === 0) this.untrack(leaseId);
  }

  /** The KeepAlive period: TTL/3, shortened by up to 20 % of jitter so renewals of many clients spread. */
  #period(ttlMs: number): number {
    return ttlMs * clientDefaults.keepAliveFraction * (1 - 0.2 * this.#random());
  }

  #schedule(tracked: TrackedLease, delayMs: number): void {
    if (!this.#parts.keepAlive || this.#closed) return;
    clearTimeout(tracked.timer);
    tracked.timer = setTimeout(() => void this.#renew(tracked), Math.max(1, delayMs));
    tracked.timer.unref();
  }

  #lost(tracked: TrackedLease, error: RpcError): void {
    if (this.#leases.get(tracked.leaseId) !== tracked) return;
    this.untrack(tracked.leaseId);
    this.#parts.onLost(tracked.leaseId, error);
  }

  /** The budget of a keeper KeepAlive (see clientDefaults.keepAliveBudget). */
  #budget(ttlMs: number): number {
    const { fraction, minMs, maxMs } = clientDefaults.keepAliveBudget;
    return Math.min(maxMs, Math.max(minMs, ttlMs * fraction));
  }

  /**
   * The delay before the next try after `failures` failed KeepAlives in a row: between half and
   * all of a bound that doubles from clientDefaults.keepAliveRetryInitialMs up to the renewal period.
   */
  #retryDelay(tracked: TrackedLease): number {
    const bound = Math.min(
      tracked.ttlMs * clientDefaults.keepAliveFraction,
      clientDefaults.keepAliveRetryInitialMs * 2 ** Math.min(tracked.failures - 1, 30),
    );
    return bound * (0.5 + 0.5 * this.#random());
  }

  async #renew(tracked: TrackedLease): Promise<void> {
    tracked.timer = undefined;
    // One keeper KeepAlive per lease at a time (a manual KeepAlive may have scheduled another):
    // the one in flight reschedules.
    if (tracked.renewing) return;
    tracked.renewing = true;
    const target: CallTarget = { service: this.#parts.leases, method: this.#keepAliveMethod };
    const sentAt = monotonicNow();
    let response: { lease?: unknown };
    try {
      response = (await this.#parts.call(
        target,
        { leaseId: tracked.leaseId },
        { timeoutMs: this.#budget(tracked.ttlMs) },
      )) as { lease?: unknown };
    } catch (thrown) {
      tracked.renewing = false;
      this.#renewFailed(tracked, RpcError.from(thrown), sentAt);
      return;
    }
    tracked.renewing = false;
    if (this.#leases.get(tracked.leaseId) !== tracked) return;
    this.#renewed(tracked, response.lease);
  }

  /** The server renewed the lease: the next renewal is due a period from now. */
  #renewed(tracked: TrackedLease, lease: unknown): void {
    if (isWireLease(lease)) tracked.ttlMs = lease.ttlMs;
    tracked.expiresAt = monotonicNow() + tracked.ttlMs;
    tracked.failingSince = undefined;
    tracked.failures = 0;
    this.#schedule(tracked, this.#period(tracked.ttlMs));
  }

  /**
   * A KeepAlive failed. The lease is lost if the server says it is gone; otherwise the server
   * may still hold it (slow, unreachable for now, or restarted and holding it for one more TTL),
   * so the keeper tries again with backoff. It gives up only when a KeepAlive sent one TTL past
   * both the lease's local expiry and the first failure fails too: counted from the first
   * failure, not from the send, so that a process paused with a KeepAlive in flight asks again.
   */
  #renewFailed(tracked: TrackedLease, error: RpcError, sentAt: number): void {
    if (this.#closed || this.#leases.get(tracked.leaseId) !== tracked) return;
    if (isLeaseGone(error)) {
      this.#lost(tracked, error);
      return;
    }
    const now = monotonicNow();
    tracked.failingSince ??= now;
    tracked.failures++;
    const giveUpAt = Math.max(tracked.expiresAt, tracked.failingSince) + tracked.ttlMs;
    if (sentAt >= giveUpAt) {
      this.#lost(tracked, keepAliveFailedError(tracked, now - tracked.failingSince, error));
      return;
    }
    // The last try goes out at the give-up time.
    this.#schedule(tracked, Math.min(this.#retryDelay(tracked), giveUpAt - now));
  }

  /** Learns from a call's outcome: leases made by RemoteOpen and Grant, closes, revokes, lost handles. */
  readonly interceptor: Interceptor = (next) => async (target, request, options) => {
    const { service, method } = target;
    if (service.name === this.#parts.leases.name && method.name === this.#revokeMethod.name) {
      this.untrack((request as { leaseId: string }).leaseId);
      return next(target, request, options);
    }
    const handle = (request as { handle?: unknown }).handle;
    let response: unknown;
    try {
      response = await next(target, request, options);
    } catch (thrown) {
      const leaseId = typeof handle === 'string' ? this.#handleLease.get(handle) : undefined;
      const tracked = leaseId === undefined ? undefined : this.#leases.get(leaseId);
      // The user's own KeepAlive or TimeToLive of a kept lease hears it too when the server says it is gone.
      const asked =
        service.name === this.#parts.leases.name
          ? this.#leases.get((request as { leaseId?: string }).leaseId as string)
          : undefined;
      if (
        thrown instanceof RpcError &&
        tracked &&
        thrown.code === 'failed_precondition' &&
        isLeaseGone(thrown)
      ) {
        this.#lost(tracked, thrown);
      } else if (thrown instanceof RpcError && asked && isLeaseGone(thrown)) {
        this.#lost(asked, thrown);
      } else if (thrown instanceof RpcError && method.name === 'RemoteClose' && thrown.code === 'not_found') {
        this.handleClosed(handle as string);
      }
      throw thrown;
    }
    const lease = (response as { lease?: unknown }).lease;
    if (service.name === 'Files' && method.name === 'RemoteOpen' && isWireLease(lease)) {
      const handleId = (response as { handle: string }).handle;
      const joined = (request as { leaseId?: string }).leaseId;
      if (joined === undefined) this.track(lease, true, handleId);
      else if (this.#leases.has(joined)) this.track(lease, false, handleId);
    } else if (service.name === 'Files' && method.name === 'RemoteClose' && typeof handle === 'string') {
      this.handleClosed(handle);
    } else if (service.name === this.#parts.leases.name && method.name === 'Grant' && isWireLease(lease)) {
      this.track(lease, false);
    } else if (
      service.name === this.#parts.leases.name &&
      method.name === this.#keepAliveMethod.name &&
      isWireLease(lease)
    ) {
      // The user renewed it by hand: the next renewal is due a period from now.
      const tracked = this.#leases.get(lease.leaseId);
      if (tracked) this.#renewed(tracked, lease);
    }
    return response;
  };

  /** Stops every timer and revokes the leases still held (best effort, short budget). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const held = [...this.#leases.values()];
    for (const tracked of held) this.untrack(tracked.leaseId);
    const target: CallTarget = { service: this.#parts.leases, method: this.#revokeMethod };
    await Promise.allSettled(
      held.map((tracked) =>
        this.#parts.call(
          target,
          { leaseId: tracked.leaseId },
          { timeoutMs: clientDefaults.closeRevokeTimeoutMs },
        ),
      ),
    );
  }
}
