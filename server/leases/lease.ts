/** Why a lease ended, as the wire says it. */
export type EndReason = 'lease_expired' | 'lease_revoked';

/** An ended lease's tombstone answers for this many of its TTLs after the end (contract: at least 10). */
export const tombstoneTtls = 10;

/** What a lease holds: handles, known to the lease only by id. */
export interface LeaseMember {
  readonly id: string;
}

/**
 * A lease: a principal's promise to come back within `ttlMs`, and the handles
 * that live under it. A lease made by RemoteOpen for one handle (`solo`) keeps
 * that handle in a field, so the common case allocates no Set.
 *
 * Once ended, the lease is its own tombstone and that of its handles: the
 * tables keep it under its id and under the ids of the handles it closed, so
 * that late calls get lease_expired / lease_revoked until `forgetAt`. Ending
 * 100 000 leases therefore allocates almost nothing and inserts nothing into
 * any map: values are swapped in place.
 */
export class Lease {
  /** Position in the expiry heap, or -1 when not queued (kept by the heap). */
  heapIndex = -1;
  /** Why the lease ended; undefined while it lives. */
  ended: EndReason | undefined = undefined;
  /** When the tombstone lapses (epoch ms); NaN while the lease lives (a double from the start: no shape change later). */
  forgetAt = Number.NaN;
  /** Ids of the handles closed because the lease ended (one id, or several for a shared lease). */
  private closed: string | string[] | undefined = undefined;
  private one: LeaseMember | undefined = undefined;
  private many: Set<LeaseMember> | undefined = undefined;

  constructor(
    readonly id: string,
    readonly principal: string,
    readonly ttlMs: number,
    /** When the lease runs out unless renewed (epoch ms). */
    public expiresAt: number,
    /** Granted by RemoteOpen for one handle alone: it ends when that handle closes. */
    readonly solo: boolean,
  ) {}

  /** Handles attached now. */
  get size(): number {
    return this.many !== undefined ? this.many.size : this.one !== undefined ? 1 : 0;
  }

  /** Attaches a handle. */
  attach(member: LeaseMember): void {
    if (this.many !== undefined) this.many.add(member);
    else if (this.one === undefined) this.one = member;
    else {
      this.many = new Set([this.one, member]);
      this.one = undefined;
    }
  }

  /** Detaches a handle (closed). */
  detach(member: LeaseMember): void {
    if (this.one === member) this.one = undefined;
    else this.many?.delete(member);
  }

  /** The only attached handle when the lease holds no Set (the common, solo case). */
  single(): LeaseMember | undefined {
    return this.one;
  }

  /**
   * The attached handles of a lease that holds a Set. Detaching while iterating
   * is safe; callers keep one iterator across slices, since a fresh one per
   * handle would rescan the slots of every handle already detached.
   */
  members(): SetIterator<LeaseMember> | undefined {
    return this.many?.values();
  }

  /** Ids of the attached handles (TimeToLive). */
  memberIds(): string[] {
    if (this.one !== undefined) return [this.one.id];
    return this.many === undefined ? [] : [...this.many].map((m) => m.id);
  }

  /** Remembers the id of a handle this lease's end closed (it answers with this tombstone). */
  recordClosed(id: string): void {
    if (this.closed === undefined) this.closed = id;
    else if (typeof this.closed === 'string') this.closed = [this.closed, id];
    else this.closed.push(id);
  }

  /** Ids recorded by recordClosed. */
  closedIds(): readonly string[] {
    return this.closed === undefined ? [] : typeof this.closed === 'string' ? [this.closed] : this.closed;
  }
}
