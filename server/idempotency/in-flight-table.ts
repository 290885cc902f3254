/**
 * The records in flight, by hash: an open-addressing table (linear probing)
 * in one array that only ever grows, rather than a Map. Under load a Map with
 * a record set and deleted per call rehashes into a new table every few dozen
 * calls, and the old generation's Map keeps each new table alive across
 * scavenges until it is promoted: with a Map here a keyed call promoted 156
 * bytes at 32 connections (--trace-gc-nvp), with this table 26.
 */

/** What the table holds. */
export interface HashedRecord {
  readonly hash: number;
  is(scope: string, key: string): boolean;
}

export class InFlightTable<R extends HashedRecord> {
  private slots: (R | undefined)[] = new Array(16).fill(undefined);
  private mask = 15;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The record of (scope, key), which hashes to `hash`. */
  get(hash: number, scope: string, key: string): R | undefined {
    const { slots, mask } = this;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const record = slots[i];
      if (record === undefined) return undefined;
      if (record.hash === hash && record.is(scope, key)) return record;
    }
  }

  /** Adds a record; the caller makes sure that none of its (scope, key) is held. */
  add(record: R): void {
    if (2 * (this.count + 1) > this.slots.length) this.grow();
    this.place(record);
    this.count++;
  }

  /** Takes a record out (nothing if it is not held). */
  delete(record: R): void {
    const { slots, mask } = this;
    let hole = record.hash & mask;
    for (; slots[hole] !== record; hole = (hole + 1) & mask) if (slots[hole] === undefined) return;
    this.count--;
    // Move later records of the probe run back, so that every lookup still finds them.
    for (let j = (hole + 1) & mask; slots[j] !== undefined; j = (j + 1) & mask) {
      const home = (slots[j] as R).hash & mask;
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      slots[hole] = slots[j];
      hole = j;
    }
    slots[hole] = undefined;
  }

  private place(record: R): void {
    let i = record.hash & this.mask;
    while (this.slots[i] !== undefined) i = (i + 1) & this.mask;
    this.slots[i] = record;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const record of old) if (record !== undefined) this.place(record);
  }
}
