/**
 * `leasegate serve` as a real child process (from the sources, through tsx),
 * for tests that kill and restart servers: the listening URL, its output, and
 * how it ended.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The repository root. */
export const repo = join(import.meta.dirname, '../..');
/** tsx's loader by absolute URL, so that children may run from any folder. */
export const tsxLoader = pathToFileURL(join(repo, 'node_modules/tsx/dist/loader.mjs')).href;

/** A `leasegate` child: its output so far, and how it ended. */
export interface LeasegateRun {
  readonly child: ChildProcess;
  out(): string;
  err(): string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A running server process. */
export interface ServerProcess extends LeasegateRun {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
}

/** Spawns `leasegate ARGS` from the sources (tsx), in `cwd`, with extra environment variables. */
export function spawnLeasegate(
  args: readonly string[],
  env: Record<string, string> = {},
  cwd?: string,
): LeasegateRun {
  const child = spawn(process.execPath, ['--import', tsxLoader, join(repo, 'cli/main.ts'), ...args], {
    ...(cwd === undefined ? {} : { cwd }),
    env: { ...process.env, LEASEGATE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, out: () => out, err: () => err, exit };
}

/** Starts `leasegate serve ARGS` and resolves once it prints its listening line. */
export async function startServerProcess(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<ServerProcess> {
  const run = spawnLeasegate(['serve', ...args], env);
  const { child, out: output, err } = run;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /leasegate listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(output());
    if (m) return { ...run, url: m[1] as string, port: Number(m[2]) };
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`leasegate exited before listening:\n${output()}\n${err()}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`leasegate did not listen within ${timeoutMs} ms:\n${output()}\n${err()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
