/**
 * Starts a benchmark server child (`dist/bench/servers/<kind>.js`) pinned to
 * the server core, waits for its port, and stops it cleanly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { serveNodeFlags } from '../../cli/node-flags.js';
import { type Pinning, pinnedCommand } from '../pinning.js';
import type { ChildMessage, SuiteMessage } from './child-protocol.js';

/** The server children the suite knows. */
export type ServerKind = 'bare-fastify' | 'leasegate' | 'grpc';

/** A running server child. */
export interface ServerChild {
  readonly kind: ServerKind;
  readonly pid: number;
  readonly port: number;
  /** The handle id the server serves out of the box (bare Fastify, gRPC); empty for leasegate. */
  readonly handle: string;
  /** Asks the child to close and waits for it to exit (killing it after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** Extra ways to start a child. */
export interface SpawnOptions {
  /** Flags for node itself (`--cpu-prof`, ...). */
  nodeFlags?: readonly string[];
  /** A command that runs node (`valgrind --tool=callgrind ...`), before it on the command line. */
  wrapper?: readonly string[];
  /** Longest wait for the ready message, in ms. */
  readyTimeoutMs?: number;
}

// The children sit beside this file: .js in dist/, .ts when the suite runs under tsx.
export const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
/** Node flags a bench child needs to run `extension` files (tsx under tsx). */
export const loaderFlags: readonly string[] = extension === '.ts' ? ['--import', 'tsx'] : [];

/** Starts `kind` with `config` (its JSON argument) on the server core. */
export async function spawnServer(
  kind: ServerKind,
  config: object,
  pinning: Pinning,
  options: SpawnOptions = {},
): Promise<ServerChild> {
  const script = new URL(`./${kind}${extension}`, import.meta.url).pathname;
  const command = pinnedCommand(pinning, pinning.serverCores, [
    ...(options.wrapper ?? []),
    process.execPath,
    ...loaderFlags,
    // leasegate runs with the flags `leasegate serve` gets from its shebang and npm start.
    ...(kind === 'leasegate' ? serveNodeFlags : []),
    ...(options.nodeFlags ?? []),
    script,
    JSON.stringify(config),
  ]);
  const child = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  forwardNotableLines(child, kind);
  const exited = once(child, 'exit');
  const ready = await waitForReady(child, kind, options.readyTimeoutMs ?? 30_000);
  const pid = child.pid as number;
  return {
    kind,
    pid,
    port: ready.port,
    handle: ready.handle,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      if (child.connected) child.send({ type: 'stop' } satisfies SuiteMessage);
      else child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
    },
  };
}

/**
 * Passes on what a child prints, except pino lines below warn: the servers
 * keep their default log level, and their info lines (listening at ...) would
 * only clutter the tables.
 */
function forwardNotableLines(child: ChildProcess, kind: ServerKind): void {
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      let level = Number.POSITIVE_INFINITY;
      try {
        level = (JSON.parse(line) as { level?: number }).level ?? level;
      } catch {
        // Not a log line: always shown.
      }
      if (line.trim() !== '' && level >= 40) process.stderr.write(`[${kind}] ${line}\n`);
    }
  });
}

function waitForReady(child: ChildProcess, kind: ServerKind, timeoutMs: number): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${kind} server did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (message: ChildMessage) => {
      clearTimeout(timer);
      resolve(message);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${kind} server exited before it was ready (code ${code}, signal ${signal})`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
