/**
 * Shutdown of a real `leasegate serve` child on SIGTERM: a request in flight
 * is answered, its connection closed right after, and the process exits
 * (not after the 72 s keep-alive timeout), and connections that are still
 * open after `--shutdown-grace-ms` are closed so that the shutdown checkpoint
 * is written and the process exits 0.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listStateFiles } from '../../server/redo-log/state-dir.js';
import { type LeasegateRun, spawnLeasegate } from '../helpers/server-process.js';

let tmp: string;
const runs: LeasegateRun[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-shutdown-'));
});
afterAll(async () => {
  for (const run of runs) run.child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `test` holds, polling; fails with `what` and the child's stderr after `ms`. */
async function until(run: LeasegateRun, what: string, test: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${run.out()}\n${run.err()}`);
    await sleep(20);
  }
}

/** Starts `leasegate serve` with a state directory, at info level (its "stopping" line shows shutdown began). */
async function serve(
  name: string,
  extra: string[],
): Promise<{ run: LeasegateRun; port: number; state: string }> {
  const state = join(tmp, `state-${name}`);
  const args = ['serve', '--port', '0', '--root', join(tmp, `root-${name}`), '--state-dir', state, ...extra];
  const run = spawnLeasegate(args, { LEASEGATE_LOG_LEVEL: 'info' });
  runs.push(run);
  await until(run, 'listening line', () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(run.out()));
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(run.out())?.[1]);
  if (extra.includes('--socket')) await until(run, 'socket line', () => run.out().includes('unix:'));
  return { run, port, state };
}

/** A raw connection: what it has received so far, and whether the server closed it. */
interface Raw {
  readonly conn: Socket;
  received(): string;
  readonly closed: Promise<void>;
}

function open(where: { port: number } | { path: string }, text: string): Raw {
  const conn = 'path' in where ? connect(where.path) : connect(where.port, '127.0.0.1');
  let received = '';
  conn.on('data', (chunk: Buffer) => {
    received += chunk.toString();
  });
  conn.on('error', () => undefined);
  conn.write(text);
  const closed = new Promise<void>((resolve) => conn.on('close', () => resolve()));
  return { conn, received: () => received, closed };
}

/** Leases.Grant with a 2-byte body of which only the headers and `{` are sent. */
const grantHead =
  'POST /v1/Leases/Grant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{';

const newestCheckpoint = (state: string) => Math.max(-1, ...listStateFiles(state).checkpoints);

describe('SIGTERM', () => {
  it('answers a request in flight, closes its connection right after, and exits at once with a checkpoint', async () => {
    const { run, port, state } = await serve('inflight', []);
    const before = newestCheckpoint(state);
    const raw = open({ port }, grantHead);
    await sleep(200); // the request is routed (its headers are in) before shutdown starts
    run.child.kill('SIGTERM');
    await until(run, 'stopping line', () => run.out().includes('"msg":"stopping"'));
    raw.conn.write('}');
    await until(run, 'the answer', () => raw.received().includes('"lease"'));
    const answered = Date.now();
    const head = raw.received().split('\r\n\r\n')[0] as string;
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    await raw.closed; // by the server, right after the answer (the keep-alive timeout drops to 1 ms)
    expect(await run.exit).toEqual({ code: 0, signal: null });
    // Far below the default grace (10 s) and the keep-alive timeout (72 s) the connection used to idle for.
    expect(Date.now() - answered).toBeLessThan(5_000);
    expect(newestCheckpoint(state)).toBeGreaterThan(before);
  });

  it('serves a call that arrives while closing with Connection: close, and /healthz says shutting_down', async () => {
    const { run, port } = await serve('closing', []);
    // Headers not yet ended: the connections are busy (not idle), so shutdown waits for them.
    const health = open({ port }, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const call = open({ port }, 'POST /v1/Directories/Stat HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n');
    await sleep(200);
    run.child.kill('SIGTERM');
    await until(run, 'stopping line', () => run.out().includes('"msg":"stopping"'));
    health.conn.write('\r\n');
    call.conn.write('\r\n{"path":"/"}');
    await Promise.all([health.closed, call.closed]);
    expect(health.received()).toMatch(/^HTTP\/1\.1 503 /);
    expect(health.received()).toContain('"status":"shutting_down"');
    expect(call.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(call.received().toLowerCase()).toContain('connection: close');
    expect(call.received()).toContain('"isDirectory":true');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('closes connections still open after --shutdown-grace-ms, writes the checkpoint and exits 0', async () => {
    const graceMs = 400;
    const socket = join(tmp, 'grace.sock');
    const { run, port, state } = await serve('grace', [
      '--shutdown-grace-ms',
      String(graceMs),
      '--request-timeout-ms',
      '60000',
      '--socket',
      socket,
    ]);
    const before = newestCheckpoint(state);
    // Two requests that never finish sending, one per listener.
    const stalled = [open({ port }, grantHead), open({ path: socket }, grantHead)];
    await sleep(200);
    const signalled = Date.now();
    run.child.kill('SIGTERM');
    await Promise.all(stalled.map((s) => s.closed));
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(graceMs - 50);
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(graceMs + 5_000);
    expect(newestCheckpoint(state)).toBeGreaterThan(before);
    expect(run.out()).toContain('shutdown grace over');
  });
});
