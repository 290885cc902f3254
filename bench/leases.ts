/**
 * Leases at scale (issue 3): open 100 000 handles through HTTP, each under a
 * lease of its own (and, as a second scenario, all under one shared lease),
 * let every lease expire at the same instant, and measure: open rate, server
 * RSS and heap per idle handle, time from expiry to every handle and
 * descriptor closed, and the server's event-loop delay during the sweep.
 *
 * The server runs in a child process (this file, forked with --expose-gc) so
 * that its memory is its own. Its clock is the real one plus a skew the bench
 * can set: after the opens, the skew jumps to the latest `expiresAt`, so all
 * leases are due together and the real expiry timer has to sweep them all.
 *
 *   npx tsx bench/leases.ts [--handles 100000] [--connections 64] [--scenario solo|shared|both]
 *   node --expose-gc dist/bench/leases.js   (after npm run build)
 *
 * Prints a table with the goals beside the figures and writes bench/results/leases.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { descriptorsUnder } from './proc-stats.js';
import { repositoryRoot } from './repository-root.js';

/** Which lease layout to measure. */
export type LeasesScenario = 'solo' | 'shared';

/** Settings of one run. */
export interface LeasesBenchOptions {
  /** Handles to open (the issue asks 100 000). */
  readonly handles: number;
  /** HTTP connections of the load generator. */
  readonly connections: number;
  /** Opens in flight at once. */
  readonly concurrency: number;
  readonly scenarios: readonly LeasesScenario[];
}

/** Figures of one scenario. */
export interface LeasesScenarioResult {
  readonly scenario: LeasesScenario;
  readonly handles: number;
  readonly openSeconds: number;
  readonly opensPerSecond: number;
  readonly rssBytesPerHandle: number;
  readonly heapBytesPerHandle: number;
  /** Descriptors under the root while all handles were open (bounded by maxDescriptors). */
  readonly descriptorsWhileOpen: number;
  readonly maxDescriptors: number;
  /** From the instant every lease was due to every handle and descriptor closed. */
  readonly expiryToClosedMs: number;
  readonly eventLoopDelayP50Ms: number;
  readonly eventLoopDelayP99Ms: number;
  readonly eventLoopDelayMaxMs: number;
  /** Event-loop delay of the same server running 5 ms slices of pure computation for 1 s: what the machine adds. */
  readonly noiseFloorP99Ms: number;
  readonly noiseFloorMaxMs: number;
  readonly handlesAfter: number;
  readonly descriptorsAfter: number;
  readonly tombstonesAfter: number;
}

/** The goals of issue 3. */
export const leasesGoals = {
  rssBytesPerHandle: 1024,
  expiryToClosedMs: 1000,
  eventLoopDelayP99Ms: 20,
} as const;

const defaults: LeasesBenchOptions = {
  // `npm run bench -- --quick` asks for a smoke run: 10 000 handles.
  handles: process.env.LEASEGATE_BENCH_QUICK === '1' ? 10_000 : 100_000,
  connections: 64,
  concurrency: 256,
  scenarios: ['solo', 'shared'],
};

// ---------------------------------------------------------------- server child

type ToServer = { type: 'snapshot' } | { type: 'noise' } | { type: 'expire'; at: number } | { type: 'exit' };
type FromServer =
  | { type: 'ready'; port: number; maxDescriptors: number }
  | { type: 'snapshot'; rss: number; heapUsed: number; handles: number; descriptors: number }
  | { type: 'noise'; p99: number; max: number; sink: number }
  | {
      type: 'expired';
      closedMs: number;
      p50: number;
      p99: number;
      max: number;
      handles: number;
      descriptors: number;
      tombstones: number;
    };

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the server child needs --expose-gc');
  gc();
  gc();
}

async function serverChild(): Promise<void> {
  const { buildServer } = await import('../server/index.js');
  const send = (message: FromServer) => process.send?.(message);
  let skew = 0;
  const clock = { now: () => Date.now() + skew };
  const dir = await mkdtemp(join(tmpdir(), 'leasegate-bench-leases-'));
  const root = join(dir, 'root');
  for (let d = 0; d < 100; d++) await mkdir(join(root, `d${d}`), { recursive: true });
  const app = await buildServer({ root, logLevel: 'silent', clock, leaseMaxTtlMs: 600_000 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { handles, leases } = app.leasegate;
  const rootPath = await realpath(root);

  process.on('message', (message: ToServer) => {
    if (message.type === 'snapshot') {
      collectGarbage();
      const m = process.memoryUsage();
      send({
        type: 'snapshot',
        rss: m.rss,
        heapUsed: m.heapUsed,
        handles: handles.size,
        descriptors: descriptorsUnder(rootPath),
      });
    } else if (message.type === 'noise') {
      // The machine's own event-loop delay under 5 ms slices of pure computation: the floor under the sweep's figure.
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const end = performance.now() + 1_000;
      let x = 0;
      const slice = () => {
        const until = performance.now() + 5;
        while (performance.now() < until) x += Math.sqrt(x + 1);
        if (performance.now() < end) setImmediate(slice);
        else {
          delay.disable();
          send({ type: 'noise', p99: delay.percentile(99) / 1e6, max: delay.max / 1e6, sink: x });
        }
      };
      slice();
    } else if (message.type === 'expire') {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      skew = message.at - Date.now();
      const start = performance.now();
      delay.enable();
      const poll = setInterval(() => {
        if (handles.size > 0 || handles.pool.size > 0 || leases.size > 0) return;
        const closedMs = performance.now() - start;
        delay.disable();
        clearInterval(poll);
        send({
          type: 'expired',
          closedMs,
          p50: delay.percentile(50) / 1e6,
          p99: delay.percentile(99) / 1e6,
          max: delay.max / 1e6,
          handles: handles.size,
          descriptors: descriptorsUnder(rootPath),
          tombstones: leases.tombstones.size,
        });
      }, 1);
    } else {
      void app.close().then(async () => {
        await rm(dir, { recursive: true, force: true });
        process.exit(0);
      });
    }
  });
  send({
    type: 'ready',
    port: (app.server.address() as AddressInfo).port,
    maxDescriptors: app.leasegate.options.maxDescriptors,
  });
}

// ------------------------------------------------------------------ load side

class ServerProcess {
  private readonly waiting: ((message: FromServer) => void)[] = [];
  private constructor(private readonly child: ReturnType<typeof fork>) {
    child.on('message', (message: FromServer) => this.waiting.shift()?.(message));
  }

  static async start(): Promise<{ server: ServerProcess; ready: Extract<FromServer, { type: 'ready' }> }> {
    const child = fork(fileURLToPath(import.meta.url), ['--server-child'], {
      // LEASEGATE_BENCH_SERVER_FLAGS adds node flags to the server child (e.g. --trace-gc when a figure needs explaining).
      execArgv: [
        ...process.execArgv,
        '--expose-gc',
        ...(process.env.LEASEGATE_BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const server = new ServerProcess(child);
    const ready = await server.next();
    if (ready.type !== 'ready') throw new Error(`unexpected message from the server: ${ready.type}`);
    return { server, ready };
  }

  next(): Promise<FromServer> {
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.child.once('exit', (code) => reject(new Error(`the server child exited (${code})`)));
    });
  }

  async ask<T extends FromServer['type']>(
    message: ToServer,
    reply: T,
  ): Promise<Extract<FromServer, { type: T }>> {
    const answer = this.next();
    this.child.send(message);
    const got = await answer;
    if (got.type !== reply) throw new Error(`expected ${reply} from the server, got ${got.type}`);
    return got as Extract<FromServer, { type: T }>;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ type: 'exit' } satisfies ToServer);
    await exited;
  }
}

async function call(pool: Pool, method: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await pool.request({
    method: 'POST',
    path: `/v1/${method}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.body.json()) as Record<string, unknown>;
  if (res.statusCode !== 200) throw new Error(`${method}: ${res.statusCode} ${JSON.stringify(json)}`);
  return json;
}

/** Runs `count` calls of `one(i)` with `concurrency` in flight. */
async function inParallel(
  count: number,
  concurrency: number,
  one: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function runScenario(
  scenario: LeasesScenario,
  options: LeasesBenchOptions,
): Promise<LeasesScenarioResult> {
  const { server, ready } = await ServerProcess.start();
  const pool = new Pool(`http://127.0.0.1:${ready.port}`, {
    connections: options.connections,
    pipelining: 1,
  });
  try {
    // Warm-up: JIT, connection setup and the first growth of every table, then forgotten.
    await inParallel(2_000, options.concurrency, async (i) => {
      const { handle } = await call(pool, 'Files/RemoteOpen', {
        path: `/d0/warm-${i}`,
        mode: 'append',
        create: true,
      });
      await call(pool, 'Files/RemoteClose', { handle });
    });
    const before = await server.ask({ type: 'snapshot' }, 'snapshot');

    const ttlMs = 600_000;
    const shared =
      scenario === 'shared'
        ? ((await call(pool, 'Leases/Grant', { ttlMs })).lease as { leaseId: string }).leaseId
        : undefined;
    let latest = 0;
    const started = performance.now();
    await inParallel(options.handles, options.concurrency, async (i) => {
      const request = { path: `/d${i % 100}/f${i}`, mode: 'append', create: true, leaseTtlMs: ttlMs };
      const { lease } = await call(
        pool,
        'Files/RemoteOpen',
        shared ? { ...request, leaseId: shared } : request,
      );
      latest = Math.max(latest, Date.parse((lease as { expiresAt: string }).expiresAt));
    });
    const openSeconds = (performance.now() - started) / 1000;
    const after = await server.ask({ type: 'snapshot' }, 'snapshot');
    if (after.handles !== options.handles)
      throw new Error(`${after.handles} handles open, expected ${options.handles}`);

    const noise = await server.ask({ type: 'noise' }, 'noise');
    const expired = await server.ask({ type: 'expire', at: latest }, 'expired');
    return {
      scenario,
      handles: options.handles,
      openSeconds,
      opensPerSecond: options.handles / openSeconds,
      rssBytesPerHandle: (after.rss - before.rss) / options.handles,
      heapBytesPerHandle: (after.heapUsed - before.heapUsed) / options.handles,
      descriptorsWhileOpen: after.descriptors,
      maxDescriptors: ready.maxDescriptors,
      expiryToClosedMs: expired.closedMs,
      eventLoopDelayP50Ms: expired.p50,
      eventLoopDelayP99Ms: expired.p99,
      eventLoopDelayMaxMs: expired.max,
      noiseFloorP99Ms: noise.p99,
      noiseFloorMaxMs: noise.max,
      handlesAfter: expired.handles,
      descriptorsAfter: expired.descriptors,
      tombstonesAfter: expired.tombstones,
    };
  } finally {
    await pool.close();
    await server.stop();
  }
}

/** Runs the leases benchmark; returns the figures of each scenario. */
export async function runLeasesBench(
  given: Partial<LeasesBenchOptions> = {},
): Promise<LeasesScenarioResult[]> {
  const options = { ...defaults, ...given };
  const results: LeasesScenarioResult[] = [];
  for (const scenario of options.scenarios) results.push(await runScenario(scenario, options));
  return results;
}

/** The results as a table, goals beside the figures. */
export function formatLeasesResults(results: readonly LeasesScenarioResult[]): string {
  const n = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits });
  const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');
  const rows: string[][] = [['scenario', 'figure', 'value', 'goal', '']];
  for (const r of results) {
    const name =
      r.scenario === 'solo' ? `${n(r.handles)} handles, a lease each` : `${n(r.handles)} handles, one lease`;
    rows.push(
      [name, 'time to open', `${n(r.openSeconds, 1)} s (${n(r.opensPerSecond)} opens/s)`, '', ''],
      [
        '',
        'server RSS per idle handle',
        `${n(r.rssBytesPerHandle)} B`,
        `≤ ${n(leasesGoals.rssBytesPerHandle)} B`,
        mark(r.rssBytesPerHandle <= leasesGoals.rssBytesPerHandle),
      ],
      ['', 'V8 heap per idle handle', `${n(r.heapBytesPerHandle)} B`, '', ''],
      [
        '',
        'descriptors while open',
        `${n(r.descriptorsWhileOpen)}`,
        `≤ ${n(r.maxDescriptors)}`,
        mark(r.descriptorsWhileOpen <= r.maxDescriptors),
      ],
      [
        '',
        'expiry → all closed',
        `${n(r.expiryToClosedMs)} ms`,
        `≤ ${n(leasesGoals.expiryToClosedMs)} ms`,
        mark(r.expiryToClosedMs <= leasesGoals.expiryToClosedMs),
      ],
      [
        '',
        'event-loop delay p99 (p50, max)',
        `${n(r.eventLoopDelayP99Ms, 1)} ms (${n(r.eventLoopDelayP50Ms, 1)}, ${n(r.eventLoopDelayMaxMs, 1)})`,
        `≤ ${n(leasesGoals.eventLoopDelayP99Ms)} ms`,
        mark(r.eventLoopDelayP99Ms <= leasesGoals.eventLoopDelayP99Ms),
      ],
      [
        '',
        'machine noise floor p99 (max)',
        `${n(r.noiseFloorP99Ms, 1)} ms (${n(r.noiseFloorMaxMs, 1)})`,
        '',
        '',
      ],
      [
        '',
        'left after expiry',
        `${r.handlesAfter} handles, ${r.descriptorsAfter} descriptors`,
        '0, 0',
        mark(r.handlesAfter + r.descriptorsAfter === 0),
      ],
    );
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function parseArgs(argv: readonly string[]): Partial<LeasesBenchOptions> {
  const out: { -readonly [K in keyof LeasesBenchOptions]?: LeasesBenchOptions[K] } = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value = ''] = [argv[i], argv[i + 1]];
    if (flag === '--handles') out.handles = Number(value);
    else if (flag === '--connections') out.connections = Number(value);
    else if (flag === '--concurrency') out.concurrency = Number(value);
    else if (flag === '--scenario')
      out.scenarios = value === 'both' ? ['solo', 'shared'] : [value as LeasesScenario];
    else throw new Error(`unknown option ${flag}`);
  }
  return out;
}

async function main(): Promise<void> {
  const options = { ...defaults, ...parseArgs(process.argv.slice(2)) };
  const results = await runLeasesBench(options);
  console.log(formatLeasesResults(results));
  const dir = join(repositoryRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'leases.json');
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, options, goals: leasesGoals, results }, null, 2)}\n`,
  );
  console.log(`\nwritten to ${file}`);
}

if (process.argv.includes('--server-child')) {
  await serverChild();
} else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
