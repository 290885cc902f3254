/**
 * The machine is shared (tests, browsers and builds of other sessions run on
 * the same cores), so each run starts only once the machine is quiet: other
 * processes below `maxBusyPct` of one core over a 300 ms sample, waiting at
 * most `maxWaitSeconds`. The wait is logged; the run's own noise figure
 * (other CPU %) says how quiet it stayed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { machineCpu } from './proc-stats.js';

/** Waits for a quiet machine; resolves with the seconds waited (0 when it was quiet at once). */
export async function waitForQuiet(maxBusyPct = 15, maxWaitSeconds = 30): Promise<number> {
  const started = performance.now();
  for (;;) {
    const before = machineCpu();
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(300);
    const after = machineCpu();
    if (before === undefined || after === undefined) return 0;
    const self = process.cpuUsage(self0);
    const wall = (performance.now() - t0) * 1000;
    const others =
      after.busyMicros - before.busyMicros + after.stealMicros - before.stealMicros - self.user - self.system;
    const waited = (performance.now() - started) / 1000;
    if ((others / wall) * 100 < maxBusyPct || waited >= maxWaitSeconds) return waited > 0.4 ? waited : 0;
  }
}
