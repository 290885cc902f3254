/** The issue's goals, checked against the figures (the report prints them beside the tables). */
import type { InstructionsResult } from '../sections/instructions.js';
import type { FsyncProbe, SequentialSummary } from '../sections/sequential.js';
import type { ThroughputSummary } from '../sections/throughput.js';

/** One goal and how the run did. */
export interface GoalCheck {
  readonly goal: string;
  readonly measured: string;
  /** undefined when the run did not measure it. */
  readonly met: boolean | undefined;
}

const find = (rows: readonly ThroughputSummary[], variant: string, connections: number) =>
  rows.find((r) => r.variant === variant && r.connections === connections);

/** Checks every goal the run has figures for. */
export function checkGoals(
  throughput: readonly ThroughputSummary[],
  sequential: readonly SequentialSummary[],
  instructions?: InstructionsResult,
  fdatasync?: FsyncProbe,
): GoalCheck[] {
  const goals: GoalCheck[] = [];
  const keyed = find(throughput, 'leasegate-keys', 32);
  const plain = find(throughput, 'leasegate', 32);
  const cpuCost = keyed && plain ? (keyed.cpuUsPerReq / plain.cpuUsPerReq - 1) * 100 : undefined;
  goals.push({
    goal: 'a unique Idempotency-Key costs <= 10% (CPU us per call at 32 connections)',
    measured: cpuCost === undefined ? 'not measured' : `${cpuCost.toFixed(1)} %`,
    met: cpuCost === undefined ? undefined : cpuCost <= 10,
  });
  const keyCost = instructions?.keyCostPct;
  goals.push({
    goal: 'the same in main-thread instructions per call (callgrind)',
    measured: keyCost === undefined ? 'not measured' : `${keyCost.toFixed(1)} %`,
    met: keyCost === undefined ? undefined : keyCost <= 10,
  });
  const grpc = find(throughput, 'grpc', 32);
  goals.push({
    goal: 'leasegate RemotePrint + key >= 1.0x bare Fastify at 32 connections',
    measured: keyed ? `${keyed.ratioToBare.toFixed(2)}x` : 'not measured',
    met: keyed ? keyed.ratioToBare >= 1 : undefined,
  });
  goals.push({
    goal: 'leasegate RemotePrint + key >= 3x grpc-js at 32 connections',
    measured: keyed && grpc ? `${(keyed.reqPerSec / grpc.reqPerSec).toFixed(2)}x` : 'not measured',
    met: keyed && grpc ? keyed.reqPerSec >= 3 * grpc.reqPerSec : undefined,
  });
  goals.push({
    goal: 'the same vs bare Fastify on CPU cost (cap: 1e6 / CPU us per call)',
    measured: keyed ? `${keyed.capacityRatioToBare.toFixed(2)}x` : 'not measured',
    met: keyed ? keyed.capacityRatioToBare >= 1 : undefined,
  });
  goals.push({
    goal: 'the same vs grpc-js on CPU cost',
    measured: keyed && grpc ? `${(keyed.capacityPerSec / grpc.capacityPerSec).toFixed(2)}x` : 'not measured',
    met: keyed && grpc ? keyed.capacityPerSec >= 3 * grpc.capacityPerSec : undefined,
  });
  const seq = sequential.find((s) => s.variant === 'client-fsync-never');
  goals.push({
    goal: 'typed client sequential p50 <= 0.25 ms (fsync never)',
    measured: seq ? `${seq.p50Ms.toFixed(3)} ms` : 'not measured',
    met: seq ? seq.p50Ms <= 0.25 : undefined,
  });
  // The anchor beside it: one HTTP round trip with an append on this machine, with no leasegate in it.
  const bare = sequential.find((s) => s.variant === 'bare-undici');
  goals.push({
    goal: 'typed client sequential p99 <= 1 ms (fsync never)',
    measured: seq
      ? `${seq.p99Ms.toFixed(3)} ms${bare ? ` (bare Fastify + raw undici ${bare.p99Ms.toFixed(3)})` : ''}`
      : 'not measured',
    met: seq ? seq.p99Ms <= 1 : undefined,
  });
  // Like for like: the client's p99 against the disk's p99, both measured in this run.
  const batch = sequential.find((s) => s.variant === 'client-fsync-batch');
  const within = batch && fdatasync ? batch.p99Ms - fdatasync.p99Ms : undefined;
  goals.push({
    goal: "the same with fsync batch, within 2 ms of the disk's fdatasync p99",
    measured:
      batch && fdatasync && within !== undefined
        ? `${batch.p99Ms.toFixed(3)} ms (${within >= 0 ? '+' : ''}${within.toFixed(3)})`
        : 'not measured',
    met: within === undefined ? undefined : within <= 2,
  });
  for (const variant of ['leasegate', 'leasegate-keys']) {
    const row = find(throughput, variant, 128);
    goals.push({
      goal: `${row?.label ?? variant} peak RSS <= 120 MiB at 128 connections`,
      measured: row ? `${(row.maxPeakRssBytes / 1_048_576).toFixed(1)} MiB (max of rounds)` : 'not measured',
      met: row ? row.maxPeakRssBytes <= 120 * 1_048_576 : undefined,
    });
  }
  return goals;
}
