/**
 * Instructions per RemotePrint in the leasegate server, without and with a
 * unique Idempotency-Key, counted by valgrind's callgrind. CPU time on this
 * kind of machine moves by tens of percent between runs of the same build (a
 * shared host); an instruction count does not move with what else the
 * machine does, so it tells what a key costs when timings cannot. It does not
 * see what memory costs in time (cache misses, page faults), which CPU time
 * does: the two figures are read together.
 *
 * The server runs under callgrind with counting off; after a warm-up load
 * counting is switched on for one load and off again (callgrind_control), and
 * each thread's count is divided by the calls answered. The main thread's
 * count is the figure. It moves less than CPU time but not by nothing: in four
 * runs on one day it read 134–141 k without a key and 153–158 k with one (a
 * key's cost 11–16 %), and one run on a host busy enough to halve the calls
 * counted read 134 k / 173 k; so read the key cost over runs. It also depends
 * on how far the JIT got: warmed for 20 000 calls instead of 3 000, one pair
 * read 118 k / 138 k. With idempotency records off the JS heap (a later day,
 * three runs) it read 137–153 k / 171–179 k (12–31 %): the key's main-thread
 * count rose (most likely its record's bytes, now copied in JavaScript; not
 * measured apart) while its GC fell (scavenges half as long), which CPU time
 * shows (a key 16 % against 18 % before) and this count does not.
 * V8's background
 * threads (TurboFan compiling, concurrent marking) add as much again and move
 * by a third: under valgrind the JIT is still compiling after the warm-up (it
 * settles after about 100 000 calls at full speed, 5 minutes under valgrind),
 * so their total is printed beside it but not judged. The warm-up lasts 10 s
 * and at least 3 000 calls (a quiet run answers ~11 000 in the 10 s), so that
 * a busy host does not leave the JIT further behind. Skipped, with a note,
 * where valgrind is not installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fixed, renderTable } from '../report/table.js';
import { spawnServer } from '../servers/spawn.js';
import type { SuiteContext } from '../suite-context.js';
import { loader, openLeasegateHandle, serverConfig, variantById } from './variants.js';

/** One variant's count. */
export interface InstructionRun {
  readonly variant: string;
  readonly label: string;
  /** Calls answered while counting. */
  readonly calls: number;
  /** On the main thread (the event loop), per call. */
  readonly instructionsPerCall: number;
  /** On every thread, per call (V8's background threads included). */
  readonly allThreadsPerCall: number;
}

/** What the section measured, or why it did not. */
export interface InstructionsResult {
  readonly runs: InstructionRun[];
  /** Main-thread instructions per keyed call over those per unkeyed call, minus one, in %. */
  readonly keyCostPct: number | undefined;
  readonly note?: string;
}

const connections = 16;

/** Whether callgrind and callgrind_control are here. */
function haveCallgrind(): boolean {
  return !spawnSync('valgrind', ['--version']).error && !spawnSync('callgrind_control', ['--version']).error;
}

/** The instruction counts of the first dump, by thread (`<out>.1-<thread>`; thread 1 is the main one). */
function dumpTotals(out: string): { main: number; all: number } {
  const dir = dirname(out);
  let main = 0;
  let all = 0;
  for (const file of readdirSync(dir)) {
    if (!file.startsWith(`${basename(out)}.1-`)) continue;
    const match = /^totals: (\d+)/m.exec(readFileSync(join(dir, file), 'utf8'));
    if (!match) throw new Error(`no totals in ${file}`);
    const count = Number(match[1]);
    all += count;
    if (file.endsWith('.1-01')) main = count;
  }
  if (main === 0) throw new Error(`no main-thread dump beside ${out}`);
  return { main, all };
}

export async function runInstructions(ctx: SuiteContext): Promise<InstructionsResult> {
  if (!haveCallgrind()) {
    const note = 'valgrind not installed (Debian package valgrind): instruction counts skipped';
    ctx.log(`  ${note}`);
    return { runs: [], keyCostPct: undefined, note };
  }
  const warmSeconds = ctx.quick ? 4 : 10;
  /** Calls the warm-up lasts for at least (then in 2 s loads, for at most a minute more). */
  const warmCalls = ctx.quick ? 1_000 : 3_000;
  const countSeconds = ctx.quick ? 4 : 10;
  const runs: InstructionRun[] = [];
  for (const id of ['leasegate', 'leasegate-keys']) {
    const variant = variantById(id);
    const dir = join(ctx.workDir, `callgrind-${id}`);
    mkdirSync(dir, { recursive: true });
    const out = join(dir, 'callgrind.out');
    const server = await spawnServer('leasegate', serverConfig(variant, dir), ctx.pinning, {
      wrapper: [
        'valgrind',
        '--tool=callgrind',
        '--instr-atstart=no',
        '--separate-threads=yes',
        `--callgrind-out-file=${out}`,
        `--log-file=${join(dir, 'valgrind.log')}`,
      ],
      readyTimeoutMs: 180_000,
    });
    try {
      const handle = await openLeasegateHandle(server.port);
      const load = await loader(variant, server, handle, connections);
      let calls: number;
      let warmed: number;
      try {
        warmed = (await load.run(warmSeconds)).ok;
        const extraUntil = performance.now() + 60_000;
        while (warmed < warmCalls && performance.now() < extraUntil) warmed += (await load.run(2)).ok;
        const control = (...args: string[]) =>
          execFileSync('callgrind_control', [...args, String(server.pid)], { stdio: 'ignore' });
        control('-i', 'on');
        calls = (await load.run(countSeconds)).ok;
        control('-i', 'off');
        control('-d');
      } finally {
        load.close();
      }
      const totals = dumpTotals(out);
      const instructionsPerCall = totals.main / calls;
      const allThreadsPerCall = totals.all / calls;
      runs.push({ variant: id, label: variant.label, calls, instructionsPerCall, allThreadsPerCall });
      ctx.log(
        `  ${variant.label}: ${calls} calls counted after ${warmed} to warm up, ${Math.round(instructionsPerCall)} instructions per call` +
          ` on the main thread, ${Math.round(allThreadsPerCall)} on all`,
      );
    } finally {
      await server.stop(30_000);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const [plain, keyed] = runs;
  const keyCostPct =
    plain && keyed ? (keyed.instructionsPerCall / plain.instructionsPerCall - 1) * 100 : undefined;
  return { runs, keyCostPct };
}

/** The section's table. */
export function formatInstructions(result: InstructionsResult): string {
  if (result.runs.length === 0) return `instructions per call: ${result.note ?? 'not measured'}`;
  const table = renderTable(
    [
      `RemotePrint under callgrind, ${connections} connections`,
      'calls',
      'main thread/call',
      'all threads/call',
    ],
    result.runs.map((r) => [
      r.label,
      String(r.calls),
      fixed(r.instructionsPerCall, 0),
      fixed(r.allThreadsPerCall, 0),
    ]),
  );
  return `${table}\na key costs ${fixed(result.keyCostPct, 1)} % more main-thread instructions per call`;
}
