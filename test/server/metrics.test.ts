/**
 * GET /metrics: Prometheus text with request counts and latency histograms
 * by method and code (over both transports), and the handle and lease gauges.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
  await writeFile(join(s.root, 'f.txt'), 'x');
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const metrics = async () => {
  const r = await s.send('GET', '/metrics');
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain/);
  return r.text;
};

describe('/metrics', () => {
  it('declares the request counter, the latency histogram and the gauges', async () => {
    const text = await metrics();
    expect(text).toContain('# TYPE leasegate_requests_total counter');
    expect(text).toContain('# TYPE leasegate_request_duration_seconds histogram');
    expect(text).toContain('# TYPE leasegate_open_handles gauge');
    expect(text).toContain('# TYPE leasegate_active_leases gauge');
  });

  it('counts calls by method and code on both transports, with latency buckets', async () => {
    await s.ok('http', 'Directories.Stat', { path: '/' });
    await s.ok('jsonrpc', 'Directories.Stat', { path: '/' });
    await s.call('http', 'Directories.Stat', { path: 'missing' });
    await s.call('jsonrpc', 'Directories.Stat', { path: 'missing' });
    await s.call('jsonrpc', 'Directories.Stat', { path: '../up' });
    const text = await metrics();
    expect(sample(text, 'leasegate_requests_total', { method: 'Directories.Stat', code: 'ok' })).toBe(2);
    expect(sample(text, 'leasegate_requests_total', { method: 'Directories.Stat', code: 'not_found' })).toBe(
      2,
    );
    expect(
      sample(text, 'leasegate_requests_total', { method: 'Directories.Stat', code: 'permission_denied' }),
    ).toBe(1);
    const labels = { method: 'Directories.Stat', code: 'ok' };
    expect(sample(text, 'leasegate_request_duration_seconds_count', labels)).toBe(2);
    expect(sample(text, 'leasegate_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(2);
    expect(sample(text, 'leasegate_request_duration_seconds_sum', labels)).toBeGreaterThan(0);
  });

  it('counts each call of a JSON-RPC batch under its own method', async () => {
    await s.jsonrpc([
      { jsonrpc: '2.0', id: 1, method: 'Leases.Grant', params: {} },
      { jsonrpc: '2.0', id: 2, method: 'Leases.KeepAlive', params: { leaseId: 'l_nope' } },
    ]);
    const text = await metrics();
    expect(sample(text, 'leasegate_requests_total', { method: 'Leases.Grant', code: 'ok' })).toBe(1);
    expect(sample(text, 'leasegate_requests_total', { method: 'Leases.KeepAlive', code: 'not_found' })).toBe(
      1,
    );
  });

  it('gauges open handles and live leases as they come and go', async () => {
    const base = await metrics();
    const leases0 = sample(base, 'leasegate_active_leases') as number;
    expect(sample(base, 'leasegate_open_handles')).toBe(0);
    const a = await s.ok('http', 'Files.RemoteOpen', { path: 'f.txt', mode: 'read' });
    await s.ok('jsonrpc', 'Files.RemoteOpen', { path: 'f.txt', mode: 'read' });
    const during = await metrics();
    expect(sample(during, 'leasegate_open_handles')).toBe(2);
    expect(sample(during, 'leasegate_active_leases')).toBe(leases0 + 2);
    await s.ok('http', 'Files.RemoteClose', { handle: a.handle });
    const after = await metrics();
    expect(sample(after, 'leasegate_open_handles')).toBe(1);
    expect(sample(after, 'leasegate_active_leases')).toBe(leases0 + 1);
  });

  it("publishes the process's own figures: resident memory, heap, event-loop lag", async () => {
    const text = await metrics();
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1_048_576);
    expect(text).toContain('# TYPE nodejs_heap_size_used_bytes gauge');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_p99_seconds gauge');
  });

  it('gauges the idempotency records and their bytes as keyed calls are stored', async () => {
    const base = await metrics();
    const records0 = sample(base, 'leasegate_idempotency_records') as number;
    const bytes0 = sample(base, 'leasegate_idempotency_bytes') as number;
    await s.ok('http', 'Directories.MakeDirectory', { path: 'keyed-1' }, { 'idempotency-key': 'metrics-1' });
    await s.ok('http', 'Directories.MakeDirectory', { path: 'keyed-2' }, { 'idempotency-key': 'metrics-2' });
    const after = await metrics();
    expect(sample(after, 'leasegate_idempotency_records')).toBe(records0 + 2);
    expect(sample(after, 'leasegate_idempotency_bytes')).toBeGreaterThan(bytes0 + 2 * 81);
    expect(sample(after, 'leasegate_idempotency_evicted_total')).toBe(0);
    expect(sample(after, 'leasegate_idempotency_expired_total')).toBe(0);
  });

  it('lets expired idempotency records go while no calls come (a sweep once a second)', async () => {
    const short = await startTestServer({ idempotencyRetentionMs: 1_000 });
    try {
      for (const key of ['idle-1', 'idle-2', 'idle-3'])
        await short.ok('http', 'Directories.MakeDirectory', { path: key }, { 'idempotency-key': key });
      const read = async () => (await short.send('GET', '/metrics')).text;
      expect(sample(await read(), 'leasegate_idempotency_records')).toBe(3);
      // No call after these: only the server's own timer can drop them (retention 1 s, a sweep a second).
      await expect
        .poll(async () => sample(await read(), 'leasegate_idempotency_records'), {
          timeout: 5_000,
          interval: 200,
        })
        .toBe(0);
      expect(sample(await read(), 'leasegate_idempotency_expired_total')).toBe(3);
    } finally {
      await short.close();
    }
  });
});
