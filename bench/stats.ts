/** Small statistics over samples: medians of rounds and percentiles of latencies. */

/** The median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The `p`-th percentile (0–100, nearest rank) of samples sorted in place; NaN when empty. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** A growable buffer of latency samples in ms, cheap to append to on the load generator's hot path. */
export class Samples {
  #values = new Float64Array(1 << 16);
  #length = 0;

  /** Samples recorded. */
  get length(): number {
    return this.#length;
  }

  /** Records one sample. */
  add(value: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = value;
  }

  /** p50 and p99 of what was recorded. */
  summary(): { p50: number; p99: number } {
    const sorted = this.#values.subarray(0, this.#length).sort();
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  }
}

/** p50 and p99 of samples recorded in ms, named as the results name them. */
export function percentilesMs(samples: Samples): { p50Ms: number; p99Ms: number } {
  const { p50, p99 } = samples.summary();
  return { p50Ms: p50, p99Ms: p99 };
}
