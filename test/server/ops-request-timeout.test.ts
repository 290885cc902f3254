/**
 * `--request-timeout-ms` on a real `leasegate serve` child: a client that
 * sends part of a request and stalls gets 408 and loses its connection, on TCP
 * and on the Unix socket, while idle keep-alive connections and complete
 * requests are left alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LeasegateRun, spawnLeasegate } from '../helpers/server-process.js';

const timeoutMs = 300;
let tmp: string;
let run: LeasegateRun;
let port: number;
let socket: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-timeout-'));
  socket = join(tmp, 'gate.sock');
  run = spawnLeasegate([
    'serve',
    '--port',
    '0',
    '--socket',
    socket,
    '--root',
    join(tmp, 'root'),
    '--state-dir',
    '',
    '--request-timeout-ms',
    String(timeoutMs),
  ]);
  const deadline = Date.now() + 20_000;
  while (!run.out().includes('listening on unix:')) {
    if (Date.now() > deadline || run.child.exitCode !== null)
      throw new Error(`no listening line: ${run.err()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  port = Number(/127\.0\.0\.1:(\d+)/.exec(run.out())?.[1]);
});
afterAll(async () => {
  run.child.kill('SIGTERM');
  expect(await run.exit).toEqual({ code: 0, signal: null });
  await rm(tmp, { recursive: true, force: true });
});

/** Opens a raw connection, writes `text`, and resolves with what came back and when the server closed it. */
function stall(
  where: { port: number } | { path: string },
  text: string,
): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const conn = 'path' in where ? connect(where.path) : connect(where.port, '127.0.0.1');
    let reply = '';
    conn.on('connect', () => conn.write(text));
    conn.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
    });
    conn.on('error', reject);
    conn.on('close', () => resolve({ reply, ms: Date.now() - started }));
    // Without a server-side timeout nothing ever closes it: fail the test rather than hang.
    setTimeout(() => conn.destroy(new Error(`still open after 10 s: ${JSON.stringify(reply)}`)), 10_000);
  });
}

const partialBody =
  'POST /v1/Directories/Stat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
  'Content-Length: 100\r\n\r\n{"path":';

describe('a request not sent within --request-timeout-ms', () => {
  it.each([
    ['a body cut short, on TCP', () => ({ port }), partialBody],
    ['a body cut short, on the Unix socket', () => ({ path: socket }), partialBody],
    ['headers cut short', () => ({ port }), 'POST /v1/Directories/Stat HTTP/1.1\r\nHost: x\r\n'],
    ['nothing at all', () => ({ port }), ''],
  ])('gets 408 request_timeout and its connection closed: %s', async (_name, where, text) => {
    const { reply, ms } = await stall(where(), text);
    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(reply).toContain('"reason":"request_timeout"');
    expect(ms).toBeGreaterThanOrEqual(timeoutMs - 50);
    // Node checks at most every timeoutMs here, so the cut comes within two of them (plus scheduling).
    expect(ms).toBeLessThan(timeoutMs * 2 + 1_000);
  });
});

describe('connections that are not late', () => {
  it('keep an idle keep-alive connection past the timeout, and answer on it', async () => {
    const agent = new Agent({ keepAliveTimeout: 30_000 });
    let connections = 0;
    agent.on('connect', () => connections++);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await request(`http://127.0.0.1:${port}/v1/Directories/Stat`, {
          method: 'POST',
          dispatcher: agent,
          body: '{"path":"/"}',
        });
        expect(r.statusCode).toBe(200);
        await r.body.dump();
        if (i === 0) await new Promise((resolve) => setTimeout(resolve, timeoutMs * 3));
      }
      expect(connections).toBe(1);
    } finally {
      await agent.close();
    }
  });
});
