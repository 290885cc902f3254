import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, type LeasegateClient, type RpcError } from '../../client/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ttlMs = 150;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** KeepAlive calls the server has answered so far (from /metrics). */
async function keepAlives(server: TestServer): Promise<number> {
  const metrics = (await server.send('GET', '/metrics')).text;
  return metrics
    .split('\n')
    .filter(
      (line) => line.startsWith('leasegate_requests_total{') && line.includes('method="Leases.KeepAlive"'),
    )
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('lease keep-alive', () => {
  let server: TestServer;
  const clients: LeasegateClient[] = [];
  const newClient = (options: Parameters<typeof createClient>[0] = {}) => {
    const client = createClient({ baseUrl: server.url, ...options });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startTestServer({ leaseMinTtlMs: 50, leaseDefaultTtlMs: ttlMs });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await server.close();
  });

  it('keeps an idle handle alive across many TTLs', async () => {
    const client = newClient();
    const { handle } = await client.files.remoteOpen({ path: 'kept.txt', mode: 'append', create: true });
    await sleep(ttlMs * 8);
    await expect(client.files.remotePrint({ handle, data: 'still here' })).resolves.toMatchObject({ seq: 1 });
  });

  it('lets an idle handle’s lease expire with leaseKeepAlive: false', async () => {
    const client = newClient({ leaseKeepAlive: false });
    const { handle } = await client.files.remoteOpen({ path: 'expired.txt', mode: 'append', create: true });
    await sleep(ttlMs * 3);
    await expect(client.files.remotePrint({ handle, data: 'too late' })).rejects.toMatchObject({
      code: 'failed_precondition',
      reason: 'lease_expired',
    });
  });

  it('sends one KeepAlive per lease, however many handles share it', async () => {
    const client = newClient();
    const { lease } = await client.leases.grant({ ttlMs: 300 });
    for (let i = 0; i < 10; i++)
      await client.files.remoteOpen({
        path: `shared-${i}.txt`,
        mode: 'append',
        create: true,
        leaseId: lease.leaseId,
      });
    const before = await keepAlives(server);
    await sleep(1_000);
    const sent = (await keepAlives(server)) - before;
    // One lease renewed every TTL/3, jittered up to 20 % earlier (80-100 ms): about 10-12 in one
    // second; one KeepAlive per handle would be ten times as many.
    expect(sent).toBeGreaterThanOrEqual(5);
    expect(sent).toBeLessThanOrEqual(15);
  });

  it('stops keeping a handle’s own lease alive once the handle is closed', async () => {
    const client = newClient();
    const { handle, lease } = await client.files.remoteOpen({
      path: 'closed.txt',
      mode: 'append',
      create: true,
    });
    expect(client.leaseIds).toEqual([lease.leaseId]);
    await client.files.remoteClose({ handle });
    expect(client.leaseIds).toEqual([]);
  });

  it('keeps a granted lease alive after its handles are closed, until it is revoked', async () => {
    const client = newClient();
    const lost: string[] = [];
    client.on('leaseLost', (leaseId) => lost.push(leaseId));
    const { lease } = await client.leases.grant({});
    const { handle } = await client.files.remoteOpen({
      path: 'g.txt',
      mode: 'append',
      create: true,
      leaseId: lease.leaseId,
    });
    await client.files.remoteClose({ handle });
    await sleep(ttlMs * 3);
    await expect(client.leases.timeToLive({ leaseId: lease.leaseId })).resolves.toMatchObject({
      handles: [],
    });
    await client.leases.revoke({ leaseId: lease.leaseId });
    expect(client.leaseIds).toEqual([]);
    await sleep(ttlMs);
    expect(lost).toEqual([]); // the user's own revoke is not a loss
  });

  it('reports a lease revoked by another client through onLeaseLost and the leaseLost event', async () => {
    const seen: [string, RpcError][] = [];
    const events: string[] = [];
    const client = newClient({ onLeaseLost: (leaseId, error) => seen.push([leaseId, error]) });
    client.on('leaseLost', (leaseId) => events.push(leaseId));
    const other = newClient();
    const { lease } = await client.files.remoteOpen({ path: 'stolen.txt', mode: 'append', create: true });
    await other.leases.revoke({ leaseId: lease.leaseId });
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 2_000, interval: 10 });
    expect(seen[0]?.[0]).toBe(lease.leaseId);
    expect(seen[0]?.[1]).toMatchObject({ code: 'failed_precondition', reason: 'lease_revoked' });
    expect(events).toEqual([lease.leaseId]);
    expect(client.leaseIds).toEqual([]);
  });

  it('reports a kept lease lost as soon as the user’s own TimeToLive hears that it is gone', async () => {
    const seen: [string, RpcError][] = [];
    const client = newClient({ onLeaseLost: (leaseId, error) => seen.push([leaseId, error]) });
    const other = newClient();
    // A long TTL: no KeepAlive of the keeper's is due during the test.
    const { lease } = await client.leases.grant({ ttlMs: 60_000 });
    await other.leases.revoke({ leaseId: lease.leaseId });
    await expect(client.leases.timeToLive({ leaseId: lease.leaseId })).rejects.toMatchObject({
      reason: 'lease_revoked',
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.[1]).toMatchObject({ code: 'failed_precondition', reason: 'lease_revoked' });
    expect(client.leaseIds).toEqual([]);
  });

  it('revokes the leases it holds when closed', async () => {
    const client = createClient({ baseUrl: server.url });
    const observer = newClient();
    const { lease: granted } = await client.leases.grant({ ttlMs: 60_000 });
    const { lease: own } = await client.files.remoteOpen({
      path: 'bye.txt',
      mode: 'append',
      create: true,
      leaseTtlMs: 60_000,
    });
    await client.close();
    for (const leaseId of [granted.leaseId, own.leaseId]) {
      await expect(observer.leases.timeToLive({ leaseId })).rejects.toMatchObject({
        reason: 'lease_revoked',
      });
    }
  });

  it('reports the server’s lease_expired when the process was paused past its lease’s TTL', async () => {
    // A process stopped (SIGSTOP) for longer than its lease's TTL: once it runs again, its
    // overdue KeepAlive must still reach the server (it once got a 1 ms budget and the lease was
    // reported lost with "deadline of 1 ms exceeded"), and the server says the lease expired.
    const pausedTtlMs = 500;
    const script = fileURLToPath(new URL('./keep-alive-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: {
        ...process.env,
        LEASEGATE_URL: server.url,
        LEASEGATE_LEASE_TTL_MS: String(pausedTtlMs),
        LEASEGATE_WAIT_MS: '20000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk));
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await vi.waitFor(() => expect(output).toContain('opened'), { timeout: 20_000, interval: 20 });
      const leaseId = /opened (\S+)/.exec(output)?.[1];
      await sleep(pausedTtlMs / 2);
      child.kill('SIGSTOP');
      await sleep(pausedTtlMs * 4);
      child.kill('SIGCONT');
      expect(await exit, errors).toBe(0);
      const report = JSON.parse(output.trim().split('\n').pop() as string);
      expect(report).toMatchObject({ leaseId, code: 'failed_precondition', reason: 'lease_expired' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);

  it('does not hold the process open while it keeps leases alive', async () => {
    const script = fileURLToPath(new URL('./keep-alive-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, LEASEGATE_URL: server.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const exit = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill();
        resolve(null);
      }, 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    expect(output).toContain('opened');
    expect(exit).toBe(0);
  });
});
