/** What the heap orders: a deadline, and the item's own slot so it can be removed early. */
export interface Scheduled {
  /** The deadline the item is queued with. */
  dueAt: number;
  /** Position in the heap, or -1 when not queued (maintained by the heap). */
  heapIndex: number;
}

/**
 * A binary min-heap of deadlines: one scheduler for every lease instead of a
 * timer per lease. Items are stored directly (no entry object per item) and
 * know their slot, so a revoked or discarded lease leaves at once instead of
 * lingering until its deadline. Renewals do not touch the heap: the sweep
 * re-queues an item whose deadline moved on since it was pushed (lazy
 * decrease-key), which keeps KeepAlive and every call on a handle O(1).
 */
export class ExpiryHeap<T extends Scheduled> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The item with the earliest deadline, if any. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Queues an item at `dueAt` (it must not be queued already). */
  push(item: T, dueAt: number): void {
    item.dueAt = dueAt;
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.up(item.heapIndex);
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
    const a = this.items;
    const gone = a[i] as T;
    gone.heapIndex = -1;
    const last = a.pop() as T;
    if (i === a.length) return;
    a[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  private up(i: number): void {
    const a = this.items;
    const item = a[i] as T;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = a[parentIndex] as T;
      if (parent.dueAt <= item.dueAt) break;
      a[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    a[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const a = this.items;
    const n = a.length;
    const item = a[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && (a[r] as T).dueAt < (a[l] as T).dueAt) child = r;
      const c = a[child] as T;
      if (c.dueAt >= item.dueAt) break;
      a[i] = c;
      c.heapIndex = i;
      i = child;
    }
    a[i] = item;
    item.heapIndex = i;
  }
}
