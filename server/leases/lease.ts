import type { Tombstone } from './tombstones.js';

/** What a lease holds: handles, known to the lease only by id. */
export interface LeaseMember {
  readonly id: string;
}

/**
 * A lease: a principal's promise to come back within `ttlMs`, and the handles
 * that live under it. A lease made by RemoteOpen for one handle (`solo`) keeps
 * that handle in a field, so the common case allocates no Set.
 */
export class Lease {
  /** Heap key: the expiresAt the lease was queued with; renewals leave the heap alone (lazy decrease-key). */
  dueAt: number;
  /** Position in the expiry heap, or -1 when not queued. */
  heapIndex = -1;
  /** Why and until when the lease is remembered once ended; undefined while the lease lives. */
  ended: Tombstone | undefined = undefined;
  private one: LeaseMember | undefined = undefined;
  private many: Set<LeaseMember> | undefined = undefined;

  constructor(
    readonly id: string,
    readonly principal: string,
    readonly ttlMs: number,
    public expiresAt: number,
    /** Granted by RemoteOpen for one handle alone: it ends when that handle closes. */
    readonly solo: boolean,
  ) {
    this.dueAt = expiresAt;
  }

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

  /**
   * The attached handles. Detaching while iterating is safe (Set iteration allows it); the closing
   * loop keeps one iterator per slice, since a fresh one per handle would rescan deleted slots.
   */
  members(): IterableIterator<LeaseMember> {
    if (this.many !== undefined) return this.many.values();
    return (this.one === undefined ? [] : [this.one]).values();
  }

  /** Ids of the attached handles (TimeToLive). */
  memberIds(): string[] {
    if (this.one !== undefined) return [this.one.id];
    return this.many === undefined ? [] : [...this.many].map((m) => m.id);
  }
}
