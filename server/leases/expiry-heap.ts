/** What the heap orders: an item that knows its own slot, so it can be removed early. */
export interface Scheduled {
  /** Position in the heap, or -1 when not queued (maintained by the heap). */
  heapIndex: number;
}

/**
 * A binary min-heap of deadlines: one scheduler for every lease instead of a
 * timer per lease. Deadlines live in a Float64Array beside the items, so
 * sifting compares numbers in one block of memory instead of chasing a
 * pointer to each item and another to its boxed number (with 100 000 leases
 * that is most of the cost of a pop). Items know their slot, so a revoked or
 * discarded lease leaves at once instead of lingering until its deadline.
 *
 * Renewals do not touch the heap: the sweep re-queues an item whose deadline
 * moved on since it was pushed (lazy decrease-key), which keeps KeepAlive and
 * every call on a handle O(1).
 */
export class ExpiryHeap<T extends Scheduled> {
  private readonly items: T[] = [];
  private keys = new Float64Array(1024);

  get size(): number {
    return this.items.length;
  }

  /** The item with the earliest deadline, if any. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** The earliest deadline (Infinity when empty). */
  peekAt(): number {
    return this.items.length === 0 ? Number.POSITIVE_INFINITY : (this.keys[0] as number);
  }

  /** Queues an item at `at` (it must not be queued already). */
  push(item: T, at: number): void {
    const i = this.items.length;
    if (i === this.keys.length) {
      const grown = new Float64Array(this.keys.length * 2);
      grown.set(this.keys);
      this.keys = grown;
    }
    this.items.push(item);
    this.keys[i] = at;
    this.up(i, item, at);
  }

  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes an item wherever it is (no-op when not queued). */
  remove(item: T): void {
    const i = item.heapIndex;
    if (i >= 0 && this.items[i] === item) this.removeAt(i);
  }

  /** Empties the heap. */
  clear(): void {
    for (const item of this.items) item.heapIndex = -1;
    this.items.length = 0;
  }

  private removeAt(i: number): void {
    const items = this.items;
    (items[i] as T).heapIndex = -1;
    const last = items.pop() as T;
    const n = items.length;
    if (i === n) return;
    const at = this.keys[n] as number;
    this.down(i, last, at);
    if (last.heapIndex === i) this.up(i, last, at);
  }

  /** Places `item` (deadline `at`) at slot `i` or above. */
  private up(i: number, item: T, at: number): void {
    const items = this.items;
    const keys = this.keys;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((keys[p] as number) <= at) break;
      const parent = items[p] as T;
      items[i] = parent;
      keys[i] = keys[p] as number;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = item;
    keys[i] = at;
    item.heapIndex = i;
  }

  /** Places `item` (deadline `at`) at slot `i` or below. */
  private down(i: number, item: T, at: number): void {
    const items = this.items;
    const keys = this.keys;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (keys[r] as number) < (keys[l] as number) ? r : l;
      if ((keys[c] as number) >= at) break;
      const child = items[c] as T;
      items[i] = child;
      keys[i] = keys[c] as number;
      child.heapIndex = i;
      i = c;
    }
    items[i] = item;
    keys[i] = at;
    item.heapIndex = i;
  }
}
