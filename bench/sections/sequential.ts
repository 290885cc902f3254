/**
 * Sequential latency (one call at a time) of RemotePrint through the typed
 * client, beside raw undici requests to the same server (what the client adds),
 * raw undici requests to the bare Fastify append route (the anchor: what one
 * HTTP round trip with a file append costs on this machine, the floor under
 * both) and the disk's own fdatasync latency (the floor of any fsync'd write).
 * The calls are made and timed in a child process (bench/load/sequential-client.ts).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { SequentialJob, SequentialMessage, SuiteToClient } from '../load/sequential-client.js';
import { measureQuietly, startNoiseMeter } from '../quiet.js';
import { extension, loaderFlags, spawnServer } from '../servers/spawn.js';
import { median, percentilesMs, Samples } from '../stats.js';
import { benchLine, type SuiteContext } from '../suite-context.js';

/** One sequential variant. */
interface SequentialVariant {
  readonly id: string;
  readonly label: string;
  /** leasegate's fsync policy; undefined for the bare Fastify route (which never syncs). */
  readonly fsync: 'never' | 'batch' | undefined;
  readonly via: SequentialJob['via'];
}

const sequentialVariants: readonly SequentialVariant[] = [
  { id: 'client-fsync-never', label: 'typed client, fsync never', fsync: 'never', via: 'typed-client' },
  { id: 'client-fsync-batch', label: 'typed client, fsync batch', fsync: 'batch', via: 'typed-client' },
  { id: 'undici-fsync-never', label: 'raw undici, fsync never', fsync: 'never', via: 'undici' },
  { id: 'bare-undici', label: 'bare Fastify, raw undici', fsync: undefined, via: 'undici' },
];

/** One round of one variant. */
export interface SequentialRun {
  readonly variant: string;
  readonly round: number;
  readonly calls: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Other processes' CPU use during the measured calls, in % of one core. */
  readonly otherCpuPct: number | undefined;
}

/** Medians over rounds of one variant. */
export interface SequentialSummary {
  readonly variant: string;
  readonly label: string;
  readonly rounds: number;
  readonly calls: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Median of the rounds' other-process CPU use, in % of one core. */
  readonly otherCpuPct: number;
}

/** The disk's fdatasync latency after a 64-byte append. */
export interface FsyncProbe {
  readonly dir: string;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Everything the section measured. */
export interface SequentialResult {
  readonly runs: SequentialRun[];
  readonly summary: SequentialSummary[];
  readonly fdatasync: FsyncProbe;
}

/**
 * Runs the calls in a child of their own (bench/load/sequential-client.ts),
 * which inherits the suite's pinning to the load core: warm-up there, then
 * the measured calls between the noise meter's start and stop.
 */
async function clientRun(
  job: SequentialJob,
  serverPid: number,
): Promise<Omit<SequentialRun, 'variant' | 'round'>> {
  const script = new URL(`../load/sequential-client${extension}`, import.meta.url).pathname;
  const child = spawn(process.execPath, [...loaderFlags, script, JSON.stringify(job)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const next = (): Promise<SequentialMessage> =>
    Promise.race([
      once(child, 'message').then(([message]) => message as SequentialMessage),
      exited.then(([code]) => {
        throw new Error(`the sequential client exited early (code ${code})`);
      }),
    ]);
  try {
    const warm = await next();
    if (warm.type !== 'warm') throw new Error(`the sequential client sent ${warm.type} before warm`);
    const noise = startNoiseMeter([serverPid, child.pid as number]);
    child.send('go' satisfies SuiteToClient);
    const done = await next();
    const otherCpuPct = noise.stop();
    if (done.type !== 'done') throw new Error(`the sequential client sent ${done.type} instead of done`);
    child.send('bye' satisfies SuiteToClient);
    await exited;
    return { calls: done.calls, p50Ms: done.p50Ms, p99Ms: done.p99Ms, otherCpuPct };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

async function measureSequential(
  ctx: SuiteContext,
  variant: SequentialVariant,
  round: number,
): Promise<SequentialRun> {
  const dir = join(ctx.workDir, `seq-${variant.id}-r${round}`);
  mkdirSync(dir, { recursive: true });
  const server =
    variant.fsync === undefined
      ? await spawnServer('bare-fastify', { file: join(dir, 'bare.log') }, ctx.pinning)
      : await spawnServer(
          'leasegate',
          { root: join(dir, 'root'), stateDir: join(dir, 'state'), fsync: variant.fsync },
          ctx.pinning,
        );
  try {
    const run = await clientRun(
      {
        port: server.port,
        via: variant.via,
        bare: variant.fsync === undefined ? { path: '/append', handle: server.handle } : undefined,
        calls: ctx.settings.sequentialCalls,
        // A fresh server needs a few thousand calls before its hot path is optimised (p99 is JIT time before that).
        warmupCalls: ctx.settings.sequentialWarmup,
        warmupSeconds: ctx.settings.warmupSeconds,
      },
      server.pid,
    );
    return { variant: variant.id, round, ...run };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** fdatasync after a 64-byte append, on a scratch file on the repository's disk (at most ~10 s). */
export function probeFdatasync(ctx: SuiteContext): FsyncProbe {
  const file = join(ctx.workDir, 'fdatasync-probe.log');
  const fd = openSync(file, 'a');
  const samples = new Samples();
  const until = performance.now() + 10_000;
  try {
    const line = Buffer.from(benchLine);
    while (samples.length < ctx.settings.fsyncSamples && performance.now() < until) {
      writeSync(fd, line);
      const t0 = performance.now();
      fdatasyncSync(fd);
      samples.add(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return { dir: ctx.workDir, samples: samples.length, ...percentilesMs(samples) };
}

/** Runs each sequential variant `rounds` times (alternating), then the fdatasync probe. */
export async function runSequential(ctx: SuiteContext): Promise<SequentialResult> {
  const runs: SequentialRun[] = [];
  for (let round = 1; round <= ctx.settings.rounds; round++) {
    for (const variant of sequentialVariants) {
      const run = await measureQuietly(() => measureSequential(ctx, variant, round), {
        maxNoisePct: ctx.settings.maxNoisePct,
        retries: ctx.settings.noiseRetries,
        budget: ctx.quietBudget,
        log: ctx.log,
        label: variant.label,
      });
      runs.push(run);
      ctx.log(
        `  round ${round}/${ctx.settings.rounds}  ${variant.label.padEnd(28)} p50 ${run.p50Ms.toFixed(3)} ms  p99 ${run.p99Ms.toFixed(3)} ms` +
          (run.otherCpuPct !== undefined ? `  other CPU ${run.otherCpuPct.toFixed(0)}%` : ''),
      );
    }
  }
  const summary = sequentialVariants.map((variant): SequentialSummary => {
    const mine = runs.filter((r) => r.variant === variant.id);
    return {
      variant: variant.id,
      label: variant.label,
      rounds: mine.length,
      calls: mine.reduce((sum, r) => sum + r.calls, 0),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      otherCpuPct: median(mine.flatMap((r) => (r.otherCpuPct === undefined ? [] : [r.otherCpuPct]))),
    };
  });
  const fdatasync = probeFdatasync(ctx);
  ctx.log(
    `  fdatasync (64-byte append, ${fdatasync.samples} samples): p50 ${fdatasync.p50Ms.toFixed(3)} ms  p99 ${fdatasync.p99Ms.toFixed(3)} ms`,
  );
  return { runs, summary, fdatasync };
}
