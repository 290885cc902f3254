/**
 * The other issues' benchmarks (bench/leases.ts, bench/idempotency-memory.ts)
 * are standalone scripts; the suite spawns their compiled form as sections of
 * their own, once they exist, and keeps what they print. They run on every
 * core (not on the load generator's) with --expose-gc (memory benchmarks
 * need it), and get LEASEGATE_BENCH_QUICK=1 under --quick. When a script's
 * last output line is JSON, it is kept as its result.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from '../pinning.js';
import type { SuiteContext } from '../suite-context.js';

/** The companion scripts, by name (bench/<name>.ts). */
export const companionScripts = ['leases', 'idempotency-memory'] as const;

/** What one companion run left. */
export interface CompanionResult {
  readonly name: string;
  /** False when the script does not exist yet. */
  readonly ran: boolean;
  readonly exitCode: number | null;
  readonly seconds: number;
  readonly output: string;
  /** The last output line, when it parses as JSON. */
  readonly result?: unknown;
}

const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const loaderFlags = extension === '.ts' ? ['--import', 'tsx'] : [];

function lastJsonLine(output: string): unknown {
  const last = output.trimEnd().split('\n').at(-1)?.trim() ?? '';
  if (!last.startsWith('{') && !last.startsWith('[')) return undefined;
  try {
    return JSON.parse(last);
  } catch {
    return undefined;
  }
}

async function runCompanion(ctx: SuiteContext, name: string): Promise<CompanionResult> {
  const script = fileURLToPath(new URL(`../${name}${extension}`, import.meta.url));
  if (!existsSync(script)) {
    ctx.log(`  ${name}: not there yet (${script}), skipped`);
    return { name, ran: false, exitCode: null, seconds: 0, output: '' };
  }
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
  const result = lastJsonLine(output);
  return { name, ran: true, exitCode, seconds, output, ...(result !== undefined ? { result } : {}) };
}

/** Runs every companion script that exists, one after the other. */
export async function runCompanions(ctx: SuiteContext): Promise<CompanionResult[]> {
  const results: CompanionResult[] = [];
  for (const name of companionScripts) results.push(await runCompanion(ctx, name));
  return results;
}
