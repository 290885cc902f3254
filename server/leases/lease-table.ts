import { performance } from 'node:perf_hooks';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { ExpiryHeap } from './expiry-heap.js';
import { newId } from './ids.js';
import { Lease } from './lease.js';
import { type Tombstone, Tombstones } from './tombstones.js';

export { newId } from './ids.js';
export { Lease, type LeaseMember } from './lease.js';

/** The wire form of a lease (`Lease` in the schemas). */
export interface LeaseView {
  leaseId: string;
  ttlMs: number;
  expiresAt: string;
}

/** Why a lease ended, as the wire says it. */
export type EndReason = Tombstone['reason'];

/** Options of the lease table. */
export interface LeaseTableOptions {
  clock: Clock;
  defaultTtlMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  maxPerPrincipal: number;
  /** Most tombstones kept (ids of ended leases and their handles, answered with lease_expired / lease_revoked). */
  maxTombstones?: number;
  /**
   * Closes the handles of an ended lease (`lease.ended` says why) until `deadline`
   * (a performance.now() time); returns true once none is left.
   */
  closeMembers: (lease: Lease, deadline: number) => boolean;
  /** Longest run of one sweep slice before the event loop gets a turn, in ms. */
  sliceMs?: number;
}

/** A lease whose handle was closed by RemoteClose ends quietly: no tombstone, not counted. */
const discarded: Tombstone = Object.freeze({ principal: '', reason: 'lease_revoked', until: 0 });

/** How often the time budget is checked, in steps (performance.now() is cheap, not free). */
const checkEvery = 16;

/**
 * Leases by id, their expiry scheduler (one min-heap swept by one timer, not
 * a timer per lease) and the tombstones of ended leases. Expiry runs in
 * time-budgeted slices, so that 100 000 leases ending together do not stall
 * the event loop: a slice ends leases and closes their handles for at most
 * `sliceMs`, then yields with setImmediate until nothing due is left.
 */
export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly heap = new ExpiryHeap<Lease>();
  private readonly perPrincipal = new Map<string, number>();
  /** Ended leases that still have handles to close (a slice ran out of time), oldest first. */
  private closing: Lease[] = [];
  private closingHead = 0;
  readonly tombstones: Tombstones;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private readonly sliceMs: number;
  /** Counters for metrics. */
  readonly counts = { expired: 0, revoked: 0 };

  constructor(private readonly options: LeaseTableOptions) {
    this.tombstones = new Tombstones(options.maxTombstones ?? 1_000_000);
    this.sliceMs = options.sliceMs ?? 5;
  }

  /** Live leases. */
  get size(): number {
    return this.leases.size;
  }

  /** Clamps a requested TTL to [min, max]; undefined takes the default. */
  clampTtl(ttlMs: number | undefined): number {
    const { defaultTtlMs, minTtlMs, maxTtlMs } = this.options;
    return Math.min(maxTtlMs, Math.max(minTtlMs, ttlMs ?? defaultTtlMs));
  }

  /** Grants a new lease to a principal (`solo`: made by RemoteOpen for one handle). */
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
    const lease = new Lease(newId('l_'), principal, ttl, this.options.clock.now() + ttl, solo);
    this.leases.set(lease.id, lease);
    this.perPrincipal.set(principal, count + 1);
    this.heap.push(lease, lease.expiresAt);
    return lease;
  }

  /** The caller's live lease, or the error the contract prescribes (lease_expired / lease_revoked, or not_found). */
  get(principal: string, id: string, field = 'leaseId'): Lease {
    const lease = this.leases.get(id);
    if (lease !== undefined && lease.principal === principal && !this.expireIfDue(lease)) return lease;
    throw this.goneError(principal, id, 'lease', field);
  }

  /** Ends the lease now if its time has come but no sweep has got to it yet; true if it has ended. */
  expireIfDue(lease: Lease): boolean {
    if (lease.ended !== undefined) return true;
    if (lease.expiresAt > this.options.clock.now()) return false;
    this.end(lease, 'lease_expired');
    this.closeSoon();
    return true;
  }

  /** The error for an id that names nothing live: lease_expired/revoked from a tombstone, else not_found. */
  goneError(principal: string, id: string, kind: 'lease' | 'handle', field: string): RpcError {
    const t = this.tombstones.get(id, this.options.clock.now());
    if (t !== undefined && t.principal === principal) return endedError(t, kind, field);
    return new RpcError({
      code: 'not_found',
      message: `no such ${kind}`,
      details: { reason: `${kind}_not_found`, field },
    });
  }

  /** The error for a handle whose lease has ended but which is not closed yet. */
  endedError(lease: Lease, field: string): RpcError {
    return endedError(lease.ended ?? discarded, 'handle', field);
  }

  /** Renews a lease for another full TTL (KeepAlive, and every successful call on one of its handles). */
  renew(lease: Lease): void {
    lease.expiresAt = this.options.clock.now() + lease.ttlMs;
  }

  /** Milliseconds the lease has left. */
  remainingMs(lease: Lease): number {
    return Math.max(0, lease.expiresAt - this.options.clock.now());
  }

  /** Ends a solo lease whose handle was closed (no tombstone, not counted as a revocation). */
  discard(lease: Lease): void {
    this.end(lease, undefined);
    this.closeSoon();
  }

  /** Ends a lease now (Revoke): its handles answer lease_revoked at once and are closed in this call's slice. */
  revoke(lease: Lease): void {
    this.end(lease, 'lease_revoked');
    this.closeSoon();
  }

  /** The wire form of a lease. */
  view(lease: Lease): LeaseView {
    return { leaseId: lease.id, ttlMs: lease.ttlMs, expiresAt: new Date(lease.expiresAt).toISOString() };
  }

  /**
   * Ends every lease whose time has come and closes its handles, until
   * `deadline` (a performance.now() time; by default no limit, as fake-clock
   * tests want). Returns how many leases ended; `pending` says if work is left.
   */
  sweep(now = this.options.clock.now(), deadline = Number.POSITIVE_INFINITY): number {
    let ended = 0;
    if (this.drain(deadline)) {
      for (let steps = 1; ; steps++) {
        const lease = this.peekDue(now);
        if (lease === undefined) break;
        this.heap.pop();
        if (lease.expiresAt > now) {
          // Renewed since it was queued: queue it again at its new time.
          this.heap.push(lease, lease.expiresAt);
        } else {
          this.end(lease, 'lease_expired', now);
          ended++;
          if (!this.drain(deadline)) break;
        }
        if (steps % checkEvery === 0 && performance.now() >= deadline) break;
      }
    }
    this.tombstones.prune(now);
    return ended;
  }

  /** True while some lease is due or some ended lease still has handles to close. */
  get pending(): boolean {
    return this.closingHead < this.closing.length || this.peekDue(this.options.clock.now()) !== undefined;
  }

  /** Starts the expiry timer: every `intervalMs` it starts a sweep when something is due. */
  start(intervalMs = 100): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.pending) this.closeSoon();
      else this.tombstones.prune(this.options.clock.now());
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and ends every lease (shutdown), closing all their handles now. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const lease of [...this.leases.values()]) this.end(lease, 'lease_revoked');
    this.drain(Number.POSITIVE_INFINITY);
    this.heap.clear();
  }

  /** Runs a slice now, and more slices on later turns of the event loop while work is left. */
  private closeSoon(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.slice();
  }

  private readonly slice = (): void => {
    this.sweep(this.options.clock.now(), performance.now() + this.sliceMs);
    if (this.pending) setImmediate(this.slice).unref();
    else this.pumping = false;
  };

  /** The earliest queued lease if its queued time has come. */
  private peekDue(now: number): Lease | undefined {
    const top = this.heap.peek();
    return top === undefined || top.dueAt > now ? undefined : top;
  }

  /** Closes handles of ended leases, oldest first, until `deadline`; true when none is left. */
  private drain(deadline: number): boolean {
    while (this.closingHead < this.closing.length) {
      const lease = this.closing[this.closingHead] as Lease;
      if (!this.options.closeMembers(lease, deadline)) return false;
      this.closingHead++;
    }
    if (this.closingHead > 0) {
      this.closing = [];
      this.closingHead = 0;
    }
    return true;
  }

  /** The one path by which a lease ends (`reason` undefined: discarded, quietly). */
  private end(lease: Lease, reason: EndReason | undefined, now = this.options.clock.now()): void {
    if (lease.ended !== undefined) return;
    this.leases.delete(lease.id);
    this.heap.remove(lease);
    const left = (this.perPrincipal.get(lease.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(lease.principal);
    else this.perPrincipal.set(lease.principal, left);
    if (reason === undefined) {
      lease.ended = discarded;
    } else {
      const tombstone: Tombstone = { principal: lease.principal, reason, until: now + 10 * lease.ttlMs };
      lease.ended = tombstone;
      this.tombstones.add(lease.id, tombstone, now);
      if (reason === 'lease_expired') this.counts.expired++;
      else this.counts.revoked++;
    }
    if (lease.size > 0) this.closing.push(lease);
  }
}

function endedError(t: Tombstone, kind: 'lease' | 'handle', field: string): RpcError {
  const what = t.reason === 'lease_expired' ? 'expired' : 'was revoked';
  return new RpcError({
    code: 'failed_precondition',
    message: kind === 'lease' ? `lease ${what}` : `the handle's lease ${what}`,
    details: { reason: t.reason, field },
  });
}
