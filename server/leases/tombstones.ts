import type { Lease } from './lease.js';

/** Ended leases of one retention class, oldest first (an array with a moving head). */
class RetentionClass {
  private items: Lease[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(lease: Lease): void {
    this.items.push(lease);
  }

  peek(): Lease | undefined {
    return this.items[this.head];
  }

  shift(): void {
    this.items[this.head++] = undefined as unknown as Lease;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * When to forget ended leases. An ended lease is the tombstone of its own id
 * and of the handles it closed (contract: they answer lease_expired /
 * lease_revoked for at least 10 × TTL); this schedule decides when the tables
 * drop those ids. Bounded: past `maxIds` remembered ids, the leases due
 * soonest are forgotten early.
 *
 * Retention differs per lease (10 × its TTL), so one queue in end order would
 * not be in `forgetAt` order, and pruning its front would stall behind one
 * long-lived lease. Leases are queued per retention class (powers of two, so
 * a handful of queues): within a class `forgetAt` rises in end order up to a
 * factor of two, so pruning each class from its front frees memory at most
 * one retention late.
 */
export class Tombstones {
  /** floor(log2(retention ms)) → the class. */
  private readonly classes = new Map<number, RetentionClass>();
  private ids = 0;

  constructor(
    private readonly maxIds: number,
    /** Drops a lease's id and its closed handles' ids from the tables; returns how many ids went. */
    private readonly forget: (lease: Lease) => number,
  ) {}

  /** Ids remembered now (leases and handles). */
  get size(): number {
    return this.ids;
  }

  /** Queues an ended lease (its `forgetAt` set) to be forgotten in time. */
  add(lease: Lease, now: number): void {
    const retention = Math.max(1, Math.min(lease.forgetAt - now, 2 ** 31 - 1));
    const key = 31 - Math.clz32(retention);
    let queue = this.classes.get(key);
    if (queue === undefined) {
      queue = new RetentionClass();
      this.classes.set(key, queue);
    }
    queue.push(lease);
    this.ids++;
  }

  /** Counts one more id answered by a queued lease (a handle it closed). */
  addId(): void {
    this.ids++;
  }

  /** Forgets leases whose time has come, at most `budget` of them, then enforces the bound. */
  prune(now: number, budget = 10_000): void {
    for (const [key, queue] of this.classes) {
      for (let lease = queue.peek(); lease !== undefined && budget > 0; lease = queue.peek()) {
        if (lease.forgetAt > now || lease.size > 0) break;
        queue.shift();
        this.ids -= this.forget(lease);
        budget--;
      }
      if (queue.length === 0) this.classes.delete(key);
    }
    let evicting = this.ids > this.maxIds;
    while (evicting) evicting = this.evictSoonest() && this.ids > this.maxIds;
  }

  /** Forgets the lease due soonest among the oldest of each class (one whose handles are all closed). */
  private evictSoonest(): boolean {
    let victim: RetentionClass | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    for (const queue of this.classes.values()) {
      const lease = queue.peek();
      if (lease !== undefined && lease.size === 0 && lease.forgetAt < soonest) {
        soonest = lease.forgetAt;
        victim = queue;
      }
    }
    const lease = victim?.peek();
    if (victim === undefined || lease === undefined) return false;
    victim.shift();
    this.ids -= this.forget(lease);
    return true;
  }
}
