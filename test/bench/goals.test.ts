import { describe, expect, it } from 'vitest';
import { checkGoals } from '../../bench/report/goals.js';
import { pairedRatios, summariseThroughput, type ThroughputRun } from '../../bench/sections/throughput.js';

function run(variant: string, round: number, cpuUsPerReq: number, connections = 32): ThroughputRun {
  return {
    variant,
    connections,
    round,
    ok: 100_000,
    failed: 0,
    reqPerSec: 1e6 / cpuUsPerReq,
    p50Ms: 1,
    p99Ms: 2,
    cpuUsPerReq,
    peakRssBytes: 90 * 1_048_576,
    loadCpuPct: 50,
    otherCpuPct: 1,
  };
}

/** CPU us a call of each variant, round by round: the 32-connection figures of a real run on this host. */
const measured: Record<string, number[]> = {
  bare: [52.0, 54.8, 98.8, 90.3, 94.5],
  leasegate: [40.1, 39.9, 79.6, 72.6, 60.9],
  'leasegate-keys': [47.5, 45.2, 94.1, 81.6, 82.5],
  grpc: [106.4, 148.1, 126.1, 152.2, 160.9],
};
const runs = Object.entries(measured).flatMap(([variant, costs]) =>
  costs.map((c, i) => run(variant, i + 1, c)),
);
const cost = (r: ThroughputRun) => r.cpuUsPerReq;
const goal = (runs: ThroughputRun[], start: string) =>
  checkGoals(runs, summariseThroughput(runs), []).find((g) => g.goal.startsWith(start));

describe('bench ratios between variants', () => {
  it('pairs the runs of one round, in round order', () => {
    const ratios = pairedRatios(runs, 'leasegate-keys', 'leasegate', 32, cost);
    expect(ratios.map((r) => r.toFixed(3))).toEqual(['1.185', '1.133', '1.182', '1.124', '1.355']);
    expect(pairedRatios(runs, 'leasegate-keys', 'leasegate', 128, cost)).toEqual([]);
    const gap = runs.filter((r) => !(r.variant === 'leasegate' && r.round === 2));
    expect(pairedRatios(gap, 'leasegate-keys', 'leasegate', 32, cost)).toHaveLength(4);
  });

  it("reports a key's cost as the median round's, not as the ratio of two medians from different rounds", () => {
    // The host slowed down from round 3: the medians (81.6 keyed, 60.9 plain) come from rounds 4 and 5,
    // and their ratio (34.0 %) is no round's.
    const keyCost = goal(runs, 'a unique Idempotency-Key costs');
    expect(keyCost?.measured).toBe('18.2 % (rounds 18.5 13.3 18.2 12.4 35.5)');
    expect(keyCost?.met).toBe(false);
    const fast = runs.map((r) =>
      r.variant === 'leasegate-keys' ? run(r.variant, r.round, (r.cpuUsPerReq as number) * 0.9) : r,
    );
    expect(goal(fast, 'a unique Idempotency-Key costs')?.met).toBe(true);
  });

  it('gives every ratio to another variant per round', () => {
    const keyed = summariseThroughput(runs).find((s) => s.variant === 'leasegate-keys');
    // Rounds 1.09 1.21 1.05 1.11 1.15: the median is round 4's.
    expect(keyed?.ratioToBare).toBeCloseTo(90.3 / 81.6, 10);
    expect(keyed?.capacityRatioToBare).toBeCloseTo(90.3 / 81.6, 10);
    expect(keyed?.cpuUsPerReq).toBe(81.6); // the variant's own figures stay medians of its rounds
    const grpc = goal(runs, 'leasegate RemotePrint + key >= 3x grpc-js');
    expect(grpc?.measured).toBe('1.95x (rounds 2.24 3.28 1.34 1.87 1.95)');
    expect(grpc?.met).toBe(false);
  });

  it('prints the ratios of server CPU per call as figures beside the goals, without a verdict', () => {
    const figures = checkGoals(runs, summariseThroughput(runs), []).filter((g) => g.figure);
    expect(figures.map((g) => g.goal)).toEqual([
      'figure: the same vs bare Fastify on server CPU per call',
      'figure: the same vs grpc-js on server CPU per call',
    ]);
    expect(figures.every((g) => g.met === undefined && g.measured.endsWith(')'))).toBe(true);
  });
});
