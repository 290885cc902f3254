import { performance } from 'node:perf_hooks';
import { RpcError } from '../../common/rpc-error.js';
import type { Clock } from '../clock/clock.js';
import { type DurabilityLog, noDurabilityLog } from '../redo-log/durability-log.js';
import { ExpiryHeap } from './expiry-heap.js';
import { newId } from './ids.js';
import { type EndReason, Lease, tombstoneTtls } from './lease.js';
import { Tombstones } from './tombstones.js';

export { type EndReason, Lease, type LeaseMember } from './lease.js';

/** The wire form of a lease (`Lease` in the schemas). */
export interface LeaseView {
  leaseId: string;
  ttlMs: number;
  expiresAt: string;
}

/** What the lease table asks of the table that holds the handles. */
export interface LeaseMembers {
  /** Closes the handles of an ended lease until `deadline` (a performance.now() time); true once none is left. */
  closeLease(lease: Lease, deadline: number): boolean;
  /** Drops the ids of the handles an ended lease closed (their tombstones lapsed); returns how many went. */
  forgetLease(lease: Lease): number;
}

/** Options of the lease table. */
export interface LeaseTableOptions {
  clock: Clock;
  defaultTtlMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  maxPerPrincipal: number;
  /** Most ids of ended leases and their handles remembered (answered with lease_expired / lease_revoked). */
  maxTombstones?: number;
  /** Longest run of one sweep slice before the event loop gets a turn, in ms. */
  sliceMs?: number;
  /** Where grants, renewals and ends are recorded to survive a crash (default: nowhere). */
  log?: DurabilityLog;
}

/** How often the time budget is checked, in steps (performance.now() is cheap, not free). */
const checkEvery = 4;

/**
 * Leases by id, their expiry scheduler (one min-heap swept by one timer, not
 * a timer per lease) and the tombstones of ended leases. Expiry runs in
 * time-budgeted slices, so that 100 000 leases ending together do not stall
 * the event loop: a slice ends leases and closes their handles for at most
 * `sliceMs`, then yields with setImmediate until nothing due is left.
 */
export class LeaseTable {
  /** Live leases, and ended ones until their tombstones lapse. */
  private readonly leases = new Map<string, Lease>();
  private live = 0;
  private readonly heap = new ExpiryHeap<Lease>();
  private readonly perPrincipal = new Map<string, number>();
  /** Ended leases that still have handles to close (a slice ran out of time), oldest first. */
  private closing: Lease[] = [];
  private closingHead = 0;
  readonly tombstones: Tombstones;
  private members: LeaseMembers | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private readonly sliceMs: number;
  private readonly log: DurabilityLog;
  /** Counters for metrics. */
  readonly counts = { expired: 0, revoked: 0 };

  constructor(private readonly options: LeaseTableOptions) {
    this.tombstones = new Tombstones(options.maxTombstones ?? 1_000_000, (lease) => this.forget(lease));
    this.sliceMs = options.sliceMs ?? 5;
    this.log = options.log ?? noDurabilityLog;
  }

  /** Connects the table that holds the handles (they refer to each other). */
  attachMembers(members: LeaseMembers): void {
    this.members = members;
  }

  /** Live leases. */
  get size(): number {
    return this.live;
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
    this.log.leaseGranted(lease);
    this.leases.set(lease.id, lease);
    this.live++;
    this.perPrincipal.set(principal, count + 1);
    this.heap.push(lease, lease.expiresAt);
    return lease;
  }

  /** Puts back a lease the redo log recovered, expiring at `expiresAt` (the grace after a restart); not logged again. */
  restore(id: string, principal: string, ttlMs: number, expiresAt: number, solo: boolean): Lease {
    const lease = new Lease(id, principal, ttlMs, expiresAt, solo);
    this.leases.set(id, lease);
    this.live++;
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    this.heap.push(lease, expiresAt);
    return lease;
  }

  /**
   * Puts back the tombstone of a lease that ended before a restart (the redo
   * log recovered it): until `forgetAt` its id answers lease_expired /
   * lease_revoked; `handles.restoreTombstone` adds the ids of its closed handles.
   */
  restoreEnded(id: string, principal: string, reason: EndReason, forgetAt: number): Lease | undefined {
    const now = this.options.clock.now();
    if (!(forgetAt > now) || this.leases.has(id)) return undefined;
    const lease = new Lease(id, principal, 0, 0, false);
    lease.ended = reason;
    lease.forgetAt = forgetAt;
    this.leases.set(id, lease);
    this.tombstones.add(lease, now);
    return lease;
  }

  /** Ended leases whose tombstones still answer (a checkpoint reads them). */
  *endedLeases(): IterableIterator<Lease> {
    const now = this.options.clock.now();
    for (const lease of this.leases.values())
      if (lease.ended !== undefined && lease.forgetAt > now) yield lease;
  }

  /** Every live lease (a checkpoint reads them). */
  *liveLeases(): IterableIterator<Lease> {
    for (const lease of this.leases.values()) if (lease.ended === undefined) yield lease;
  }

  /** The caller's live lease, or the error the contract prescribes (lease_expired / lease_revoked, or not_found). */
  get(principal: string, id: string, field = 'leaseId'): Lease {
    const lease = this.leases.get(id);
    if (lease !== undefined && lease.principal === principal && !this.expireIfDue(lease)) return lease;
    throw this.goneError(lease, principal, 'lease', field);
  }

  /** Ends the lease now if its time has come but no sweep has got to it yet; true if it has ended. */
  expireIfDue(lease: Lease): boolean {
    if (lease.ended !== undefined) return true;
    if (lease.expiresAt > this.options.clock.now()) return false;
    this.end(lease, 'lease_expired');
    this.closeSoon();
    return true;
  }

  /**
   * The error for an id that names nothing live. `ended` is what the tables
   * hold under that id (an ended lease is the tombstone of its handles too):
   * lease_expired / lease_revoked while its tombstone lasts and the caller
   * owns it, else not_found.
   */
  goneError(ended: Lease | undefined, principal: string, kind: 'lease' | 'handle', field: string): RpcError {
    if (
      ended?.ended !== undefined &&
      ended.principal === principal &&
      ended.forgetAt > this.options.clock.now()
    ) {
      const what = ended.ended === 'lease_expired' ? 'expired' : 'was revoked';
      return new RpcError({
        code: 'failed_precondition',
        message: kind === 'lease' ? `lease ${what}` : `the handle's lease ${what}`,
        details: { reason: ended.ended, field },
      });
    }
    return new RpcError({
      code: 'not_found',
      message: `no such ${kind}`,
      details: { reason: `${kind}_not_found`, field },
    });
  }

  /** Whether a handle closed under this (ended) lease should still answer with its tombstone. */
  remembers(lease: Lease): boolean {
    return lease.ended !== undefined && lease.forgetAt > this.options.clock.now();
  }

  /** Counts the id of a handle that an ended lease closed and now answers for. */
  rememberClosed(lease: Lease, handleId: string): void {
    lease.recordClosed(handleId);
    this.tombstones.addId();
  }

  /** Renews a lease for another full TTL (KeepAlive, and every successful call on one of its handles). */
  renew(lease: Lease): void {
    lease.expiresAt = this.options.clock.now() + lease.ttlMs;
    this.log.leaseRenewed(lease);
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
      for (let steps = 1; this.heap.peekAt() <= now; steps++) {
        const lease = this.heap.pop() as Lease;
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
    return this.closingHead < this.closing.length || this.heap.peekAt() <= this.options.clock.now();
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

  /** Closes handles of ended leases, oldest first, until `deadline`; true when none is left. */
  private drain(deadline: number): boolean {
    while (this.closingHead < this.closing.length) {
      const lease = this.closing[this.closingHead] as Lease;
      if (this.members !== undefined && !this.members.closeLease(lease, deadline)) return false;
      this.closingHead++;
    }
    if (this.closingHead > 0) {
      this.closing = [];
      this.closingHead = 0;
    }
    return true;
  }

  /** The one path by which a lease ends (`reason` undefined: discarded quietly, no tombstone). */
  private end(lease: Lease, reason: EndReason | undefined, now = this.options.clock.now()): void {
    if (lease.ended !== undefined) return;
    this.heap.remove(lease);
    this.live--;
    const left = (this.perPrincipal.get(lease.principal) ?? 1) - 1;
    if (left <= 0) this.perPrincipal.delete(lease.principal);
    else this.perPrincipal.set(lease.principal, left);
    if (reason === undefined) {
      lease.ended = 'lease_revoked';
      lease.forgetAt = 0;
      this.leases.delete(lease.id);
    } else {
      lease.ended = reason;
      lease.forgetAt = now + tombstoneTtls * lease.ttlMs;
      this.tombstones.add(lease, now);
      if (reason === 'lease_expired') this.counts.expired++;
      else this.counts.revoked++;
    }
    // Logged once ended, so that the record carries the tombstone (its handles' closes follow).
    this.log.leaseEnded(lease);
    if (lease.size > 0) this.closing.push(lease);
  }

  /** Drops an ended lease's id and its handles' ids (tombstone lapsed, or evicted past the bound). */
  private forget(lease: Lease): number {
    lease.forgetAt = 0;
    if (this.leases.get(lease.id) === lease) this.leases.delete(lease.id);
    return 1 + (this.members?.forgetLease(lease) ?? 0);
  }
}
