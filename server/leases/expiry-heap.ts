/** An entry of the expiry heap: a deadline and what expires at it. */
export interface HeapEntry<T> {
  at: number;
  item: T;
}

/**
 * A binary min-heap of deadlines: one scheduler for every lease instead of a
 * timer per lease. Renewals do not touch it; the sweep re-queues an entry whose
 * item was renewed since it was pushed (lazy decrease-key).
 */
export class ExpiryHeap<T> {
  private readonly entries: HeapEntry<T>[] = [];

  get size(): number {
    return this.entries.length;
  }

  /** The earliest deadline, if any. */
  peekAt(): number | undefined {
    return this.entries[0]?.at;
  }

  push(at: number, item: T): void {
    const a = this.entries;
    a.push({ at, item });
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as HeapEntry<T>).at <= at) break;
      [a[i], a[parent]] = [a[parent] as HeapEntry<T>, a[i] as HeapEntry<T>];
      i = parent;
    }
  }

  /** Removes and returns the earliest entry. */
  pop(): HeapEntry<T> | undefined {
    const a = this.entries;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && (a[l] as HeapEntry<T>).at < (a[m] as HeapEntry<T>).at) m = l;
      if (r < a.length && (a[r] as HeapEntry<T>).at < (a[m] as HeapEntry<T>).at) m = r;
      if (m === i) break;
      [a[i], a[m]] = [a[m] as HeapEntry<T>, a[i] as HeapEntry<T>];
      i = m;
    }
    return top;
  }

  clear(): void {
    this.entries.length = 0;
  }
}
