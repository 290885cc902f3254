/**
 * Keeps alive the leases this client created (by Leases.Grant, or by a
 * RemoteOpen without leaseId): one KeepAlive per lease, not per handle, every
 * TTL/3 with jitter, on unref'd timers so it never holds the process open.
 * It stops for a lease when the user revokes it, when the last handle of a
 * lease that RemoteOpen made for that handle alone is closed, when the server
 * says the lease is gone (reported to `onLost`), and on `close()`, which also
 * revokes what is still held, best effort.
 */
import { RpcError } from '../common/rpc-error.js';
import type { MethodDescriptor, ServiceDescriptor } from '../common/service-table.js';
import type { Caller, CallTarget, Interceptor } from './caller.js';
import { monotonicNow } from './deadline.js';
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
  /** Local (monotonic) time the lease runs out unless renewed. */
  expiresAt: number;
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

/** Errors by which the server says a lease (or a handle's lease) no longer exists. */
export function isLeaseGone(error: RpcError): boolean {
  if (error.code === 'not_found') return true;
  return (
    error.code === 'failed_precondition' &&
    (error.reason === 'lease_expired' || error.reason === 'lease_revoked')
  );
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

  async #renew(tracked: TrackedLease): Promise<void> {
    tracked.timer = undefined;
    const target: CallTarget = { service: this.#parts.leases, method: this.#keepAliveMethod };
    const budget = Math.max(1, tracked.expiresAt - monotonicNow());
    try {
      const response = (await this.#parts.call(
        target,
        { leaseId: tracked.leaseId },
        { timeoutMs: budget },
      )) as {
        lease?: unknown;
      };
      if (this.#leases.get(tracked.leaseId) !== tracked) return;
      if (isWireLease(response.lease)) tracked.ttlMs = response.lease.ttlMs;
      tracked.expiresAt = monotonicNow() + tracked.ttlMs;
      this.#schedule(tracked, this.#period(tracked.ttlMs));
    } catch (thrown) {
      const error = RpcError.from(thrown);
      if (this.#closed || this.#leases.get(tracked.leaseId) !== tracked) return;
      const left = tracked.expiresAt - monotonicNow();
      if (isLeaseGone(error) || left <= 0) {
        this.#lost(tracked, error);
        return;
      }
      // The server did not answer in time: try again while the lease may still be alive.
      this.#schedule(tracked, Math.min(this.#period(tracked.ttlMs), left / 2));
    }
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
      if (
        thrown instanceof RpcError &&
        tracked &&
        thrown.code === 'failed_precondition' &&
        isLeaseGone(thrown)
      ) {
        this.#lost(tracked, thrown);
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
      if (tracked) {
        tracked.ttlMs = lease.ttlMs;
        tracked.expiresAt = monotonicNow() + lease.ttlMs;
        this.#schedule(tracked, this.#period(lease.ttlMs));
      }
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
