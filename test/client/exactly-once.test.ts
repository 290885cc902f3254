import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../client/index.js';
import { type FaultProbabilities, startFaultProxy } from '../helpers/fault-proxy.js';
import { gauge } from '../helpers/metrics.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const handles = 8;
const printsPerHandle = 150;

// 1 200 prints per scenario (8 handles x 150), all issued at once, plus the mkdirs, opens and closes.
describe('exactly-once calls through a faulty network', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  /**
   * Makes directories, opens one append handle per directory, issues every
   * print of every handle at once, closes the handles, and checks each file
   * holds its lines exactly once and in call order, and no handle is left open.
   */
  async function scenario(name: string, faults: FaultProbabilities) {
    const proxy = await startFaultProxy({
      upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
      seed: 20_260_101,
      faults,
      maxDelayMs: 25,
    });
    // Throttling is off: at these fault rates it would (rightly) stop retrying, and these tests are
    // about what retries may do, not about whether they happen.
    const client = createClient({
      baseUrl: proxy.url,
      // The last print of a handle waits behind the 149 before it, each of which may be retried.
      timeoutMs: 100_000,
      retry: { maxAttempts: 30, initialBackoffMs: 5, maxBackoffMs: 100, throttle: false },
    });
    try {
      const dirs = Array.from({ length: handles }, (_, i) => `${name}/dir-${i}`);
      await Promise.all(dirs.map((path) => client.directories.makeDirectory({ path, parents: true })));
      await Promise.all(dirs.map((path) => client.directories.makeDirectory({ path: `${path}/sub` })));
      const opened = await Promise.all(
        dirs.map((dir) => client.files.remoteOpen({ path: `${dir}/log.txt`, mode: 'append', create: true })),
      );
      const lines = (h: number) =>
        Array.from({ length: printsPerHandle }, (_, i) => `handle ${h} line ${i}\n`);
      const prints = opened.flatMap(({ handle }, h) =>
        lines(h).map((data) => client.files.remotePrint({ handle, data })),
      );
      const results = await Promise.all(prints);
      await Promise.all(opened.map(({ handle }) => client.files.remoteClose({ handle })));

      for (let h = 0; h < handles; h++) {
        expect(await readFile(join(server.root, dirs[h]!, 'log.txt'), 'utf8')).toBe(lines(h).join(''));
        const seqs = results.slice(h * printsPerHandle, (h + 1) * printsPerHandle).map((r) => r.seq);
        expect(seqs).toEqual(Array.from({ length: printsPerHandle }, (_, i) => i + 1));
      }
    } finally {
      proxy.setFaults({});
      await client.close();
      await proxy.close(); // lets the late duplicates land before handles are counted
    }
    expect(gauge((await server.send('GET', '/metrics')).text, 'leasegate_open_handles')).toBe(0);
    return proxy.counts;
  }

  it('lands concurrent prints in call order when requests overtake each other', async () => {
    const counts = await scenario('reordered', { delay: 0.6 });
    expect(counts.delay).toBeGreaterThan(0);
  }, 150_000);

  it('lands every concurrent print exactly once and in call order despite lost requests, lost replies and duplicates', async () => {
    const counts = await scenario('faulty', {
      dropRequest: 0.08,
      dropReply: 0.08,
      delay: 0.25,
      duplicate: 0.1,
    });
    expect(counts.dropRequest).toBeGreaterThan(0);
    expect(counts.dropReply).toBeGreaterThan(0);
    expect(counts.delay).toBeGreaterThan(0);
    expect(counts.duplicate).toBeGreaterThan(0);
  }, 150_000);
});
