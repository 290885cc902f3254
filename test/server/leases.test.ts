/**
 * The Leases service and the expiry scheduler on fake time: a real server over
 * HTTP and JSON-RPC, a ManualClock, and `leases.sweep(now)` called directly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../server/index.js';
import { startTestServer, type TestServer, type Transport, transports } from '../helpers/server.js';

const clock = new ManualClock();
let s: TestServer;
const alice = { authorization: 'Bearer alice-token' };
const bob = { authorization: 'Bearer bob-token' };

beforeAll(async () => {
  s = await startTestServer({
    clock,
    tokenTable: { 'alice-token': { principal: 'alice' }, 'bob-token': { principal: 'bob' } },
  });
});

afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

const leases = () => s.app.leasegate.leases;
const handles = () => s.app.leasegate.handles;
/** Moves fake time on and runs the scheduler as its timer would. */
const advance = (ms: number) => {
  clock.advance(ms);
  return leases().sweep(clock.now());
};

let files = 0;
async function grant(t: Transport, ttlMs?: number, as = alice): Promise<string> {
  const r = await s.ok(t, 'Leases.Grant', ttlMs === undefined ? {} : { ttlMs }, as);
  return (r.lease as { leaseId: string }).leaseId;
}
async function open(
  t: Transport,
  extra: Record<string, unknown> = {},
  as = alice,
): Promise<{ handle: string; leaseId: string }> {
  const r = await s.ok(
    t,
    'Files.RemoteOpen',
    { path: `f${++files}`, mode: 'append', create: true, ...extra },
    as,
  );
  return { handle: r.handle as string, leaseId: (r.lease as { leaseId: string }).leaseId };
}
const ttlOf = async (t: Transport, leaseId: string) =>
  (await s.ok(t, 'Leases.TimeToLive', { leaseId }, alice)) as {
    lease: { ttlMs: number; expiresAt: string };
    remainingMs: number;
    handles: string[];
  };
const outcome = async (t: Transport, method: string, params: unknown, as = alice) => {
  const r = await s.call(t, method, params, as);
  return [r.code, r.reason, r.field];
};

describe.each(transports)('leases over %s', (t) => {
  it('ends leases in the order of their deadlines, each when its time comes', async () => {
    const late = await grant(t, 3_000);
    const early = await grant(t, 1_000);
    const middle = await grant(t, 2_000);
    expect(advance(999)).toBe(0);
    expect(advance(1)).toBe(1);
    expect(await outcome(t, 'Leases.KeepAlive', { leaseId: early })).toEqual([
      'failed_precondition',
      'lease_expired',
      'leaseId',
    ]);
    expect((await ttlOf(t, middle)).remainingMs).toBe(1_000);
    expect(advance(1_000)).toBe(1);
    expect((await s.call(t, 'Leases.TimeToLive', { leaseId: middle }, alice)).reason).toBe('lease_expired');
    expect((await ttlOf(t, late)).remainingMs).toBe(1_000);
    expect(advance(1_000)).toBe(1);
    expect((await s.call(t, 'Leases.TimeToLive', { leaseId: late }, alice)).reason).toBe('lease_expired');
  });

  it('KeepAlive pushes the deadline a full TTL from now', async () => {
    const leaseId = await grant(t, 1_000);
    advance(900);
    const kept = await s.call(t, 'Leases.KeepAlive', { leaseId }, alice);
    expect(kept.ok).toBe(true);
    expect(kept.headers['lease-remaining-ms']).toBe('1000');
    expect(Date.parse((kept.result.lease as { expiresAt: string }).expiresAt)).toBe(clock.now() + 1_000);
    expect(advance(900)).toBe(0);
    expect((await ttlOf(t, leaseId)).remainingMs).toBe(100);
    advance(100);
    expect((await s.call(t, 'Leases.TimeToLive', { leaseId }, alice)).reason).toBe('lease_expired');
  });

  it('renews a lease with every successful call on one of its handles, and says so in Lease-Remaining-Ms', async () => {
    const { handle, leaseId } = await open(t, { leaseTtlMs: 1_000 });
    for (let i = 0; i < 5; i++) {
      advance(900);
      const printed = await s.call(t, 'Files.RemotePrint', { handle, data: `${i}` }, alice);
      expect(printed.ok).toBe(true);
      expect(printed.headers['lease-remaining-ms']).toBe('1000');
    }
    advance(400);
    const ttl = await s.call(t, 'Leases.TimeToLive', { leaseId }, alice);
    expect(ttl.headers['lease-remaining-ms']).toBe('600');
    // A failed call renews nothing.
    expect((await s.call(t, 'Files.RemotePrint', { handle, data: 'x', seq: 99 }, alice)).reason).toBe(
      'sequence_gap',
    );
    advance(600);
    expect(await outcome(t, 'Files.RemotePrint', { handle, data: 'late' })).toEqual([
      'failed_precondition',
      'lease_expired',
      'handle',
    ]);
  });

  it('renews a shared lease through any of its handles, and RemoteClose is such a call', async () => {
    const leaseId = await grant(t, 1_000);
    const a = await open(t, { leaseId });
    const b = await open(t, { leaseId });
    advance(900);
    await s.ok(t, 'Files.RemotePrint', { handle: a.handle, data: 'a' }, alice);
    advance(900);
    const closed = await s.call(t, 'Files.RemoteClose', { handle: b.handle }, alice);
    expect(closed.headers['lease-remaining-ms']).toBe('1000');
    advance(900);
    expect(await ttlOf(t, leaseId)).toMatchObject({ remainingMs: 100, handles: [a.handle] });
  });

  it('Revoke closes every handle of the lease at once: they answer lease_revoked', async () => {
    const before = leases().counts.revoked;
    const leaseId = await grant(t, 10_000);
    const opened = await Promise.all([1, 2, 3].map(() => open(t, { leaseId })));
    expect((await ttlOf(t, leaseId)).handles.sort()).toEqual(opened.map((o) => o.handle).sort());
    const openBefore = handles().size;
    const revoked = await s.call(t, 'Leases.Revoke', { leaseId }, alice);
    expect(revoked.headers['lease-remaining-ms']).toBe('0');
    expect(handles().size).toBe(openBefore - 3);
    for (const { handle } of opened) {
      expect(await outcome(t, 'Files.RemotePrint', { handle, data: 'x' })).toEqual([
        'failed_precondition',
        'lease_revoked',
        'handle',
      ]);
    }
    expect(await outcome(t, 'Leases.KeepAlive', { leaseId })).toEqual([
      'failed_precondition',
      'lease_revoked',
      'leaseId',
    ]);
    expect(leases().counts.revoked).toBe(before + 1);
  });

  it('answers lease_expired for 10 × TTL after expiry, then not_found', async () => {
    const { handle, leaseId } = await open(t, { leaseTtlMs: 1_000 });
    advance(1_000);
    advance(9_999);
    expect(await outcome(t, 'Files.RemoteRead', { handle })).toEqual([
      'failed_precondition',
      'lease_expired',
      'handle',
    ]);
    expect(await outcome(t, 'Leases.TimeToLive', { leaseId })).toEqual([
      'failed_precondition',
      'lease_expired',
      'leaseId',
    ]);
    advance(1);
    expect(await outcome(t, 'Files.RemoteRead', { handle })).toEqual([
      'not_found',
      'handle_not_found',
      'handle',
    ]);
    expect(await outcome(t, 'Leases.TimeToLive', { leaseId })).toEqual([
      'not_found',
      'lease_not_found',
      'leaseId',
    ]);
  });

  it('answers lease_expired exactly even before the scheduler has swept the lease', async () => {
    const { handle } = await open(t, { leaseTtlMs: 1_000 });
    const openBefore = handles().size;
    clock.advance(1_000);
    expect(await outcome(t, 'Files.RemotePrint', { handle, data: 'x' })).toEqual([
      'failed_precondition',
      'lease_expired',
      'handle',
    ]);
    expect(handles().size).toBe(openBefore - 1);
  });

  it('refuses to attach a handle to a lease that has ended', async () => {
    const leaseId = await grant(t, 1_000);
    advance(1_000);
    expect(
      await outcome(t, 'Files.RemoteOpen', { path: 'late', mode: 'append', create: true, leaseId }),
    ).toEqual(['failed_precondition', 'lease_expired', 'leaseId']);
  });

  it('keeps leases and handles to their principal: another one gets not_found, never lease_expired', async () => {
    const leaseId = await grant(t, 1_000);
    const { handle } = await open(t, { leaseId });
    expect(await outcome(t, 'Leases.KeepAlive', { leaseId }, bob)).toEqual([
      'not_found',
      'lease_not_found',
      'leaseId',
    ]);
    expect(await outcome(t, 'Leases.Revoke', { leaseId }, bob)).toEqual([
      'not_found',
      'lease_not_found',
      'leaseId',
    ]);
    expect(
      await outcome(t, 'Files.RemoteOpen', { path: 'b', mode: 'append', create: true, leaseId }, bob),
    ).toEqual(['not_found', 'lease_not_found', 'leaseId']);
    expect(await outcome(t, 'Files.RemotePrint', { handle, data: 'x' }, bob)).toEqual([
      'not_found',
      'handle_not_found',
      'handle',
    ]);
    expect(await outcome(t, 'Files.RemoteClose', { handle }, bob)).toEqual([
      'not_found',
      'handle_not_found',
      'handle',
    ]);
    advance(1_000);
    expect(await outcome(t, 'Files.RemotePrint', { handle, data: 'x' }, bob)).toEqual([
      'not_found',
      'handle_not_found',
      'handle',
    ]);
    expect(await outcome(t, 'Leases.TimeToLive', { leaseId }, bob)).toEqual([
      'not_found',
      'lease_not_found',
      'leaseId',
    ]);
    expect((await s.call(t, 'Files.RemotePrint', { handle, data: 'x' }, alice)).reason).toBe('lease_expired');
  });
});

describe('TTL clamping', () => {
  it.each([
    ['no TTL: the default', undefined, 30_000],
    ['below the minimum', 1, 1_000],
    ['the minimum', 1_000, 1_000],
    ['in range', 45_678, 45_678],
    ['the maximum', 600_000, 600_000],
    ['above the maximum', 10 ** 9, 600_000],
  ])('%s (%s ms) gives %s ms, by Grant and by RemoteOpen', async (_name, asked, granted) => {
    const byGrant = await s.ok('http', 'Leases.Grant', asked === undefined ? {} : { ttlMs: asked }, alice);
    expect(byGrant.lease).toMatchObject({ ttlMs: granted });
    expect(Date.parse((byGrant.lease as { expiresAt: string }).expiresAt)).toBe(clock.now() + granted);
    const byOpen = await open('jsonrpc', asked === undefined ? {} : { leaseTtlMs: asked });
    expect((await ttlOf('http', byOpen.leaseId)).lease.ttlMs).toBe(granted);
  });
});

describe('ids', () => {
  it('are 128 random bits in base64url behind a kind prefix, and never repeat', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { handle, leaseId } = await open('http', { leaseTtlMs: 1_000 });
      expect(handle).toMatch(/^h_[A-Za-z0-9_-]{22}$/);
      expect(leaseId).toMatch(/^l_[A-Za-z0-9_-]{22}$/);
      seen.add(handle).add(leaseId);
    }
    expect(seen.size).toBe(400);
  });
});

describe('the scheduler', () => {
  it('ends a mass expiry in time-budgeted slices, and every handle answers lease_expired meanwhile', async () => {
    advance(600_000); // Every lease of the tests above ends: the counts below are this test's alone.
    expect(handles().size).toBe(0);
    const leaseId = await grant('http', 1_000);
    const shared = await Promise.all(Array.from({ length: 300 }, () => open('http', { leaseId })));
    const solo = await Promise.all(Array.from({ length: 300 }, () => open('http', { leaseTtlMs: 1_000 })));
    clock.advance(1_000);
    // A deadline already past: the slice stops at its first time check, with work left.
    const ended = leases().sweep(clock.now(), 0);
    expect(ended).toBeLessThan(301);
    expect(leases().pending).toBe(true);
    expect(handles().size).toBeGreaterThan(0);
    for (const { handle } of [...shared, ...solo].slice(-5)) {
      expect((await s.call('http', 'Files.RemotePrint', { handle, data: 'x' }, alice)).reason).toBe(
        'lease_expired',
      );
    }
    leases().sweep(clock.now());
    expect(leases().pending).toBe(false);
    expect(handles().size).toBe(0);
    expect(handles().pool.size).toBe(0);
  });

  it('counts expiries and revocations in /metrics, beside the open handles, leases and descriptors', async () => {
    const expired = leases().counts.expired;
    await open('http', { leaseTtlMs: 1_000 });
    advance(1_000);
    const metrics = (await s.send('GET', '/metrics')).text;
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('leasegate_lease_expiries_total')).toBe(expired + 1);
    expect(value('leasegate_lease_revocations_total')).toBe(leases().counts.revoked);
    expect(value('leasegate_open_handles')).toBe(handles().size);
    expect(value('leasegate_active_leases')).toBe(leases().size);
    expect(value('leasegate_open_descriptors')).toBe(handles().pool.size);
    expect(value('leasegate_lease_tombstones')).toBe(leases().tombstones.size);
  });
});
