/** The suite's console report: throughput, sequential latency, goals. */
import type { SequentialResult } from '../sections/sequential.js';
import type { ThroughputSummary } from '../sections/throughput.js';
import type { GoalCheck } from './goals.js';
import { fixed, mib, renderTable } from './table.js';

/**
 * The throughput table (medians over rounds; `x bare` columns: the median of
 * the ratios within each round, see pairedRatios). `cap` columns: the rate one
 * dedicated core would sustain at the measured CPU cost per call (1e6 / CPU
 * µs per call), which other processes on a shared machine disturb far less
 * than the measured rate.
 */
export function formatThroughput(rows: readonly ThroughputSummary[]): string {
  return renderTable(
    [
      'variant',
      'conns',
      'req/s',
      'x bare',
      'p50 ms',
      'p99 ms',
      'CPU us/req',
      'cap req/s',
      'cap x bare',
      'peak RSS MiB',
      'failed',
      'gen CPU %',
      'other CPU %',
    ],
    rows.map((r) => [
      r.label,
      String(r.connections),
      fixed(r.reqPerSec, 0),
      fixed(r.ratioToBare, 2),
      fixed(r.p50Ms, 3),
      fixed(r.p99Ms, 3),
      fixed(r.cpuUsPerReq, 1),
      fixed(r.capacityPerSec, 0),
      fixed(r.capacityRatioToBare, 2),
      mib(r.peakRssBytes),
      String(r.failed),
      fixed(r.loadCpuPct, 0),
      fixed(r.otherCpuPct, 0),
    ]),
  );
}

/** The sequential latency table and the fdatasync probe. */
export function formatSequential(result: SequentialResult): string {
  const { fdatasync } = result;
  return [
    renderTable(
      ['RemotePrint, concurrency 1', 'rounds', 'calls', 'p50 ms', 'p99 ms'],
      result.summary.map((s) => [
        s.label,
        String(s.rounds),
        String(s.calls),
        fixed(s.p50Ms, 3),
        fixed(s.p99Ms, 3),
      ]),
    ),
    '',
    `disk fdatasync after a 64-byte append (${fdatasync.samples} samples in ${fdatasync.dir}): ` +
      `p50 ${fixed(fdatasync.p50Ms, 3)} ms, p99 ${fixed(fdatasync.p99Ms, 3)} ms`,
  ].join('\n');
}

/** The goals with their verdicts. */
export function formatGoals(goals: readonly GoalCheck[]): string {
  return renderTable(
    ['goal', 'measured', 'verdict'],
    goals.map((g) => [
      g.goal,
      g.measured,
      g.figure ? '' : g.met === undefined ? '-' : g.met ? 'MET' : 'NOT MET',
    ]),
  );
}
