/**
 * A print that fails leaves a seq the server waits for; the client fills it
 * (an empty print with that seq), so the prints after it still land, in call
 * order. Each trigger of the audit's "poisoned handle" is here, through the
 * real client and a real server (the fault proxy slows or drops one print).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../client/caller.js';
import { createClient, type LeasegateClient, RpcError } from '../../client/index.js';
import type { RetryPolicy } from '../../client/options.js';
import { PrintSequencer } from '../../client/sequencer.js';
import { services } from '../../generated/index.js';
import { type FaultProbabilities, type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const catchError = (promise: Promise<unknown>): Promise<RpcError> =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(RpcError);
      return error as RpcError;
    },
  );

/** Idempotency keys of the prints the proxy may fault: every other request passes untouched. */
const faultKey = (name: string) => `fault-${name}-${Math.random()}`;

/** Quick retries, so a print the proxy keeps dropping fails in a few ms. */
const quickRetries: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, throttle: false };

interface Bench extends AsyncDisposable {
  readonly client: LeasegateClient;
  readonly proxy: FaultProxy;
  readonly handle: string;
  print(data: string): Promise<{ seq: number }>;
  /** Closes the client and the proxy (late copies of slowed prints reach the server first), then reads the file. */
  finish(): Promise<string>;
}

/**
 * A client behind a fault proxy that faults only the requests whose
 * Idempotency-Key starts with `fault-` (the fills get fresh keys, so they
 * pass), and an append handle on a fresh file.
 */
async function bench(server: TestServer, name: string, faults: FaultProbabilities = {}): Promise<Bench> {
  const proxy = await startFaultProxy({
    upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
    faults,
    minDelayMs: 300,
    maxDelayMs: 300,
    filter: (req) => String(req.headers['idempotency-key'] ?? '').startsWith('fault-'),
  });
  const client = createClient({ baseUrl: proxy.url, retry: quickRetries });
  const path = `${name}.txt`;
  const { handle } = await client.files.remoteOpen({ path, mode: 'append', create: true });
  let finished: Promise<string> | undefined;
  const finish = () => {
    finished ??= (async () => {
      await client.close();
      await proxy.close();
      return readFile(join(server.root, path), 'utf8');
    })();
    return finished;
  };
  return {
    client,
    proxy,
    handle,
    print: (data) => client.files.remotePrint({ handle, data }),
    finish,
    [Symbol.asyncDispose]: async () => void (await finish()),
  };
}

describe('prints after a failed print on the same handle', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('land in order after a print refused for bad data, sequential or issued at once', async () => {
    await using b = await bench(server, 'bad-data');
    await b.print('one\n');
    const bad = b.client.files.remotePrint({ handle: b.handle, data: '%%%', encoding: 'base64' });
    expect(await catchError(bad)).toMatchObject({ code: 'invalid_argument', reason: 'invalid_base64' });
    expect((await b.print('three\n')).seq).toBe(3);
    // Issued with the failing one, before it is answered: they wait for its fill, then go in order.
    const badAgain = b.client.files.remotePrint({ handle: b.handle, data: '!', encoding: 'base64' });
    const later = Array.from({ length: 6 }, (_, i) => b.print(`later ${i}\n`));
    expect(await catchError(badAgain)).toMatchObject({ code: 'invalid_argument' });
    expect((await Promise.all(later)).map((r) => r.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    const lines = Array.from({ length: 6 }, (_, i) => `later ${i}\n`).join('');
    expect(await b.finish()).toBe(`one\nthree\n${lines}`);
  });

  it('land in order after a print past its timeoutMs, whose deadline error names whole ms', async () => {
    await using b = await bench(server, 'timeout', { delay: 1 });
    await b.print('one\n');
    const slow = b.client.files.remotePrint(
      { handle: b.handle, data: 'slow\n' },
      { timeoutMs: 100, idempotencyKey: faultKey('timeout') },
    );
    const error = await catchError(slow);
    expect(error).toMatchObject({ code: 'deadline_exceeded' });
    // Not the float of the time left ("deadline of 99.98539299999993 ms exceeded").
    expect(error.message).toMatch(/^deadline of (99|100) ms exceeded$/);
    await b.print('three\n');
    await b.print('four\n');
    // The slow print reached the server after its fill (300 ms late): stale, never applied.
    expect(await b.finish()).toBe('one\nthree\nfour\n');
    expect(b.proxy.counts.delay).toBe(1);
  });

  it('land in order after a print cancelled through its AbortSignal', async () => {
    await using b = await bench(server, 'abort', { delay: 1 });
    await b.print('one\n');
    const aborted = b.client.files.remotePrint(
      { handle: b.handle, data: 'aborted\n' },
      { signal: AbortSignal.timeout(100), idempotencyKey: faultKey('abort') },
    );
    const next = [b.print('three\n'), b.print('four\n')];
    expect(await catchError(aborted)).toMatchObject({ code: 'canceled' });
    expect((await Promise.all(next)).map((r) => r.seq)).toEqual([3, 4]);
    expect(await b.finish()).toBe('one\nthree\nfour\n');
  });

  it('land in order after a print that ran out of retries, never applied (requests dropped)', async () => {
    await using b = await bench(server, 'dropped-request', { dropRequest: 1 });
    await b.print('one\n');
    const dropped = b.client.files.remotePrint(
      { handle: b.handle, data: 'dropped\n' },
      { idempotencyKey: faultKey('drop') },
    );
    expect(await catchError(dropped)).toMatchObject({ code: 'unavailable' });
    await b.print('three\n');
    expect(await b.finish()).toBe('one\nthree\n');
    expect(b.proxy.counts.dropRequest).toBe(quickRetries.maxAttempts);
  });

  it('land in order after a print that ran out of retries but was applied (replies dropped)', async () => {
    await using b = await bench(server, 'dropped-reply', { dropReply: 1 });
    await b.print('one\n');
    const applied = b.client.files.remotePrint(
      { handle: b.handle, data: 'applied\n' },
      { idempotencyKey: faultKey('reply') },
    );
    expect(await catchError(applied)).toMatchObject({ code: 'unavailable' });
    // Its fill meets stale_sequence: the seq is used, by the print itself.
    expect((await b.print('three\n')).seq).toBe(3);
    expect(await b.finish()).toBe('one\napplied\nthree\n');
  });

  it('land in order after a print that timed out waiting for a slow print before it', async () => {
    await using b = await bench(server, 'gap-timeout', { delay: 1 });
    const slow = b.client.files.remotePrint(
      { handle: b.handle, data: 'slow\n' },
      { idempotencyKey: faultKey('slow') },
    );
    const impatient = b.client.files.remotePrint(
      { handle: b.handle, data: 'impatient\n' },
      { timeoutMs: 50 },
    );
    const after = b.print('after\n');
    expect(await catchError(impatient)).toMatchObject({
      code: 'deadline_exceeded',
      message: 'deadline of 50 ms exceeded',
    });
    expect((await slow).seq).toBe(1);
    expect((await after).seq).toBe(3);
    expect(await b.finish()).toBe('slow\nafter\n');
  });

  it('fail with sequence_unrepaired while the fill cannot get through, and land once it can', async () => {
    // Every request may be faulted here: the server is unreachable while faults are on.
    const proxy = await startFaultProxy({
      upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
    });
    await using client = createClient({ baseUrl: proxy.url, retry: quickRetries });
    try {
      const { handle } = await client.files.remoteOpen({
        path: 'unreachable.txt',
        mode: 'append',
        create: true,
      });
      await client.files.remotePrint({ handle, data: 'one\n' });
      proxy.setFaults({ dropRequest: 1 });
      expect(await catchError(client.files.remotePrint({ handle, data: 'lost\n' }))).toMatchObject({
        code: 'unavailable',
        reason: 'network_error',
      });
      const dropped = proxy.counts.dropRequest;
      // Not sent: its seq 2 could not be filled (the fill's requests were dropped too).
      const error = await catchError(client.files.remotePrint({ handle, data: 'not sent\n' }));
      expect(error).toMatchObject({
        code: 'unavailable',
        reason: 'sequence_unrepaired',
        details: { seq: 2 },
      });
      expect(error.message).toMatch(
        /nothing written.*next print on the handle tries again.*opening the file again/,
      );
      expect(proxy.counts.dropRequest).toBeGreaterThan(dropped);
      proxy.setFaults({});
      // The next print fills seqs 2 and 3 first.
      expect((await client.files.remotePrint({ handle, data: 'four\n' })).seq).toBe(4);
      expect((await client.files.remotePrint({ handle, data: 'five\n' })).seq).toBe(5);
      await client.files.remoteClose({ handle });
      expect(await readFile(join(server.root, 'unreachable.txt'), 'utf8')).toBe('one\nfour\nfive\n');
    } finally {
      proxy.setFaults({});
      await client.close();
      await proxy.close();
    }
  });

  it('land exactly once and in call order among many failing ones, through a reordering network', async () => {
    const proxy = await startFaultProxy({
      upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
      seed: 7,
      faults: { delay: 0.6 },
      maxDelayMs: 25,
    });
    await using client = createClient({ baseUrl: proxy.url, timeoutMs: 60_000 });
    try {
      const { handle } = await client.files.remoteOpen({ path: 'mixed.txt', mode: 'append', create: true });
      // Every seventh print has bad data; all are issued at once.
      const bad = (i: number) => i % 7 === 3;
      const calls = Array.from({ length: 120 }, (_, i) =>
        bad(i)
          ? client.files.remotePrint({ handle, data: '###', encoding: 'base64' })
          : client.files.remotePrint({ handle, data: `line ${i}\n` }),
      );
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.map((o) => o.status)).toEqual(
        outcomes.map((_, i) => (bad(i) ? 'rejected' : 'fulfilled')),
      );
      await client.files.remoteClose({ handle });
      const good = Array.from({ length: 120 }, (_, i) => i).filter((i) => !bad(i));
      expect(await readFile(join(server.root, 'mixed.txt'), 'utf8')).toBe(
        good.map((i) => `line ${i}\n`).join(''),
      );
      expect(proxy.counts.delay).toBeGreaterThan(0);
    } finally {
      await client.close();
      await proxy.close();
    }
  }, 60_000);
});

describe('prints after a body over the server limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ bodyLimit: 2_048 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('land in order, without the refused one', async () => {
    await using b = await bench(server, 'too-large');
    await b.print('one\n');
    const large = b.print('x'.repeat(4_096));
    const next = b.print('three\n');
    expect(await catchError(large)).toMatchObject({ code: 'resource_exhausted', reason: 'body_too_large' });
    expect((await next).seq).toBe(3);
    await b.print('four\n');
    expect(await b.finish()).toBe('one\nthree\nfour\n');
  });
});

describe('which failures leave no seq to fill', () => {
  const target = { service: services.Files, method: services.Files.methods.RemotePrint };

  /** A sequencer over a fake server that fails the first print with `error` and records every print. */
  async function firstPrintFails(error: RpcError) {
    const sent: { seq?: number; data?: string }[] = [];
    const next: Caller = async (_target, request) => {
      const print = request as { seq: number; data: string };
      sent.push(print);
      if (sent.length === 1) throw error;
      return { bytesWritten: print.data.length, offset: 0, seq: print.seq };
    };
    const print = new PrintSequencer(1_000).interceptor(next);
    await expect(print(target, { handle: 'h', data: 'one' }, {})).rejects.toBe(error);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return sent;
  }

  it("fills after a bare 404 (a proxy's): it does not say the handle is gone", async () => {
    const sent = await firstPrintFails(new RpcError({ code: 'not_found', message: 'Not Found' }));
    expect(sent).toEqual([
      expect.objectContaining({ seq: 1, data: 'one' }),
      expect.objectContaining({ seq: 1, data: '' }),
    ]);
  });

  it('refuses a print whose timeoutMs is NaN before numbering waits on anything', async () => {
    const next: Caller = async () => ({});
    const print = new PrintSequencer(1_000).interceptor(next);
    await expect(print(target, { handle: 'h', data: 'x' }, { timeoutMs: Number.NaN })).rejects.toThrow(
      RangeError,
    );
  });

  it("does not fill after the server's handle_not_found: the handle takes no print", async () => {
    const gone = new RpcError({ code: 'not_found', message: 'no such handle', reason: 'handle_not_found' });
    expect(await firstPrintFails(gone)).toHaveLength(1);
  });
});
