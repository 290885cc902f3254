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
 * Runs `measure` (which reports its own noise) until a run's noise is at most
 * `maxNoisePct`, at most `1 + retries` times, waiting for quiet before each;
 * keeps the quietest run.
 */
export async function measureQuietly<T extends { otherCpuPct: number | undefined }>(
  measure: () => Promise<T>,
  options: { maxNoisePct: number; retries: number; log: (message: string) => void; label: string },
): Promise<T> {
  let best: T | undefined;
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    const waited = await waitForQuiet();
    if (waited > 0) options.log(`  (waited ${waited.toFixed(1)} s for the machine to quieten)`);
    const run = await measure();
    if (best === undefined || (run.otherCpuPct ?? 0) < (best.otherCpuPct ?? 0)) best = run;
    if ((run.otherCpuPct ?? 0) <= options.maxNoisePct) break;
    if (attempt < options.retries) {
      options.log(
        `  ${options.label}: other processes took ${run.otherCpuPct?.toFixed(0)}% of a core, measuring again`,
      );
    }
  }
  return best as T;
}
