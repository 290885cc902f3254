/**
 * The lease keeper against a server that goes away. A server restarted from
 * its state directory brings its leases back with a grace of one TTL from the
 * restart, so a client must go on renewing a lease past its own estimate of
 * the expiry: here a real `leasegate serve` child is cut off from the client,
 * killed with SIGKILL and restarted on the same port and state directory, and
 * the client keeps its lease. A lease the server really lost (restarted
 * without its state) is reported with the server's error, and one the server
 * cannot be reached about is given up only past the time any server could
 * still hold it, with an error that says so.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, type LeasegateClient, RpcError } from '../../client/index.js';
import { startTestServer } from '../helpers/server.js';
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A TCP gate in front of a server port: open, it forwards connections; shut,
 * it cuts the ones it holds and resets new ones, as a server that is down
 * does. The client's address stays the gate's while the server behind it
 * dies and comes back.
 */
interface Gate {
  readonly url: string;
  shut(): void;
  open(): void;
  close(): Promise<void>;
}

async function startGate(port: number): Promise<Gate> {
  let open = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((downstream) => {
    if (!open) {
      downstream.resetAndDestroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    sockets.add(downstream);
    sockets.add(upstream);
    const end = () => {
      downstream.destroy();
      upstream.destroy();
      sockets.delete(downstream);
      sockets.delete(upstream);
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const shut = () => {
    open = false;
    for (const socket of sockets) socket.resetAndDestroy();
    sockets.clear();
  };
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    shut,
    open: () => {
      open = true;
    },
    close: () => {
      shut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let tmp: string;
const running = new Set<ServerProcess>();
const clients: LeasegateClient[] = [];
const gates: Gate[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-keeper-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const g of gates.splice(0)) await g.close();
  for (const s of running) s.child.kill('SIGKILL');
  running.clear();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function serve(root: string, state: string, port = 0): Promise<ServerProcess> {
  const server = await startServerProcess(['--port', String(port), '--root', root, '--state-dir', state]);
  running.add(server);
  server.exit.then(() => running.delete(server));
  return server;
}

/**
 * A TTL of at least `minMs` that a restart outlasts by at most two thirds, so that the client, which
 * may give up a TTL past the lease's expiry, reaches the restarted server well before: a server
 * started in `startupMs` (tsx compiles it on each start: 1 s on an idle machine, 3-4 s on a busy one).
 */
function ttlCovering(startupMs: number, minMs: number): number {
  return Math.max(minMs, Math.ceil((1.5 * startupMs) / 500) * 500);
}

async function kill(server: ServerProcess): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exit;
}

/** A client with the default options (retries, keep-alive), and what it reports lost. */
function client(url: string) {
  const c = createClient({ baseUrl: url });
  clients.push(c);
  const lost: { leaseId: string; error: RpcError; at: number }[] = [];
  c.on('leaseLost', (leaseId, error) => lost.push({ leaseId, error, at: performance.now() }));
  return { c, lost };
}

describe('a lease kept across a server restart', () => {
  it('is kept when the server restarts from its state directory, although the outage outlasts the TTL', async () => {
    const root = join(tmp, 'root-kept');
    const state = join(tmp, 'state-kept');
    const startedAt = performance.now();
    const first = await serve(root, state);
    // The outage must outlast the TTL (past the client's own estimate of the expiry) and end well
    // before the client may give up (a TTL later).
    const ttlMs = ttlCovering(performance.now() - startedAt, 3_000);
    const gate = await startGate(first.port);
    gates.push(gate);
    const { c, lost } = client(gate.url);
    const { handle, lease } = await c.files.remoteOpen({
      path: 'kept.txt',
      mode: 'append',
      create: true,
      leaseTtlMs: ttlMs,
    });
    expect(lease.ttlMs).toBe(ttlMs);
    await c.files.remotePrint({ handle, data: 'before\n' });
    await sleep(1_200); // a keep-alive or more

    // The server dies while the lease is alive on it and comes back on the same port from the same
    // state directory, bringing the lease back with a TTL of grace. The client cannot reach it
    // until a TTL after it was killed (the gate stays shut while the server restarts sooner).
    const killedAt = performance.now();
    gate.shut();
    await kill(first);
    const second = await serve(root, state, first.port);
    const restartedAt = performance.now();
    await sleep(Math.max(0, killedAt + ttlMs + 300 - performance.now()));
    gate.open();
    const reopenedAt = performance.now();
    expect(reopenedAt - killedAt).toBeGreaterThan(ttlMs);

    // Past the grace from the restart: the lease is alive only if the client went on renewing it.
    await sleep(Math.max(ttlMs, restartedAt + ttlMs + 500 - performance.now()));
    expect(lost).toEqual([]);
    expect(c.leaseIds).toEqual([lease.leaseId]);
    await expect(c.files.remotePrint({ handle, data: 'after\n' })).resolves.toMatchObject({ seq: 2 });
    const observer = client(second.url).c;
    const ttl = await observer.leases.timeToLive({ leaseId: lease.leaseId });
    expect(ttl.handles).toEqual([handle]);
    expect(ttl.remainingMs).toBeGreaterThan(ttlMs / 2);
  }, 120_000);

  it('is reported lost with the server’s not_found when the server restarts without its state', async () => {
    const root = join(tmp, 'root-forgot');
    const startedAt = performance.now();
    const first = await serve(root, join(tmp, 'state-forgot-1'));
    const { c, lost } = client(first.url);
    const { handle, lease } = await c.files.remoteOpen({
      path: 'forgot.txt',
      mode: 'append',
      create: true,
      leaseTtlMs: ttlCovering(performance.now() - startedAt, 2_000),
    });
    await kill(first);
    await serve(root, join(tmp, 'state-forgot-2'), first.port);
    await vi.waitFor(() => expect(lost).toHaveLength(1), { timeout: lease.ttlMs, interval: 20 });
    expect(lost[0]?.leaseId).toBe(lease.leaseId);
    expect(lost[0]?.error).toBeInstanceOf(RpcError);
    expect(lost[0]?.error).toMatchObject({ code: 'not_found', reason: 'lease_not_found' });
    expect(c.leaseIds).toEqual([]);
    await expect(c.files.remotePrint({ handle, data: 'x' })).rejects.toMatchObject({
      code: 'not_found',
      reason: 'handle_not_found',
    });
  }, 60_000);
});

describe('a lease the server cannot be reached about', () => {
  it('is kept past its local expiry, then given up one TTL later with an error naming the cause', async () => {
    const ttlMs = 1_000;
    const server = await startTestServer({ leaseMinTtlMs: 100 });
    try {
      const gate = await startGate(Number(new URL(server.url).port));
      gates.push(gate);
      const { c, lost } = client(gate.url);
      const { handle, lease } = await c.files.remoteOpen({
        path: 'unreachable.txt',
        mode: 'append',
        create: true,
        leaseTtlMs: ttlMs,
      });
      const cutAt = performance.now();
      gate.shut();

      // Past its local expiry (at most a TTL after the cut) the server may still hold it.
      await sleep(ttlMs + 200);
      expect(lost).toEqual([]);
      expect(c.leaseIds).toEqual([lease.leaseId]);

      await vi.waitFor(() => expect(lost).toHaveLength(1), { timeout: 5 * ttlMs, interval: 10 });
      const event = lost[0] as (typeof lost)[number];
      // Not before its local expiry (renewed at most TTL/3 before the cut) plus one TTL.
      expect(event.at - cutAt).toBeGreaterThanOrEqual(2 * ttlMs - ttlMs / 3);
      expect(event.leaseId).toBe(lease.leaseId);
      expect(event.error).toMatchObject({ code: 'unavailable', reason: 'keep_alive_failed' });
      expect(event.error.message).toMatch(/KeepAlives failed for \d+ ms/);
      // The last KeepAlive's own error: refused connections, or its budget spent on them.
      expect(event.error.cause).toBeInstanceOf(RpcError);
      expect(['unavailable', 'deadline_exceeded']).toContain((event.error.cause as RpcError).code);
      expect(c.leaseIds).toEqual([]);

      // The server did let it expire.
      gate.open();
      await expect(c.files.remotePrint({ handle, data: 'x' })).rejects.toMatchObject({
        code: 'failed_precondition',
        reason: 'lease_expired',
      });
    } finally {
      await server.close();
    }
  }, 30_000);
});
