/**
 * Expiry on the real clock, through the real timer: a lease with a 1 s TTL
 * closes its handles (and releases their descriptors) within 1 s of its
 * expiresAt, and not before it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { descriptorsUnder } from '../../bench/proc-stats.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let s: TestServer;

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.close();
});

describe('expiry on the real clock', () => {
  it('closes every handle of 1 s leases, solo and shared, within 1 s of expiresAt', async () => {
    const shared = (await s.ok('http', 'Leases.Grant', { ttlMs: 1_000 })).lease as { expiresAt: string };
    const { leaseId } = shared as unknown as { leaseId: string };
    const opened = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) =>
        s.ok('http', 'Files.RemoteOpen', {
          path: `solo${i}`,
          mode: 'append',
          create: true,
          leaseTtlMs: 1_000,
        }),
      ),
      ...Array.from({ length: 20 }, (_, i) =>
        s.ok('jsonrpc', 'Files.RemoteOpen', { path: `shared${i}`, mode: 'append', create: true, leaseId }),
      ),
    ]);
    const expiresAt = Math.max(
      ...opened.map((r) => Date.parse((r.lease as { expiresAt: string }).expiresAt)),
      Date.parse(shared.expiresAt),
    );
    const earliest = Math.min(...opened.map((r) => Date.parse((r.lease as { expiresAt: string }).expiresAt)));
    expect(s.app.leasegate.handles.size).toBe(40);
    expect(descriptorsUnder(s.root)).toBe(40);

    await sleep(Math.max(0, earliest - Date.now() - 150));
    expect(s.app.leasegate.handles.size).toBe(40);

    while (s.app.leasegate.handles.size > 0 || descriptorsUnder(s.root) > 0) {
      expect(Date.now() - expiresAt).toBeLessThanOrEqual(1_000);
      await sleep(10);
    }
    expect(Date.now() - expiresAt).toBeLessThanOrEqual(1_000);
    expect(s.app.leasegate.leases.size).toBe(0);
    const late = await s.call('http', 'Files.RemotePrint', {
      handle: opened[0]?.handle,
      data: 'x',
    });
    expect([late.code, late.reason]).toEqual(['failed_precondition', 'lease_expired']);
  });
});
