import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../client/index.js';
import { type FaultProbabilities, mulberry32, startFaultProxy } from '../helpers/fault-proxy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** Calls the server has answered so far, all methods (from /metrics). */
async function served(server: TestServer): Promise<number> {
  return (await server.send('GET', '/metrics')).text
    .split('\n')
    .filter((line) => line.startsWith('leasegate_requests_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('the fault proxy', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  async function through(faults: FaultProbabilities) {
    const proxy = await startFaultProxy({
      upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
      faults,
    });
    const client = createClient({ baseUrl: proxy.url, retry: false });
    return {
      proxy,
      client,
      [Symbol.asyncDispose]: async () => {
        await client.close();
        await proxy.close();
      },
    };
  }

  it('drops a request before the server sees it', async () => {
    await using t = await through({ dropRequest: 1 });
    const before = await served(server);
    await expect(t.client.directories.makeDirectory({ path: 'never' })).rejects.toMatchObject({
      code: 'unavailable',
    });
    expect(await served(server)).toBe(before);
    await expect(stat(join(server.root, 'never'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(t.proxy.counts.dropRequest).toBe(1);
  });

  it('drops the reply after the server acted', async () => {
    await using t = await through({ dropReply: 1 });
    await expect(t.client.directories.makeDirectory({ path: 'made' })).rejects.toMatchObject({
      code: 'unavailable',
    });
    expect((await stat(join(server.root, 'made'))).isDirectory()).toBe(true);
    expect(t.proxy.counts.dropReply).toBe(1);
  });

  it('sends a duplicate later and discards its reply', async () => {
    await using t = await through({ duplicate: 1 });
    const before = await served(server);
    await expect(t.client.directories.stat({ path: '/' })).resolves.toMatchObject({ isDirectory: true });
    await t.proxy.close(); // waits for the late copy
    expect((await served(server)) - before).toBe(2);
    expect(t.proxy.counts.duplicate).toBe(1);
  });

  it('makes the same choices for the same seed', async () => {
    const decide = async (seed: number) => {
      const proxy = await startFaultProxy({
        upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
        seed,
        faults: { delay: 0.3, duplicate: 0.2 },
        maxDelayMs: 2,
      });
      const client = createClient({ baseUrl: proxy.url });
      for (let i = 0; i < 40; i++) await client.directories.stat({ path: '/' });
      await client.close();
      await proxy.close();
      return { ...proxy.counts };
    };
    const a = await decide(7);
    expect(await decide(7)).toEqual(a);
    expect(a.delay + a.duplicate).toBeGreaterThan(0);
    expect(mulberry32(1)()).toBe(mulberry32(1)());
  });
});
