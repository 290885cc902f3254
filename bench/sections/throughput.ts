/**
 * Throughput under load: each variant at each connection count, fresh server
 * child per run, variants alternating A B C D A B C D so drift hits all alike.
 * Each run: warm-up, then a measured load with the server's CPU time and peak
 * RSS read from /proc and the load generator's own CPU use beside them.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from '../load/http-load.js';
import { cpuMicros, peakRssBytes } from '../proc-stats.js';
import { measureQuietly, type NoiseMeter, startNoiseMeter } from '../quiet.js';
import { spawnServer } from '../servers/spawn.js';
import { median } from '../stats.js';
import type { SuiteContext } from '../suite-context.js';
import { loader, openLeasegateHandle, serverConfig, type Variant, variants } from './variants.js';

/** One measured run. */
export interface ThroughputRun {
  readonly variant: string;
  readonly connections: number;
  readonly round: number;
  readonly ok: number;
  readonly failed: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (user + system, all threads) per successful call, in µs. */
  readonly cpuUsPerReq: number | undefined;
  /** Server VmHWM at the end of the run (warm-up included), in bytes. */
  readonly peakRssBytes: number | undefined;
  /** Load generator CPU use over the run, in % of one core (near 100: the generator may be the bound). */
  readonly loadCpuPct: number;
  /**
   * CPU used by other processes on the machine during the run (and time the
   * hypervisor stole), in % of one core: noise that the alternation spreads
   * over all variants but that makes single runs unreliable.
   */
  readonly otherCpuPct: number | undefined;
}

/** Medians over rounds of one variant at one connection count. */
export interface ThroughputSummary {
  readonly variant: string;
  readonly label: string;
  readonly connections: number;
  readonly rounds: number;
  readonly reqPerSec: number;
  /**
   * reqPerSec over the baseline's at the same connections: the median of the
   * rounds' ratios (see {@link pairedRatios}).
   */
  readonly ratioToBare: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number;
  /**
   * 1e6 / cpuUsPerReq: the calls per second one dedicated core would serve at
   * this cost. Robust to other processes stealing the server's core, so the
   * fairer comparison on a shared machine.
   */
  readonly capacityPerSec: number;
  /** capacityPerSec over the baseline's at the same connections (median of the rounds' ratios). */
  readonly capacityRatioToBare: number;
  /** Median of the runs' peak RSS. */
  readonly peakRssBytes: number;
  /** Largest peak RSS of any round. */
  readonly maxPeakRssBytes: number;
  readonly failed: number;
  readonly loadCpuPct: number;
  /** Median over rounds of the other processes' CPU use, in % of one core. */
  readonly otherCpuPct: number;
}

async function measure(
  ctx: SuiteContext,
  variant: Variant,
  connections: number,
  round: number,
): Promise<ThroughputRun> {
  const dir = join(ctx.workDir, `${variant.id}-c${connections}-r${round}`);
  mkdirSync(dir, { recursive: true });
  const server = await spawnServer(variant.server, serverConfig(variant, dir), ctx.pinning);
  try {
    const handle = variant.server === 'leasegate' ? await openLeasegateHandle(server.port) : server.handle;
    const load = await loader(variant, server, handle, connections);
    let result: LoadResult;
    let cpu0: number | undefined;
    let cpu1: number | undefined;
    let self: NodeJS.CpuUsage;
    let noise: NoiseMeter | undefined;
    let otherCpuPct: number | undefined;
    try {
      await load.run(ctx.settings.warmupSeconds);
      noise = startNoiseMeter([server.pid]);
      cpu0 = cpuMicros(server.pid);
      const self0 = process.cpuUsage();
      result = await load.run(ctx.settings.seconds);
      cpu1 = cpuMicros(server.pid);
      self = process.cpuUsage(self0);
      otherCpuPct = noise.stop();
    } finally {
      load.close();
    }
    const rss = peakRssBytes(server.pid);
    const serverMicros = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
    const selfMicros = self.user + self.system;
    return {
      variant: variant.id,
      connections,
      round,
      ok: result.ok,
      failed: result.failed,
      reqPerSec: result.ok / result.seconds,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      cpuUsPerReq: serverMicros !== undefined && result.ok > 0 ? serverMicros / result.ok : undefined,
      peakRssBytes: rss,
      loadCpuPct: (selfMicros / (result.seconds * 1e6)) * 100,
      otherCpuPct,
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs every variant at every connection count, `rounds` times, alternating variants. */
export async function runThroughput(
  ctx: SuiteContext,
  only: readonly Variant[] = variants,
): Promise<ThroughputRun[]> {
  const runs: ThroughputRun[] = [];
  const { rounds, connections } = ctx.settings;
  for (let round = 1; round <= rounds; round++) {
    for (const c of connections) {
      for (const variant of only) {
        const run = await measureQuietly(() => measure(ctx, variant, c, round), {
          maxNoisePct: ctx.settings.maxNoisePct,
          retries: ctx.settings.noiseRetries,
          budget: ctx.quietBudget,
          log: ctx.log,
          label: `${variant.label} c=${c}`,
        });
        runs.push(run);
        ctx.log(
          `  round ${round}/${rounds}  c=${String(c).padStart(3)}  ${variant.label.padEnd(30)} ` +
            `${run.reqPerSec.toFixed(0).padStart(6)} req/s  p99 ${run.p99Ms.toFixed(2)} ms` +
            (run.otherCpuPct !== undefined ? `  other CPU ${run.otherCpuPct.toFixed(0)}%` : '') +
            (run.failed > 0 ? `  (${run.failed} failed)` : ''),
        );
      }
    }
  }
  return runs;
}

const nums = (values: readonly (number | undefined)[]): number[] =>
  values.filter((v): v is number => v !== undefined);

/**
 * The ratio `metric(a) / metric(b)` in each round where both variants ran at
 * `connections`, in round order. A variant's rounds run back to back with the
 * others' (A B A B), so a ratio within a round compares runs seconds apart,
 * under the same state of a shared machine; on a host whose speed swings 2x
 * within minutes, the median of these ratios is steadier than the ratio of
 * the two variants' medians, which may come from different rounds.
 */
export function pairedRatios(
  runs: readonly ThroughputRun[],
  a: string,
  b: string,
  connections: number,
  metric: (run: ThroughputRun) => number | undefined,
): number[] {
  const ratios: number[] = [];
  for (const mine of runs) {
    if (mine.variant !== a || mine.connections !== connections) continue;
    const other = runs.find(
      (r) => r.variant === b && r.connections === connections && r.round === mine.round,
    );
    const x = metric(mine);
    const y = other === undefined ? undefined : metric(other);
    if (x !== undefined && y !== undefined && y > 0) ratios.push(x / y);
  }
  return ratios;
}

/** Medians over rounds, with each variant's ratio to the baseline (the first variant) at the same connections. */
export function summariseThroughput(
  runs: readonly ThroughputRun[],
  only: readonly Variant[] = variants,
): ThroughputSummary[] {
  const summaries: ThroughputSummary[] = [];
  const connections = [...new Set(runs.map((r) => r.connections))];
  const baseline = only[0]?.id;
  for (const c of connections) {
    for (const variant of only) {
      const mine = runs.filter((r) => r.variant === variant.id && r.connections === c);
      if (mine.length === 0) continue;
      const reqPerSec = median(mine.map((r) => r.reqPerSec));
      const rss = nums(mine.map((r) => r.peakRssBytes));
      const cost = median(nums(mine.map((r) => r.cpuUsPerReq)));
      summaries.push({
        variant: variant.id,
        label: variant.label,
        connections: c,
        rounds: mine.length,
        reqPerSec,
        ratioToBare: median(pairedRatios(runs, variant.id, baseline ?? '', c, (r) => r.reqPerSec)),
        p50Ms: median(mine.map((r) => r.p50Ms)),
        p99Ms: median(mine.map((r) => r.p99Ms)),
        cpuUsPerReq: cost,
        capacityPerSec: 1e6 / cost,
        capacityRatioToBare: median(pairedRatios(runs, baseline ?? '', variant.id, c, (r) => r.cpuUsPerReq)),
        peakRssBytes: median(rss),
        maxPeakRssBytes: rss.length > 0 ? Math.max(...rss) : Number.NaN,
        failed: mine.reduce((sum, r) => sum + r.failed, 0),
        loadCpuPct: median(mine.map((r) => r.loadCpuPct)),
        otherCpuPct: median(nums(mine.map((r) => r.otherCpuPct))),
      });
    }
  }
  return summaries;
}
