/**
 * The other issues' benchmarks (bench/leases.ts, bench/idempotency-memory.ts)
 * are standalone scripts; the suite spawns them as sections of their own and
 * keeps what they print (each also writes its own JSON under bench/results/).
 * They run on every core (not on the load generator's) with --expose-gc
 * (memory benchmarks need it), and get LEASEGATE_BENCH_QUICK=1 under --quick
 * (bench/leases.ts then opens 10 000 handles, not 100 000).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from '../pinning.js';
import { extension, loaderFlags } from '../servers/spawn.js';
import type { SuiteContext } from '../suite-context.js';

/** The companion scripts, by name (bench/<name>.ts). */
export const companionScripts = ['leases', 'idempotency-memory'] as const;

/** What one companion run left. */
export interface CompanionResult {
  readonly name: string;
  readonly exitCode: number | null;
  readonly seconds: number;
  readonly output: string;
}

async function runCompanion(ctx: SuiteContext, name: string): Promise<CompanionResult> {
  const script = fileURLToPath(new URL(`../${name}${extension}`, import.meta.url));
  ctx.log(`  ${name}: running ${script}`);
  const command = pinnedCommand(ctx.pinning, ctx.pinning.allCores, [
    process.execPath,
    '--expose-gc',
    ...loaderFlags,
    script,
  ]);
  const started = performance.now();
  const child = spawn(command.file, command.args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(ctx.quick ? { LEASEGATE_BENCH_QUICK: '1' } : {}) },
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    // Indent the script's lines under the section heading; a chunk may end mid-line.
    const atLineStart = output === '' || output.endsWith('\n');
    output += chunk;
    process.stdout.write((atLineStart ? '    ' : '') + chunk.replace(/\n(?=.)/g, '\n    '));
  });
  const exitCode = await new Promise<number | null>((resolve) => {
    child.on('close', (code) => resolve(code));
    child.on('error', () => resolve(null));
  });
  const seconds = (performance.now() - started) / 1000;
  return { name, exitCode, seconds, output };
}

/** Runs each companion script, one after the other. */
export async function runCompanions(ctx: SuiteContext): Promise<CompanionResult[]> {
  const results: CompanionResult[] = [];
  for (const name of companionScripts) results.push(await runCompanion(ctx, name));
  return results;
}
