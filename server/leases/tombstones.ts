/** Why an id is gone, and until when that answer is given. */
export interface Tombstone {
  readonly principal: string;
  readonly reason: 'lease_expired' | 'lease_revoked';
  readonly until: number;
}

/**
 * Remembers ids of expired or revoked leases and handles so that late calls get
 * `failed_precondition` with the reason instead of a bare not_found (contract:
 * at least 10 × TTL). Bounded: past `maxEntries` the oldest are forgotten first.
 */
export class Tombstones {
  private readonly byId = new Map<string, Tombstone>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.byId.size;
  }

  add(id: string, tombstone: Tombstone): void {
    this.byId.delete(id);
    this.byId.set(id, tombstone);
    if (this.byId.size > this.maxEntries) {
      const oldest = this.byId.keys().next();
      if (!oldest.done) this.byId.delete(oldest.value);
    }
  }

  /** The live tombstone for an id, if any (expired ones are dropped on sight). */
  get(id: string, now: number): Tombstone | undefined {
    const t = this.byId.get(id);
    if (t === undefined) return undefined;
    if (t.until <= now) {
      this.byId.delete(id);
      return undefined;
    }
    return t;
  }

  /** Drops expired tombstones from the oldest end, at most `budget` of them. */
  prune(now: number, budget = 10_000): void {
    for (const [id, t] of this.byId) {
      if (budget-- <= 0 || t.until > now) return;
      this.byId.delete(id);
    }
  }
}
