/**
 * The redo log against real crashes: a `leasegate serve` child process is
 * killed with SIGKILL in the middle of a stream of keyed RemotePrint calls
 * from the typed client, and restarted on the same port with the same state
 * directory while the client retries. Every acknowledged print must be in the
 * file exactly once and in order, a retry with a key gets the stored answer,
 * and the handle and its lease go on working. Also: a clean restart after
 * SIGTERM (checkpoint on shutdown).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type LeasegateClient } from '../../client/index.js';
import { listStateFiles } from '../../server/redo-log/state-dir.js';
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js';

let tmp: string;
const running = new Set<ServerProcess>();
const clients: LeasegateClient[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-crash-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const s of running) s.child.kill('SIGKILL');
  running.clear();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function serve(root: string, state: string, port = 0, fsync = 'batch'): Promise<ServerProcess> {
  const server = await startServerProcess([
    '--port',
    String(port),
    '--root',
    root,
    '--state-dir',
    state,
    '--fsync',
    fsync,
  ]);
  running.add(server);
  server.exit.then(() => running.delete(server));
  return server;
}

/** A client that keeps retrying while the server is down (for up to a minute per call). */
function client(url: string): LeasegateClient {
  const c = createClient({
    baseUrl: url,
    timeoutMs: 60_000,
    retry: { maxAttempts: 1_000, initialBackoffMs: 20, maxBackoffMs: 200, throttle: false },
  });
  clients.push(c);
  return c;
}

/** POSTs a raw per-method call, as curl would. */
async function post(url: string, method: string, body: object, key?: string) {
  const res = await fetch(`${url}/v1/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    replayed: res.headers.get('idempotent-replayed'),
    leaseRemaining: res.headers.get('lease-remaining-ms'),
    text,
    body: JSON.parse(text),
  };
}

const line = (i: number) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(40)}\n`;

describe.each(['batch', 'always'] as const)('SIGKILL in the middle of keyed prints (fsync %s)', (fsync) => {
  it('keeps every acknowledged print exactly once, in order, and replays stored answers after restart', async () => {
    const root = join(tmp, `root-kill-${fsync}`);
    const state = join(tmp, `state-kill-${fsync}`);
    let server = await serve(root, state, 0, fsync);
    const { url, port } = server;
    const c = client(url);
    const { handle, lease } = await c.files.remoteOpen({ path: 'stream.txt', mode: 'append', create: true });
    // A keyed print by curl on another file: its answer must come back byte for byte after the kill.
    const other = await c.files.remoteOpen({ path: 'other.txt', mode: 'append', create: true });
    const curlKey = randomUUID();
    const curlPrint = { handle: other.handle, data: 'by curl\n' };
    const first = await post(url, 'Files/RemotePrint', curlPrint, curlKey);
    expect(first).toMatchObject({
      status: 200,
      replayed: null,
      body: { offset: 0, seq: 1, bytesWritten: 8 },
    });
    expect(Number(first.leaseRemaining)).toBeGreaterThan(0);

    const total = 600;
    const concurrency = 16;
    const keys = Array.from({ length: total + 1 }, () => randomUUID());
    const acked: { i: number; offset: number; seq: number; ackedBeforeKill: boolean }[] = [];
    let killed = false;
    let next = 1;
    const worker = async () => {
      while (next <= total) {
        const i = next++;
        const r = await c.files.remotePrint({ handle, data: line(i) }, { idempotencyKey: keys[i] as string });
        acked.push({ i, offset: r.offset, seq: r.seq, ackedBeforeKill: !killed });
      }
    };
    const stream = Promise.all(Array.from({ length: concurrency }, worker));

    // Kill in the middle: once a third is acknowledged, with up to 16 calls in flight.
    while (acked.length < total / 3) await new Promise((r) => setTimeout(r, 1));
    server.child.kill('SIGKILL');
    killed = true;
    expect((await server.exit).signal).toBe('SIGKILL');
    const beforeKill = acked.length;
    server = await serve(root, state, port, fsync);
    await stream;

    // Every call was acknowledged in the end, each exactly once, in call order (seq i for line i).
    expect(acked).toHaveLength(total);
    for (const a of acked) expect(a.seq).toBe(a.i);
    const expected = Array.from({ length: total }, (_, k) => line(k + 1)).join('');
    expect(fs.readFileSync(join(root, 'stream.txt'), 'utf8')).toBe(expected);
    for (const a of acked) expect(a.offset).toBe(expected.indexOf(line(a.i)));

    // The last print acknowledged before the kill, retried with its key: the stored answer, no second write.
    const last = acked.filter((a) => a.ackedBeforeKill).sort((x, y) => y.i - x.i)[0];
    expect(last).toBeDefined();
    expect(beforeKill).toBeGreaterThan(0);
    const { i, offset, seq } = last as (typeof acked)[number];
    const replay = await post(url, 'Files/RemotePrint', { handle, data: line(i), seq }, keys[i]);
    expect(replay).toMatchObject({
      status: 200,
      replayed: 'true',
      body: { offset, seq, bytesWritten: line(i).length },
    });
    // The very last call of the stream too.
    const end = await post(url, 'Files/RemotePrint', { handle, data: line(total), seq: total }, keys[total]);
    expect(end).toMatchObject({ status: 200, replayed: 'true', body: { seq: total } });
    expect(fs.readFileSync(join(root, 'stream.txt'), 'utf8')).toBe(expected);

    // The curl print's answer, replayed byte for byte with its Lease-Remaining-Ms; the file holds it once.
    const again = await post(url, 'Files/RemotePrint', curlPrint, curlKey);
    expect(again).toMatchObject({
      status: 200,
      replayed: 'true',
      text: first.text,
      leaseRemaining: first.leaseRemaining,
    });
    expect(fs.readFileSync(join(root, 'other.txt'), 'utf8')).toBe('by curl\n');

    // The handle and its lease work after the restart.
    const more = await c.files.remotePrint({ handle, data: 'after restart\n' });
    expect(more).toMatchObject({ seq: total + 1, offset: expected.length });
    const ttl = await c.leases.timeToLive({ leaseId: lease.leaseId });
    expect(ttl.handles).toEqual([handle]);
    expect(ttl.remainingMs).toBeGreaterThan(0);
    await c.leases.keepAlive({ leaseId: lease.leaseId });
    await c.files.remoteClose({ handle });
    expect(fs.readFileSync(join(root, 'stream.txt'), 'utf8')).toBe(`${expected}after restart\n`);
    expect(server.err()).not.toMatch(/error/i);
  });
});

describe('SIGTERM', () => {
  it('checkpoints on shutdown, exits 0, and restarts with handles, leases and stored answers intact', async () => {
    const root = join(tmp, 'root-term');
    const state = join(tmp, 'state-term');
    const first = await serve(root, state);
    const opened = await post(first.url, 'Files/RemoteOpen', {
      path: 'term.txt',
      mode: 'write',
      create: true,
    });
    const { handle } = opened.body as { handle: string; lease: { leaseId: string } };
    const key = randomUUID();
    const printed = await post(first.url, 'Files/RemotePrint', { handle, data: 'one\n', seq: 1 }, key);
    expect(printed).toMatchObject({ status: 200, replayed: null });

    first.child.kill('SIGTERM');
    expect(await first.exit).toEqual({ code: 0, signal: null });
    const files = listStateFiles(state);
    expect(files.checkpoints).toHaveLength(1);
    expect(files.logs).toEqual(files.checkpoints);
    expect(fs.existsSync(join(state, 'lock'))).toBe(false);

    const second = await serve(root, state, first.port);
    const replay = await post(second.url, 'Files/RemotePrint', { handle, data: 'one\n', seq: 1 }, key);
    expect(replay).toMatchObject({ status: 200, replayed: 'true', body: printed.body });
    const two = await post(second.url, 'Files/RemotePrint', { handle, data: 'two\n', seq: 2 }, randomUUID());
    expect(two).toMatchObject({ status: 200, body: { offset: 4, seq: 2 } });
    expect(fs.readFileSync(join(root, 'term.txt'), 'utf8')).toBe('one\ntwo\n');
    second.child.kill('SIGTERM');
    expect(await second.exit).toEqual({ code: 0, signal: null });
  });
});

describe('lease tombstones across a restart', () => {
  // Contract §5: an ended lease's id and its handles answer lease_expired / lease_revoked for at
  // least 10 × TTL. Before, a restart forgot them: the ids answered not_found.
  it.each([['SIGKILL'], ['SIGTERM']] as const)(
    'still answers lease_expired and lease_revoked after a %s restart',
    async (signal) => {
      const root = join(tmp, `tomb-${signal}-root`);
      const state = join(tmp, `tomb-${signal}-state`);
      fs.mkdirSync(root, { recursive: true });
      let server = await serve(root, state);
      const openUnder = async (leaseId: string, path: string) =>
        (await post(server.url, 'Files/RemoteOpen', { path, mode: 'append', create: true, leaseId })).body
          .handle as string;
      const expiring = (await post(server.url, 'Leases/Grant', { ttlMs: 1_000 })).body.lease
        .leaseId as string;
      const revoked = (await post(server.url, 'Leases/Grant', { ttlMs: 60_000 })).body.lease
        .leaseId as string;
      const expiredHandle = await openUnder(expiring, 'expired.txt');
      const revokedHandle = await openUnder(revoked, 'revoked.txt');
      expect((await post(server.url, 'Leases/Revoke', { leaseId: revoked })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      const reasons = async () => [
        (await post(server.url, 'Files/RemotePrint', { handle: expiredHandle, data: 'x' })).body.details
          ?.reason,
        (await post(server.url, 'Leases/KeepAlive', { leaseId: expiring })).body.details?.reason,
        (await post(server.url, 'Files/RemotePrint', { handle: revokedHandle, data: 'x' })).body.details
          ?.reason,
        (await post(server.url, 'Leases/TimeToLive', { leaseId: revoked })).body.details?.reason,
      ];
      const want = ['lease_expired', 'lease_expired', 'lease_revoked', 'lease_revoked'];
      expect(await reasons()).toEqual(want);
      server.child.kill(signal);
      await server.exit;
      server = await serve(root, state);
      expect(await reasons()).toEqual(want);
    },
  );
});
