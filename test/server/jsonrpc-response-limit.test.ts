/**
 * A JSON-RPC batch's answers are bounded: once they pass the limit
 * (--max-response-bytes), the batch's later calls do not run and answer
 * resource_exhausted (response_too_large). A batch of a hundred 1 MiB reads
 * built a 140-500 MB answer from a few kB of request.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultServerOptions } from '../../server/options.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const defaultMaxResponseBytes = defaultServerOptions.maxResponseBytes;
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

interface Answer {
  id: number;
  result?: { data: string };
  error?: { code: number; data: { code: string; details: { reason: string; limitBytes: number } } };
}

describe('the answers of one JSON-RPC request', () => {
  it('stop running a batch once they pass the limit, and say so for each call left', async () => {
    const mib = 1_048_576;
    await writeFile(join(s.root, 'big.bin'), Buffer.alloc(mib, 1));
    const { handle } = await s.ok('http', 'Files.RemoteOpen', { path: 'big.bin', mode: 'read' });
    const calls = 16;
    const batch = Array.from({ length: calls }, (_, i) => ({
      jsonrpc: '2.0',
      id: i + 1,
      method: 'Files.RemoteRead',
      params: { handle, offset: 0, length: mib, encoding: 'base64' },
    }));
    const reply = await s.jsonrpc(batch);
    expect(reply.status).toBe(200);
    const answers = reply.body as Answer[];
    expect(answers.map((a) => a.id)).toEqual(batch.map((b) => b.id));
    const read = answers.filter((a) => a.result !== undefined);
    const left = answers.filter((a) => a.error !== undefined);
    // Each answer is ~1.4 MiB of base64: the ones that ran just pass the limit, the rest never ran.
    const each = Math.ceil(mib / 3) * 4;
    expect(read).toHaveLength(Math.floor(defaultMaxResponseBytes / each) + 1);
    expect(read.every((a) => a.result?.data.length === each)).toBe(true);
    expect(left.length).toBeGreaterThan(0);
    for (const a of left) {
      expect(a.error?.data.code).toBe('resource_exhausted');
      expect(a.error?.data.details).toEqual({
        reason: 'response_too_large',
        limitBytes: defaultMaxResponseBytes,
      });
    }
    expect(reply.text.length).toBeLessThan(defaultMaxResponseBytes + 2 * each);
  });

  it('stop at the bound --max-response-bytes sets', async () => {
    const small = await startTestServer({ maxResponseBytes: 2 * 1_048_576 });
    try {
      await writeFile(join(small.root, 'big.bin'), Buffer.alloc(1_048_576, 2));
      const { handle } = await small.ok('http', 'Files.RemoteOpen', { path: 'big.bin', mode: 'read' });
      const read = {
        method: 'Files.RemoteRead',
        params: { handle, offset: 0, length: 1_048_576, encoding: 'base64' },
      };
      const reply = await small.jsonrpc([1, 2, 3, 4].map((id) => ({ jsonrpc: '2.0', id, ...read })));
      const answers = reply.body as Answer[];
      // 1.4 MiB, then 2.8 MiB: past 2 MiB after the second, so the third and fourth do not run.
      expect(answers.map((a) => (a.result ? 'read' : a.error?.data.details.reason))).toEqual([
        'read',
        'read',
        'response_too_large',
        'response_too_large',
      ]);
    } finally {
      await small.close();
    }
  });
});
