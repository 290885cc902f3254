import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CallDeadline } from '../../client/deadline.js';
import { createServiceClient, RpcError, type ServiceClientOptions } from '../../client/index.js';
import { resolveRetryPolicy } from '../../client/options.js';
import { Retrier } from '../../client/retry.js';
import { RetryThrottle } from '../../client/retry-throttle.js';
import { createRuntime } from '../../client/service-client.js';

/** A user-defined service table, as a generator run over someone's own schemas would emit it. */
const echoServices = {
  Echo: {
    name: 'Echo',
    localName: 'echo',
    description: 'Test service.',
    methods: {
      Put: {
        name: 'Put',
        localName: 'put',
        request: 'PutRequest',
        response: 'PutResponse',
        idempotent: false,
        description: '',
      },
      Get: {
        name: 'Get',
        localName: 'get',
        request: 'GetRequest',
        response: 'GetResponse',
        idempotent: true,
        description: '',
      },
    },
  },
} as const;

interface EchoClients {
  echo: {
    put(
      request: { value: string },
      options?: { idempotencyKey?: string; timeoutMs?: number; signal?: AbortSignal },
    ): Promise<{ ok: boolean }>;
    get(
      request: { value: string },
      options?: { timeoutMs?: number; signal?: AbortSignal },
    ): Promise<{ ok: boolean }>;
  };
}

/** What the scripted server does with one attempt. */
type Step = { status: number; body?: unknown; headers?: Record<string, string> } | 'destroy' | 'hang';

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
}

/** A real local HTTP server answering attempt n with script(n); it records every request. */
async function scriptedServer(script: (attempt: number) => Step) {
  const seen: Seen[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, at: performance.now() });
      const step = script(seen.length);
      if (step === 'destroy') return void req.socket.destroy();
      if (step === 'hang') return void hanging.add(res);
      res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
      res.end(JSON.stringify(step.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ok = { status: 200, body: { ok: true } };
const unavailable = {
  status: 503,
  body: { code: 'unavailable', message: 'try later' },
  headers: { 'retry-after': '0' },
};
const fast: ServiceClientOptions['retry'] = { initialBackoffMs: 1, maxBackoffMs: 5 };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(script: (attempt: number) => Step, options: Omit<ServiceClientOptions, 'baseUrl'> = {}) {
  const server = await scriptedServer(script);
  const client = createServiceClient<EchoClients>(echoServices, {
    baseUrl: server.url,
    retry: fast,
    ...options,
  });
  cleanups.push(
    () => server.close(),
    () => client.close(),
  );
  return { server, client };
}

describe('retries', () => {
  it.each([
    ['503 unavailable', unavailable],
    [
      '429 resource_exhausted',
      {
        status: 429,
        body: { code: 'resource_exhausted', message: 'slow down' },
        headers: { 'retry-after': '0' },
      },
    ],
    [
      '409 idempotency_key_in_use',
      {
        status: 409,
        body: { code: 'aborted', message: 'in use', details: { reason: 'idempotency_key_in_use' } },
        headers: { 'retry-after': '0' },
      },
    ],
    ['502 without a wire body', { status: 502, body: 'bad gateway' }],
    ['a reset connection', 'destroy' as const],
  ])('retries a non-idempotent call after %s, reusing one Idempotency-Key', async (_name, failure) => {
    const { server, client } = await setup((n) => (n < 3 ? failure : ok));
    await expect(client.echo.put({ value: 'x' })).resolves.toEqual({ ok: true });
    expect(server.seen).toHaveLength(3);
    const keys = server.seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
  });

  it.each([
    ['invalid_argument', 400],
    ['not_found', 404],
    ['failed_precondition', 400],
    ['already_exists', 409],
    ['internal', 500],
    ['permission_denied', 403],
  ] as const)('never retries %s', async (code, status) => {
    const { server, client } = await setup(() => ({
      status,
      body: { code, message: 'no', details: { reason: 'why', field: 'value' } },
    }));
    const error = await client.echo.put({ value: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({
      code,
      httpStatus: status,
      reason: 'why',
      details: { reason: 'why', field: 'value' },
    });
    expect(server.seen).toHaveLength(1);
  });

  it('does not retry a body over the server limit (body_too_large: every attempt meets the same limit)', async () => {
    const { server, client } = await setup(() => ({
      status: 429,
      body: { code: 'resource_exhausted', message: 'too large', details: { reason: 'body_too_large' } },
    }));
    const error = await client.echo.put({ value: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'resource_exhausted', reason: 'body_too_large', httpStatus: 429 });
    expect(server.seen).toHaveLength(1);
  });

  it("retries any other 429, a proxy's page without Retry-After included", async () => {
    const { server, client } = await setup((n) =>
      n < 3 ? { status: 429, body: '<html>slow down</html>' } : ok,
    );
    await expect(client.echo.get({ value: 'x' })).resolves.toEqual({ ok: true });
    expect(server.seen).toHaveLength(3);
  });

  it('sends no Idempotency-Key on idempotent calls, and retries them all the same', async () => {
    const { server, client } = await setup((n) => (n < 2 ? unavailable : ok));
    await client.echo.get({ value: 'x' });
    expect(server.seen).toHaveLength(2);
    expect(server.seen.map((s) => s.headers['idempotency-key'])).toEqual([undefined, undefined]);
  });

  it('sends the caller’s own Idempotency-Key as is on every attempt', async () => {
    const { server, client } = await setup((n) => (n < 2 ? unavailable : ok));
    await client.echo.put({ value: 'x' }, { idempotencyKey: 'my-key-1' });
    expect(server.seen.map((s) => s.headers['idempotency-key'])).toEqual(['my-key-1', 'my-key-1']);
  });

  it('gives every call its own key', async () => {
    const { server, client } = await setup(() => ok);
    await Promise.all([client.echo.put({ value: 'a' }), client.echo.put({ value: 'b' })]);
    expect(new Set(server.seen.map((s) => s.headers['idempotency-key'])).size).toBe(2);
  });

  it('stops after maxAttempts and throws the last error', async () => {
    const { server, client } = await setup(() => unavailable, { retry: { ...fast, maxAttempts: 4 } });
    const error = await client.echo.put({ value: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503 });
    expect(server.seen).toHaveLength(4);
  });

  it('makes a single attempt with retry: false', async () => {
    const { server, client } = await setup(() => unavailable, { retry: false });
    await expect(client.echo.put({ value: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(server.seen).toHaveLength(1);
  });

  it('waits as long as Retry-After asks before the next attempt', async () => {
    const { server, client } = await setup((n) =>
      n < 2 ? { ...unavailable, headers: { 'retry-after': '1' } } : ok,
    );
    await client.echo.put({ value: 'x' });
    const [first, second] = server.seen;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once when Retry-After asks for longer than the deadline leaves', async () => {
    const { server, client } = await setup(() => ({ ...unavailable, headers: { 'retry-after': '5' } }));
    const started = performance.now();
    await expect(client.echo.put({ value: 'x' }, { timeoutMs: 1_000 })).rejects.toMatchObject({
      code: 'unavailable',
    });
    expect(performance.now() - started).toBeLessThan(500);
    expect(server.seen).toHaveLength(1);
  });

  it('sends the time left of one overall deadline as Rpc-Timeout-Ms on each attempt', async () => {
    const { server, client } = await setup((n) => (n < 3 ? unavailable : ok), {
      retry: { initialBackoffMs: 40, maxBackoffMs: 40, backoffMultiplier: 1 },
    });
    await client.echo.put({ value: 'x' }, { timeoutMs: 5_000 });
    const budgets = server.seen.map((s) => Number(s.headers['rpc-timeout-ms']));
    expect(budgets[0]).toBeLessThanOrEqual(5_000);
    expect(budgets[0]).toBeGreaterThan(4_500);
    expect(budgets[1]).toBeLessThanOrEqual(budgets[0]!);
    expect(budgets[2]).toBeLessThanOrEqual(budgets[1]!);
  });

  it('ends a call that outlives timeoutMs with deadline_exceeded, across attempts', async () => {
    const { client } = await setup(() => 'hang');
    const started = performance.now();
    await expect(client.echo.get({ value: 'x' }, { timeoutMs: 200.4 })).rejects.toMatchObject({
      code: 'deadline_exceeded',
      reason: 'client_deadline',
      message: 'deadline of 200 ms exceeded',
      httpStatus: 504,
    });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('ends a call whose signal aborts with canceled, keeping the reason as cause', async () => {
    const { client } = await setup(() => 'hang');
    const controller = new AbortController();
    const call = client.echo.get({ value: 'x' }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user gave up')), 50);
    const error = await call.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'canceled', httpStatus: 499 });
    expect((error as RpcError).cause).toMatchObject({ message: 'user gave up' });
  });

  it('stops waiting between attempts when the signal aborts', async () => {
    const { server, client } = await setup(() => ({ ...unavailable, headers: { 'retry-after': '10' } }), {
      timeoutMs: 60_000,
    });
    const controller = new AbortController();
    const call = client.echo.get({ value: 'x' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    await expect(call).rejects.toMatchObject({ code: 'canceled' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(server.seen).toHaveLength(1);
  });

  it('refuses a timeoutMs that is not a number (NaN meant no deadline at all) without sending it', async () => {
    const { server, client } = await setup(() => ok);
    await expect(client.echo.get({ value: 'x' }, { timeoutMs: Number.NaN })).rejects.toThrow(
      'timeoutMs must be a number of ms, got NaN',
    );
    expect(server.seen).toHaveLength(0);
  });

  it('fails a call on an already aborted signal without sending it', async () => {
    const { server, client } = await setup(() => ok);
    await expect(client.echo.get({ value: 'x' }, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'canceled',
    });
    expect(server.seen).toHaveLength(0);
  });

  it('turns a refused connection into unavailable with the network error as cause', async () => {
    const server = await scriptedServer(() => ok);
    await server.close();
    const client = createServiceClient<EchoClients>(echoServices, { baseUrl: server.url, retry: false });
    cleanups.push(() => client.close());
    const error = await client.echo.get({ value: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503, reason: 'network_error' });
    expect((error as RpcError).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails calls after close() with canceled, reason client_closed', async () => {
    const { client } = await setup(() => ok);
    await client.close();
    await expect(client.echo.get({ value: 'x' })).rejects.toMatchObject({
      code: 'canceled',
      reason: 'client_closed',
    });
  });
});

describe('retry throttling', () => {
  it('stops retrying a server that keeps failing, and resumes once calls succeed again', async () => {
    let healthy = false;
    const { server, client } = await setup(() => (healthy ? ok : unavailable), {
      retry: { ...fast, maxAttempts: 5, throttle: { maxTokens: 10, tokenRatio: 0.1 } },
    });
    await expect(client.echo.get({ value: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(server.seen).toHaveLength(5); // tokens 10 → 5: the last retry was still allowed
    for (let i = 0; i < 3; i++) {
      const before = server.seen.length;
      await expect(client.echo.get({ value: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
      expect(server.seen.length - before).toBe(1); // at or below half: no retries
    }
    healthy = true;
    for (let i = 0; i < 50; i++) await client.echo.get({ value: 'x' }); // 2 + 50 × 0.1 = 7 tokens
    healthy = false;
    const before = server.seen.length;
    await expect(client.echo.get({ value: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(server.seen.length - before).toBe(2); // 7 → 6: one retry allowed, 6 → 5: no more
  });

  it('neither counts nor stops retries that a Retry-After asked for (rate limited, shutting down)', async () => {
    // Each call's first attempt is refused with Retry-After: 1, its second answered.
    const { server, client } = await setup(
      (n) => (n <= 3 ? { ...unavailable, headers: { 'retry-after': '1' } } : ok),
      {
        retry: { ...fast, throttle: { maxTokens: 2, tokenRatio: 0.1 } },
      },
    );
    // With a bucket of 2 a single counted failure (2 → 1, at half) would stop every retry.
    const calls = [1, 2, 3].map(() => client.echo.get({ value: 'x' }));
    await expect(Promise.all(calls)).resolves.toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(server.seen).toHaveLength(6);
    expect((server.seen[3]?.at ?? 0) - (server.seen[0]?.at ?? 0)).toBeGreaterThan(900);
  });

  it("leaves the client's background calls (lease keep-alives) out of the bucket", async () => {
    // Three background calls fail every attempt; then a user call fails once and is retried.
    const server = await scriptedServer((n) => (n <= 3 * 3 + 1 ? { ...unavailable, headers: {} } : ok));
    const runtime = createRuntime({
      baseUrl: server.url,
      retry: { ...fast, maxAttempts: 3, throttle: { maxTokens: 4, tokenRatio: 0.1 } },
    });
    cleanups.push(
      () => server.close(),
      () => runtime.close(),
    );
    const target = { service: echoServices.Echo, method: echoServices.Echo.methods.Get };
    for (let i = 0; i < 3; i++)
      await expect(runtime.backgroundCall(target, { value: 'x' }, {})).rejects.toMatchObject({
        code: 'unavailable',
      });
    // Nine counted failures would have emptied the bucket of 4 (no retry at or below 2).
    await expect(runtime.call(target, { value: 'x' }, {})).resolves.toEqual({ ok: true });
    expect(server.seen).toHaveLength(11);
  });

  it('counts retryable failures against the bucket and refunds replies', () => {
    const throttle = new RetryThrottle({ maxTokens: 10, tokenRatio: 0.5 });
    for (let i = 0; i < 5; i++) throttle.onFailure();
    expect(throttle.allowsRetry()).toBe(false);
    throttle.onSuccess();
    expect(throttle.allowsRetry()).toBe(true);
    for (let i = 0; i < 100; i++) throttle.onSuccess();
    expect(throttle.tokens).toBe(10);
  });
});

describe('backoff', () => {
  const policy = resolveRetryPolicy({ initialBackoffMs: 50, maxBackoffMs: 2_000, backoffMultiplier: 2 });

  it('grows the delay bound exponentially up to maxBackoffMs', () => {
    const retrier = new Retrier(policy);
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retrier.backoffBoundMs(n))).toEqual([
      50, 100, 200, 400, 800, 1600, 2000,
    ]);
  });

  it('draws each delay uniformly below the bound (full jitter)', () => {
    const unavailableError = new RpcError({ code: 'unavailable', message: 'x' });
    expect(new Retrier(policy, () => 0).delayMs(3, unavailableError)).toBe(0);
    expect(new Retrier(policy, () => 0.5).delayMs(3, unavailableError)).toBe(100);
    expect(new Retrier(policy, () => 0.999).delayMs(3, unavailableError)).toBeLessThan(200);
  });

  it('never waits less than Retry-After asks', () => {
    const error = new RpcError({ code: 'unavailable', message: 'x', retryAfterSeconds: 2 });
    expect(new Retrier(policy, () => 0).delayMs(1, error)).toBe(2_000);
  });

  it('does not retry at all once the deadline has passed', async () => {
    let attempts = 0;
    const deadline = new CallDeadline(20);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await expect(
      new Retrier(policy).run(async () => {
        attempts++;
        throw new RpcError({ code: 'unavailable', message: 'x' });
      }, deadline),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' });
    expect(attempts).toBe(1);
  });
});
