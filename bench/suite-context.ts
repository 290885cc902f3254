/** What every section of the suite is given: pinning, scratch folder, durations and a logger. */
import type { Pinning } from './pinning.js';
import type { QuietBudget } from './quiet.js';

/** Settings of one suite run (see options.ts for the flags that set them). */
export interface SuiteSettings {
  /** Rounds per variant; figures are medians over rounds. */
  readonly rounds: number;
  /** Measured seconds per throughput run. */
  readonly seconds: number;
  /** Unmeasured warm-up seconds before each throughput run (same load). */
  readonly warmupSeconds: number;
  /** Connection counts (autocannon connections, calls in flight for gRPC). */
  readonly connections: readonly number[];
  /** Sequential calls measured per round, after `sequentialWarmup` unmeasured ones (and at least `warmupSeconds`). */
  readonly sequentialCalls: number;
  readonly sequentialWarmup: number;
  /** fdatasync samples of the disk probe. */
  readonly fsyncSamples: number;
  /** A run during which other processes took more than this (% of one core) is measured again. */
  readonly maxNoisePct: number;
  /** At most this many repeats of a noisy run (the quietest attempt is kept). */
  readonly noiseRetries: number;
  /** Seconds the whole suite may spend waiting for quiet and repeating noisy runs. */
  readonly quietBudgetSeconds: number;
  /** Seconds of 32-connection load while profiling. */
  readonly profileSeconds: number;
}

/** A section's view of the run. */
export interface SuiteContext {
  readonly settings: SuiteSettings;
  readonly pinning: Pinning;
  /** Scratch folder on the repository's disk (removed at the end). */
  readonly workDir: string;
  /** Where results and profiles go (bench/results). */
  readonly resultsDir: string;
  /** What is left of the suite's patience with a busy machine. */
  readonly quietBudget: QuietBudget;
  /** True when --quick was given (helper sections get LEASEGATE_BENCH_QUICK=1). */
  readonly quick: boolean;
  log(message: string): void;
}

/** A 64-byte line (63 characters and a newline), the payload of every append. */
export const benchLine = `${'leasegate bench line '.padEnd(63, '.')}\n`;
