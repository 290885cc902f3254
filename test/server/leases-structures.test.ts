/**
 * The parts under the lease scheduler, one at a time: the expiry heap against
 * a sorted list, and the tombstones' bound and retention classes.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/clock/clock.js';
import { ExpiryHeap } from '../../server/leases/expiry-heap.js';
import { type Lease, LeaseTable } from '../../server/leases/lease-table.js';

interface Item {
  heapIndex: number;
  at: number;
  name: number;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('ExpiryHeap', () => {
  it('pops in deadline order through any mix of pushes, pops and removals', () => {
    const next = random(42);
    const heap = new ExpiryHeap<Item>();
    const model: Item[] = [];
    for (let step = 0; step < 20_000; step++) {
      const r = next();
      if (r < 0.5 || model.length === 0) {
        const item = { heapIndex: -1, at: Math.floor(next() * 1_000), name: step };
        heap.push(item, item.at);
        model.push(item);
      } else if (r < 0.8) {
        const popped = heap.pop() as Item;
        const least = Math.min(...model.map((m) => m.at));
        expect(popped.at).toBe(least);
        expect(popped.heapIndex).toBe(-1);
        model.splice(model.indexOf(popped), 1);
      } else {
        const victim = model[Math.floor(next() * model.length)] as Item;
        heap.remove(victim);
        expect(victim.heapIndex).toBe(-1);
        model.splice(model.indexOf(victim), 1);
      }
      expect(heap.size).toBe(model.length);
    }
    const drained: number[] = [];
    for (let item = heap.pop(); item !== undefined; item = heap.pop()) drained.push(item.at);
    expect(drained).toEqual(model.map((m) => m.at).sort((a, b) => a - b));
    expect(heap.peekAt()).toBe(Number.POSITIVE_INFINITY);
  });

  it('removing an item that is not queued changes nothing', () => {
    const heap = new ExpiryHeap<Item>();
    const a = { heapIndex: -1, at: 1, name: 1 };
    const b = { heapIndex: -1, at: 2, name: 2 };
    heap.push(a, 1);
    heap.remove(b);
    heap.remove(a);
    heap.remove(a);
    expect(heap.size).toBe(0);
  });
});

describe('tombstones', () => {
  function table(maxTombstones: number) {
    const clock = new ManualClock();
    const leases = new LeaseTable({
      clock,
      defaultTtlMs: 1_000,
      minTtlMs: 1,
      maxTtlMs: 10_000_000,
      maxPerPrincipal: 1_000,
      maxTombstones,
    });
    const gone = (lease: Lease) => {
      try {
        leases.get('p', lease.id);
        return 'live';
      } catch (error) {
        return (error as { reason?: string }).reason;
      }
    };
    return { clock, leases, gone };
  }

  it('forget the ended leases due soonest once past the bound, and never more than the bound', () => {
    const { clock, leases, gone } = table(10);
    const ended = Array.from({ length: 25 }, (_, i) => leases.grant('p', 1_000 + i));
    clock.advance(2_000);
    leases.sweep(clock.now());
    expect(leases.tombstones.size).toBe(10);
    // The 15 with the nearest forgetAt went first; the last 10 still answer.
    expect(ended.slice(0, 15).map(gone)).toEqual(Array(15).fill('lease_not_found'));
    expect(ended.slice(15).map(gone)).toEqual(Array(10).fill('lease_expired'));
  });

  it('are pruned on time in every retention class, even behind a long-lived one', () => {
    const { clock, leases, gone } = table(1_000);
    const long = leases.grant('p', 1_000_000);
    const short = Array.from({ length: 5 }, () => leases.grant('p', 1_000));
    clock.advance(1_000);
    leases.sweep(clock.now());
    expect(short.map(gone)).toEqual(Array(5).fill('lease_expired'));
    expect(leases.tombstones.size).toBe(5);
    clock.advance(10_000);
    leases.sweep(clock.now());
    expect(leases.tombstones.size).toBe(0);
    expect(short.map(gone)).toEqual(Array(5).fill('lease_not_found'));
    expect(gone(long)).toBe('live');
  });

  it('are left by neither a discarded lease nor one another principal asks about', () => {
    const { clock, leases, gone } = table(1_000);
    const discarded = leases.grant('p', 1_000, true);
    leases.discard(discarded);
    expect(leases.tombstones.size).toBe(0);
    expect(gone(discarded)).toBe('lease_not_found');
    const revoked = leases.grant('p', 1_000);
    leases.revoke(revoked);
    expect(gone(revoked)).toBe('lease_revoked');
    expect(() => leases.get('q', revoked.id)).toThrow(expect.objectContaining({ code: 'not_found' }));
    clock.advance(10_000);
    leases.sweep(clock.now());
    expect(gone(revoked)).toBe('lease_not_found');
  });
});
