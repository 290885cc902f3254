/**
 * `npm run bench`: the benchmark suite of issue 5. Servers run as child
 * processes pinned to core 0, the load generator (this process) on core 1;
 * variants alternate, figures are medians over rounds, and a ratio between
 * two variants is the median of their ratios within each round. Tables go to the
 * console, everything to bench/results/bench-<time>.json (and latest.json).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseSuiteOptions, usage } from './options.js';
import { pinLoadGenerator } from './pinning.js';
import { type ProfileResult, runProfiles } from './profile/run-profile.js';
import { formatProfileSummary } from './profile/summarise.js';
import { QuietBudget } from './quiet.js';
import { checkGoals } from './report/goals.js';
import { formatGoals, formatSequential, formatThroughput } from './report/print.js';
import { repositoryRoot } from './repository-root.js';
import { type CompanionResult, runCompanions } from './sections/companions.js';
import { formatInstructions, type InstructionsResult, runInstructions } from './sections/instructions.js';
import { runSequential, type SequentialResult } from './sections/sequential.js';
import { runThroughput, summariseThroughput, type ThroughputRun } from './sections/throughput.js';
import type { SuiteContext } from './suite-context.js';

function gitRevision(root: string): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], {
        cwd: root,
        encoding: 'utf8',
        stdio: 'pipe',
      }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return undefined;
  }
}

function heading(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 70 - title.length))}`);
}

async function main(): Promise<void> {
  const options = parseSuiteOptions(process.argv.slice(2));
  if (options === 'help') {
    console.log(usage);
    return;
  }
  const root = repositoryRoot();
  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const workDir = mkdtempSync(join(resultsDir, '.work-'));
  const pinning = pinLoadGenerator();
  const started = new Date();
  const revision = gitRevision(root);
  const ctx: SuiteContext = {
    settings: options.settings,
    pinning,
    workDir,
    resultsDir,
    quick: options.quick,
    quietBudget: new QuietBudget(options.settings.quietBudgetSeconds),
    log: (message) => console.log(message),
  };
  const cpu = cpus();
  const host = {
    cpus: cpu.length,
    model: cpu[0]?.model ?? 'unknown',
    node: process.version,
    kernel: release(),
  };
  console.log(`leasegate bench ${options.quick ? '(quick) ' : ''}at ${revision ?? 'unknown revision'}`);
  console.log(`${host.cpus} x ${host.model}, node ${host.node}, linux ${host.kernel}`);
  console.log(`pinning: ${pinning.note}`);
  console.log(`settings: ${JSON.stringify(options.settings)}`);

  let throughputRuns: ThroughputRun[] = [];
  let sequential: SequentialResult | undefined;
  let companions: CompanionResult[] = [];
  let instructions: InstructionsResult | undefined;
  let profiles: ProfileResult[] = [];
  try {
    if (options.sections.has('throughput')) {
      heading('throughput (autocannon / grpc-js load, 64-byte lines)');
      throughputRuns = await runThroughput(ctx);
    }
    if (options.sections.has('sequential')) {
      heading('sequential latency (concurrency 1)');
      sequential = await runSequential(ctx);
    }
    if (options.sections.has('instructions')) {
      heading('instructions per call (valgrind callgrind, leasegate with and without keys)');
      instructions = await runInstructions(ctx);
    }
    if (options.sections.has('companions')) {
      heading('companion benchmarks (bench/leases.ts, bench/idempotency-memory.ts)');
      companions = await runCompanions(ctx);
    }
    if (options.sections.has('profile')) {
      heading('profiles (node --cpu-prof, 32 connections)');
      profiles = await runProfiles(ctx, root);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  const throughput = summariseThroughput(throughputRuns);
  const goals = checkGoals(
    throughputRuns,
    throughput,
    sequential?.summary ?? [],
    instructions,
    sequential?.fdatasync,
  );
  heading("results (medians over rounds; ratios: median of the rounds' ratios)");
  if (throughput.length > 0) {
    console.log(formatThroughput(throughput));
    const noisy = throughput.filter((r) => r.otherCpuPct > 10);
    if (noisy.length > 0) {
      console.log(
        `note: other processes used > 10% of a core during ${noisy.length} of ${throughput.length} rows ` +
          '(other CPU %): the machine was shared, treat those figures with care',
      );
    }
    console.log('');
  }
  if (sequential) console.log(`${formatSequential(sequential)}\n`);
  if (instructions) console.log(`${formatInstructions(instructions)}\n`);
  console.log(formatGoals(goals));
  for (const c of companions) {
    console.log(
      `companion ${c.name}: exit ${c.exitCode}, ${c.seconds.toFixed(1)} s (its output is above and in the JSON)`,
    );
  }
  for (const profile of profiles) {
    heading(`profile summary: ${profile.label}`);
    console.log(
      `${profile.file}\n${profile.reqPerSec.toFixed(0)} req/s under the profiler` +
        (profile.otherCpuPct !== undefined
          ? `, other processes ${profile.otherCpuPct.toFixed(0)}% of a core`
          : ''),
    );
    console.log(formatProfileSummary(profile.summary));
  }

  const finished = new Date();
  const report = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    revision,
    host,
    pinning,
    quick: options.quick,
    settings: options.settings,
    throughput: { summary: throughput, runs: throughputRuns },
    sequential,
    instructions,
    goals,
    companions,
    profiles,
  };
  const file = join(resultsDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(file, json);
  writeFileSync(join(resultsDir, 'latest.json'), json);
  console.log(
    `\nresults: ${file} (and bench/results/latest.json); took ${((+finished - +started) / 1000).toFixed(0)} s`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
