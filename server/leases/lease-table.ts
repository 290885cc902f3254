import { randomBytes } from 'node:crypto';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { ExpiryHeap } from './expiry-heap.js';
import { Tombstones } from './tombstones.js';

/** A live lease. Handles attach to it by id. */
export interface Lease {
  readonly id: string;
  readonly principal: string;
  readonly ttlMs: number;
  expiresAt: number;
  /** Ids of the handles living under this lease. */
  readonly handles: Set<string>;
  /** False once expired or revoked. */
  alive: boolean;
  /** Granted by RemoteOpen for one handle alone: it ends when that handle closes. */
  readonly solo: boolean;
}

/** The wire form of a lease (`Lease` in the schemas). */
export interface LeaseView {
  leaseId: string;
  ttlMs: number;
  expiresAt: string;
}

/** Options of the lease table. */
export interface LeaseTableOptions {
  clock: Clock;
  defaultTtlMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  maxPerPrincipal: number;
  /** Most tombstones kept (expired/revoked ids answered with lease_expired). */
  maxTombstones?: number;
  /** Called once for each lease that ends (expiry or revocation), before it is forgotten. */
  onEnd: (lease: Lease, reason: 'lease_expired' | 'lease_revoked') => void;
}

/** Most leases one sweep slice ends before yielding the event loop. */
const sweepSlice = 2_000;

/** Unguessable id: 128 random bits, base64url, with a kind prefix. */
export function newId(prefix: string): string {
  return prefix + randomBytes(16).toString('base64url');
}

/**
 * Leases by id, their expiry scheduler (one min-heap and one timer, not a
 * timer per lease) and the tombstones of ended leases.
 */
export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly heap = new ExpiryHeap<Lease>();
  private readonly perPrincipal = new Map<string, number>();
  readonly tombstones: Tombstones;
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  /** Counters for metrics. */
  readonly counts = { expired: 0, revoked: 0 };

  constructor(private readonly options: LeaseTableOptions) {
    this.tombstones = new Tombstones(options.maxTombstones ?? 1_000_000);
  }

  get size(): number {
    return this.leases.size;
  }

  /** Clamps a requested TTL to [min, max]; undefined takes the default. */
  clampTtl(ttlMs: number | undefined): number {
    const { defaultTtlMs, minTtlMs, maxTtlMs } = this.options;
    return Math.min(maxTtlMs, Math.max(minTtlMs, ttlMs ?? defaultTtlMs));
  }

  /** Grants a new lease to a principal. */
  grant(principal: string, ttlMs?: number, solo = false): Lease {
    const count = this.perPrincipal.get(principal) ?? 0;
    if (count >= this.options.maxPerPrincipal) {
      throw new RpcError({
        code: 'resource_exhausted',
        message: `too many leases (limit ${this.options.maxPerPrincipal})`,
        details: { reason: 'too_many_leases' },
        retryAfterSeconds: 1,
      });
    }
    const ttl = this.clampTtl(ttlMs);
    const lease: Lease = {
      id: newId('l_'),
      principal,
      ttlMs: ttl,
      expiresAt: this.options.clock.now() + ttl,
      handles: new Set(),
      alive: true,
      solo,
    };
    this.leases.set(lease.id, lease);
    this.perPrincipal.set(principal, count + 1);
    this.heap.push(lease.expiresAt, lease);
    return lease;
  }

  /** The caller's live lease, or the error the contract prescribes (lease_expired, or not_found). */
  get(principal: string, id: string, field = 'leaseId'): Lease {
    const lease = this.leases.get(id);
    if (lease !== undefined && lease.principal === principal) {
      // The timer may lag the clock a little: a lease past its time is already dead.
      if (lease.expiresAt > this.options.clock.now()) return lease;
      this.end(lease, 'lease_expired');
    }
    throw this.goneError(principal, id, 'lease', field);
  }

  /** The error for an id that names nothing live: lease_expired/revoked from a tombstone, else not_found. */
  goneError(principal: string, id: string, kind: 'lease' | 'handle', field: string): RpcError {
    const t = this.tombstones.get(id, this.options.clock.now());
    if (t !== undefined && t.principal === principal) {
      return new RpcError({
        code: 'failed_precondition',
        message: `${kind} ${t.reason === 'lease_expired' ? 'lease expired' : 'lease was revoked'}`,
        details: { reason: t.reason, field },
      });
    }
    return new RpcError({ code: 'not_found', message: `no such ${kind}`, details: { reason: `${kind}_not_found`, field } });
  }

  /** Renews a lease for another full TTL (KeepAlive, and every successful call on one of its handles). */
  renew(lease: Lease): void {
    lease.expiresAt = this.options.clock.now() + lease.ttlMs;
  }

  /** Milliseconds the lease has left. */
  remainingMs(lease: Lease): number {
    return Math.max(0, lease.expiresAt - this.options.clock.now());
  }

  /** Ends a solo lease whose handle was closed (not counted as a revocation). */
  discard(lease: Lease): void {
    this.end(lease, 'lease_revoked', false);
  }

  /** Ends a lease now (Revoke). */
  revoke(lease: Lease): void {
    this.end(lease, 'lease_revoked');
  }

  /** The wire form of a lease. */
  view(lease: Lease): LeaseView {
    return { leaseId: lease.id, ttlMs: lease.ttlMs, expiresAt: new Date(lease.expiresAt).toISOString() };
  }

  /** Ends every lease whose time has come, up to `limit` of them; returns how many ended. */
  sweep(now = this.options.clock.now(), limit = Number.POSITIVE_INFINITY): number {
    let ended = 0;
    while (ended < limit) {
      const at = this.heap.peekAt();
      if (at === undefined || at > now) break;
      const entry = this.heap.pop();
      if (entry === undefined) break;
      const lease = entry.item;
      if (!lease.alive) continue;
      if (lease.expiresAt > now) {
        this.heap.push(lease.expiresAt, lease);
        continue;
      }
      this.end(lease, 'lease_expired');
      ended++;
    }
    this.tombstones.prune(now);
    return ended;
  }

  /** Starts the expiry timer: it checks every `intervalMs` and sweeps in slices so the event loop keeps moving. */
  start(intervalMs = 100): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweepInSlices(), intervalMs);
    this.timer.unref();
  }

  private sweepInSlices(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    const step = (): void => {
      const ended = this.sweep(this.options.clock.now(), sweepSlice);
      if (ended === sweepSlice) setImmediate(step);
      else this.sweeping = false;
    };
    step();
  }

  /** Stops the timer and ends every lease (shutdown). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const lease of [...this.leases.values()]) this.end(lease, 'lease_revoked');
    this.heap.clear();
  }

  /** The one path by which a lease ends. */
  private end(lease: Lease, reason: 'lease_expired' | 'lease_revoked', counted = true): void {
    if (!lease.alive) return;
    lease.alive = false;
    this.leases.delete(lease.id);
    const left = (this.perPrincipal.get(lease.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(lease.principal);
    else this.perPrincipal.set(lease.principal, left);
    if (counted && reason === 'lease_expired') this.counts.expired++;
    else if (counted) this.counts.revoked++;
    const until = this.options.clock.now() + 10 * lease.ttlMs;
    this.tombstones.add(lease.id, { principal: lease.principal, reason, until });
    this.options.onEnd(lease, reason);
  }
}
