/**
 * GET /healthz reports the redo log: 503 while its last write failed (a full
 * disk, here a write(2) that fails with ENOSPC), 200 again once a write goes
 * through.
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await s.close();
});

const health = async () => {
  const r = await s.send('GET', '/healthz');
  return { status: r.status, body: r.body as { status: string; redoLog: string } };
};

describe('/healthz and the redo log', () => {
  it('says ok, then redo_log_failing while writes fail, then ok once one goes through', async () => {
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok', redoLog: 'ok' } });
    vi.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    });
    // Opening a handle is logged before it is answered.
    const refused = await s.call('http', 'Files.RemoteOpen', {
      path: 'while-full.txt',
      mode: 'write',
      create: true,
    });
    expect([refused.code, refused.reason]).toEqual(['unavailable', 'redo_log_unavailable']);
    expect(await health()).toMatchObject({
      status: 503,
      body: { status: 'redo_log_failing', redoLog: 'failing' },
    });
    vi.restoreAllMocks();
    await s.ok('http', 'Files.RemoteOpen', { path: 'after-full.txt', mode: 'write', create: true });
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok', redoLog: 'ok' } });
  });

  it("says redoLog none for a server built with stateDir '' (no redo log, as on the CLI)", async () => {
    const bare = await startTestServer({ stateDir: '' });
    try {
      const r = await bare.send('GET', '/healthz');
      expect([r.status, (r.body as { redoLog: string }).redoLog]).toEqual([200, 'none']);
    } finally {
      await bare.close();
    }
  });
});
