/** Why an id is gone, and until when that answer is given. One object is shared by a lease and its handles. */
export interface Tombstone {
  readonly principal: string;
  readonly reason: 'lease_expired' | 'lease_revoked';
  readonly until: number;
}

/**
 * The tombstones of one retention class, oldest first. Entries leave only from
 * the front, through one long-lived iterator: a fresh iterator per removal
 * would rescan the slots of every entry already deleted.
 */
class RetentionClass {
  readonly byId = new Map<string, Tombstone>();
  private cursor: MapIterator<[string, Tombstone]> | undefined;
  private head: [string, Tombstone] | undefined;

  /** The oldest entry. */
  peek(): [string, Tombstone] | undefined {
    if (this.head === undefined) {
      this.cursor ??= this.byId.entries();
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = undefined;
        return undefined;
      }
      this.head = next.value;
    }
    return this.head;
  }

  /** Removes the oldest entry (the one `peek` returned). */
  shift(): void {
    if (this.head === undefined) return;
    this.byId.delete(this.head[0]);
    this.head = undefined;
  }
}

/**
 * Remembers ids of expired or revoked leases and their handles so that late
 * calls get `failed_precondition` with the reason instead of a bare not_found
 * (contract: at least 10 × TTL). Bounded: past `maxEntries` the entry due to
 * go soonest is forgotten first.
 *
 * Retention differs per lease (10 × its TTL), so one insertion-ordered map
 * would not be ordered by `until`, and pruning from its front would stall
 * behind one long-lived entry. Entries are kept in one map per retention class
 * (powers of two, so a handful of maps): within a class `until` rises in
 * insertion order up to a factor of two, so pruning each class from its
 * front frees memory at most one retention late.
 */
export class Tombstones {
  /** floor(log2(retention ms)) → the class. */
  private readonly classes = new Map<number, RetentionClass>();
  private count = 0;

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.count;
  }

  /** Remembers `id` until `tombstone.until` (`now` gives the retention class). The first tombstone of an id wins. */
  add(id: string, tombstone: Tombstone, now: number): void {
    const key = 31 - Math.clz32(Math.max(1, Math.min(tombstone.until - now, 2 ** 31 - 1)));
    let retention = this.classes.get(key);
    if (retention === undefined) {
      retention = new RetentionClass();
      this.classes.set(key, retention);
    }
    if (retention.byId.has(id)) return;
    retention.byId.set(id, tombstone);
    this.count++;
    while (this.count > this.maxEntries) this.evictSoonest();
  }

  /** The live tombstone for an id, if any. */
  get(id: string, now: number): Tombstone | undefined {
    for (const retention of this.classes.values()) {
      const t = retention.byId.get(id);
      if (t !== undefined) return t.until > now ? t : undefined;
    }
    return undefined;
  }

  /** Drops expired tombstones from the front of each class, at most `budget` of them in all. */
  prune(now: number, budget = 10_000): void {
    for (const [key, retention] of this.classes) {
      for (let head = retention.peek(); head !== undefined && budget > 0; head = retention.peek()) {
        if (head[1].until > now) break;
        retention.shift();
        this.count--;
        budget--;
      }
      if (retention.byId.size === 0) this.classes.delete(key);
    }
  }

  /** Forgets the oldest entry of the class whose oldest entry is due soonest. */
  private evictSoonest(): void {
    let victim: number | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    for (const [key, retention] of this.classes) {
      const head = retention.peek();
      if (head !== undefined && head[1].until < soonest) {
        soonest = head[1].until;
        victim = key;
      }
    }
    const retention = victim === undefined ? undefined : this.classes.get(victim);
    if (victim === undefined || retention === undefined) return;
    retention.shift();
    this.count--;
    if (retention.byId.size === 0) this.classes.delete(victim);
  }
}
