/**
 * CPU pinning with taskset (util-linux): the server children on core 0, the
 * load generator (this process) on core 1. Without taskset, or with fewer
 * than two cores, the suite still runs unpinned and says so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/** Which cores each side runs on, or why pinning is off. */
export interface Pinning {
  readonly enabled: boolean;
  /** Cores of the server children (taskset -c list). */
  readonly serverCores: string;
  /** Cores of the load generator. */
  readonly loadCores: string;
  /** Every core: for helper children that must not inherit the load generator's pinning. */
  readonly allCores: string;
  /** Why pinning is off, when it is. */
  readonly note: string;
}

/** Finds out whether taskset can pin, and pins this process (every thread) to the load generator's core. */
export function pinLoadGenerator(): Pinning {
  // The machine's cores, not this process's affinity: taskset may widen a parent's narrower mask.
  const cores = cpus().length;
  const allCores = cores > 1 ? `0-${cores - 1}` : '0';
  const off = (note: string): Pinning => ({ enabled: false, serverCores: '', loadCores: '', allCores, note });
  if (spawnSync('taskset', ['--version']).error) return off('taskset not found: pinning unavailable');
  if (cores < 2) return off(`only ${cores} core: pinning unavailable`);
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  } catch (error) {
    return off(`taskset failed (${(error as Error).message.split('\n')[0]}): pinning unavailable`);
  }
  return {
    enabled: true,
    serverCores: '0',
    loadCores: '1',
    allCores,
    note: 'servers on core 0, load generator on core 1',
  };
}

/** The command that runs `args` (a node command line) on `cores`, or unpinned when pinning is off. */
export function pinnedCommand(
  pinning: Pinning,
  cores: string,
  args: readonly string[],
): { file: string; args: string[] } {
  const [file, ...rest] = args as [string, ...string[]];
  if (!pinning.enabled) return { file, args: rest };
  return { file: 'taskset', args: ['-c', cores, file, ...rest] };
}
