/**
 * The machine is shared (tests, browsers and builds of other sessions run on
 * the same cores). Two defences: each run starts only once the machine is
 * quiet, and a noise meter measures how much CPU other processes (and the
 * hypervisor, as steal) took during the run, so that noisy runs can be
 * repeated and every row says how quiet it was.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMicros, machineCpu } from './proc-stats.js';

/** Measures other processes' CPU use from `start` to `stop`. */
export interface NoiseMeter {
  /** Other processes' CPU use since the meter started, in % of one core (undefined without /proc). */
  stop(): number | undefined;
}

/** Starts a noise meter that discounts this process and the given children (the server under test). */
export function startNoiseMeter(pids: readonly number[] = []): NoiseMeter {
  const machine0 = machineCpu();
  const children0 = pids.map(cpuMicros);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  return {
    stop() {
      const machine1 = machineCpu();
      const children1 = pids.map(cpuMicros);
      const self = process.cpuUsage(self0);
      const wall = (performance.now() - t0) * 1000;
      if (machine0 === undefined || machine1 === undefined || wall <= 0) return undefined;
      let ours = self.user + self.system;
      for (let i = 0; i < pids.length; i++) {
        const before = children0[i];
        const after = children1[i];
        if (before === undefined || after === undefined) return undefined;
        ours += after - before;
      }
      const machine = machine1.busyMicros - machine0.busyMicros + machine1.stealMicros - machine0.stealMicros;
      return Math.max(0, ((machine - ours) / wall) * 100);
    },
  };
}

/** Waits until other processes use less than `maxBusyPct` of a core over 300 ms (at most `maxWaitSeconds`); resolves with the seconds waited. */
export async function waitForQuiet(maxBusyPct = 15, maxWaitSeconds = 30): Promise<number> {
  const started = performance.now();
  for (;;) {
    const meter = startNoiseMeter();
    await sleep(300);
    const busy = meter.stop();
    const waited = (performance.now() - started) / 1000;
    if (busy === undefined || busy < maxBusyPct || waited >= maxWaitSeconds) return waited > 0.4 ? waited : 0;
  }
}

/**
 * The suite's patience with a busy machine: waits for quiet and repeats of
 * noisy runs draw on one budget of seconds; once spent, runs go ahead as they
 * come (their noise is still reported).
 */
export class QuietBudget {
  #seconds: number;

  constructor(seconds: number) {
    this.#seconds = seconds;
  }

  /** Seconds left. */
  get seconds(): number {
    return Math.max(0, this.#seconds);
  }

  /** Draws `seconds` from the budget. */
  spend(seconds: number): void {
    this.#seconds -= seconds;
  }
}

/** How `measureQuietly` deals with noise. */
export interface QuietOptions {
  readonly maxNoisePct: number;
  readonly retries: number;
  readonly budget: QuietBudget;
  readonly log: (message: string) => void;
  readonly label: string;
}

/**
 * Runs `measure` (which reports its own noise) until a run's noise is at most
 * `maxNoisePct`, at most `1 + retries` times while the budget lasts, waiting
 * for quiet before each; keeps the quietest run.
 */
export async function measureQuietly<T extends { otherCpuPct: number | undefined }>(
  measure: () => Promise<T>,
  options: QuietOptions,
): Promise<T> {
  const { budget } = options;
  let best: T | undefined;
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    const waited = budget.seconds > 0 ? await waitForQuiet(15, Math.min(30, budget.seconds)) : 0;
    budget.spend(waited);
    if (waited > 0) options.log(`  (waited ${waited.toFixed(1)} s for the machine to quieten)`);
    const started = performance.now();
    const run = await measure();
    if (attempt > 0) budget.spend((performance.now() - started) / 1000);
    if (best === undefined || (run.otherCpuPct ?? 0) < (best.otherCpuPct ?? 0)) best = run;
    if ((run.otherCpuPct ?? 0) <= options.maxNoisePct) break;
    if (attempt === options.retries || budget.seconds <= 0) break;
    options.log(
      `  ${options.label}: other processes took ${run.otherCpuPct?.toFixed(0)}% of a core, measuring again`,
    );
  }
  return best as T;
}
