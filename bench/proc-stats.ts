/**
 * What the kernel knows of a server child: CPU time from /proc/<pid>/stat and
 * peak RSS (VmHWM) from /proc/<pid>/status. Linux only; elsewhere every
 * reading is undefined and the report prints a dash.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time the process has used so far, in µs (all its threads). */
export function cpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1e6) / clockTicks();
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Machine-wide CPU time so far (every core), in µs: busy (steal excluded) and stolen by the hypervisor. */
export interface MachineCpu {
  readonly busyMicros: number;
  readonly stealMicros: number;
}

/** Reads the machine-wide `cpu` line of /proc/stat. */
export function machineCpu(): MachineCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const toMicros = (ticks: number) => (ticks * 1e6) / clockTicks();
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0);
    return { busyMicros: toMicros(busy), stealMicros: toMicros(steal ?? 0) };
  } catch {
    return undefined;
  }
}

/** Descriptors of process `pid` (default: this one) open on files under `root` (a real path). */
export function descriptorsUnder(root: string, pid: number | 'self' = 'self'): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${root}/`)) n++;
    } catch {
      // Closed while we looked (readdir's own descriptor, for one).
    }
  }
  return n;
}
