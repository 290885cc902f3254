/**
 * Deadlines (contract section 3, Rpc-Timeout-Ms) over both transports: a call
 * still running at its deadline answers deadline_exceeded (and may still
 * complete), work whose deadline passed never starts, the header is checked and
 * capped by the server's maximum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';
import { type Effects, send, slowService, statusOf } from './idempotency-fixtures.js';

const effects: Effects = new Map();
let s: TestServer;
let n = 0;
const fresh = (label: string) => `${label}-${++n}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  s = await startTestServer({ services: [slowService(effects)] });
});
afterAll(async () => {
  await s.close();
});

describe.each(transports)('Rpc-Timeout-Ms over %s', (t) => {
  it('answers deadline_exceeded when the call is still running at its deadline, and lets it finish', async () => {
    const tag = fresh(`running-${t}`);
    const started = Date.now();
    const reply = await send(s, t, 'Slow.Sleep', { tag, ms: 400 }, undefined, { 'rpc-timeout-ms': '100' });
    expect(Date.now() - started).toBeLessThan(350);
    expect(reply).toMatchObject({
      status: statusOf(t, 504),
      code: 'deadline_exceeded',
      reason: 'deadline_passed_while_running',
    });
    expect(effects.get(tag)).toBeUndefined();
    await sleep(450);
    expect(effects.get(tag)).toBe(1); // documented: the work itself is not stopped
  });

  it('answers a call that finishes in time normally', async () => {
    const tag = fresh(`in-time-${t}`);
    const reply = await send(s, t, 'Slow.Sleep', { tag, ms: 20 }, undefined, { 'rpc-timeout-ms': '5000' });
    expect(reply).toMatchObject({ status: 200, ok: true, result: { tag, count: 1 } });
  });

  it('caps a very large Rpc-Timeout-Ms at --max-deadline-ms rather than refusing it', async () => {
    const tag = fresh(`huge-${t}`);
    const reply = await send(s, t, 'Slow.Bump', { tag }, undefined, {
      'rpc-timeout-ms': '99999999999999999999',
    });
    expect(reply).toMatchObject({ status: 200, ok: true });
  });

  it('refuses a malformed Rpc-Timeout-Ms with 400 naming the field, and runs nothing', async () => {
    const tag = fresh(`malformed-${t}`);
    for (const bad of ['abc', '0', '-5', '1.5', '1e3', '']) {
      const reply = await send(s, t, 'Slow.Bump', { tag }, undefined, { 'rpc-timeout-ms': bad });
      expect(reply).toMatchObject({
        status: statusOf(t, 400),
        code: 'invalid_argument',
        reason: 'invalid_header',
        field: 'Rpc-Timeout-Ms',
      });
    }
    expect(effects.get(tag)).toBeUndefined();
  });

  it('gives the first caller of a keyed call deadline_exceeded, and its retry the real result', async () => {
    const tag = fresh(`keyed-${t}`);
    const key = fresh(`deadline-key-${t}`);
    const first = await send(s, t, 'Slow.Sleep', { tag, ms: 300 }, key, { 'rpc-timeout-ms': '80' });
    expect(first).toMatchObject({ code: 'deadline_exceeded', replayed: false });
    await sleep(350);
    const retry = await send(s, t, 'Slow.Sleep', { tag, ms: 300 }, key);
    expect(retry).toMatchObject({ status: 200, ok: true, replayed: true, result: { tag, count: 1 } });
    expect(effects.get(tag)).toBe(1);
  });
});

describe.each(transports)('the server maximum deadline over %s', (t) => {
  let capped: TestServer;
  const local: Effects = new Map();
  beforeAll(async () => {
    capped = await startTestServer({ maxDeadlineMs: 150, services: [slowService(local)] });
  });
  afterAll(async () => {
    await capped.close();
  });

  it.each([
    ['a larger Rpc-Timeout-Ms', { 'rpc-timeout-ms': '60000' }],
    ['no Rpc-Timeout-Ms', {}],
  ])('caps %s at --max-deadline-ms', async (_case, headers: Record<string, string>) => {
    const started = Date.now();
    const reply = await send(capped, t, 'Slow.Sleep', { tag: 'capped', ms: 2_000 }, undefined, headers);
    expect(reply).toMatchObject({ code: 'deadline_exceeded', reason: 'deadline_passed_while_running' });
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

describe('deadlines of a JSON-RPC batch', () => {
  it('answers the running call and the calls not yet started with deadline_exceeded, and never starts them', async () => {
    const slow = fresh('batch-slow');
    const later = fresh('batch-later');
    const reply = await s.jsonrpc(
      [
        { jsonrpc: '2.0', id: 1, method: 'Slow.Bump', params: { tag: slow } },
        { jsonrpc: '2.0', id: 2, method: 'Slow.Sleep', params: { tag: slow, ms: 300 } },
        { jsonrpc: '2.0', id: 3, method: 'Slow.Bump', params: { tag: later } },
      ],
      { 'rpc-timeout-ms': '100' },
    );
    const body = reply.body as {
      id: number;
      result?: unknown;
      error?: { data: { details: { reason: string } } };
    }[];
    expect(body.map((r) => [r.id, r.error?.data.details.reason ?? 'ok'])).toEqual([
      [1, 'ok'],
      [2, 'deadline_passed_while_running'],
      [3, 'deadline_passed_before_start'],
    ]);
    await sleep(350);
    expect(effects.get(slow)).toBe(2); // the running Sleep finished
    expect(effects.get(later)).toBeUndefined(); // the call after it never started
  });
});
