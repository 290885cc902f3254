/**
 * The seed's question: what happens if the client crashes, does the server
 * still have a file open? A real child process opens 200 handles through the
 * typed client, which keeps their leases alive; while it lives they stay open
 * past several TTLs; after SIGKILL the server's handles and its descriptors
 * under the root (read from /proc) go to zero within TTL + 1 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { descriptorsUnder } from '../../bench/proc-stats.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { repo, tsxLoader } from '../helpers/server-process.js';

const childScript = join(repo, 'test/fixtures/leases/crash-child.ts');
const handleCount = 200;
const ttlMs = 1_500;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let s: TestServer;
let child: ChildProcess | undefined;

beforeAll(async () => {
  s = await startTestServer({ leaseMinTtlMs: 500 });
  await mkdir(join(s.root, 'crash'));
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await s.close();
});

/** Starts the client child and resolves once it has opened every handle. */
function startClient(): Promise<ChildProcess> {
  const proc = spawn(
    process.execPath,
    ['--import', tsxLoader, childScript, s.url, `${handleCount}`, `${ttlMs}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        if (out.startsWith(`ready ${handleCount} ${handleCount}`)) resolve(proc);
        else reject(new Error(`child said: ${out} ${err}`));
      }
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${err}`)));
  });
}

const openHandles = () => s.app.leasegate.handles.size;
const descriptors = () => descriptorsUnder(s.root);

describe('a client that crashes', () => {
  it('leaves no handle and no descriptor open on the server past TTL + 1 s after SIGKILL', async () => {
    const before = openHandles();
    child = await startClient();
    expect(openHandles()).toBe(before + handleCount);
    expect(descriptors()).toBe(handleCount);

    // While the client lives, its keep-alive holds every handle open across several TTLs.
    await sleep(ttlMs * 3);
    expect(openHandles()).toBe(before + handleCount);

    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    // The last KeepAlive may have landed just before the kill: every lease ends by then + TTL.
    const deadline = killedAt + ttlMs + 1_000;
    while ((openHandles() > before || descriptors() > 0) && Date.now() < deadline) await sleep(20);
    const closedAfterMs = Date.now() - killedAt;

    expect(openHandles()).toBe(before);
    expect(descriptors()).toBe(0);
    expect(s.app.leasegate.leases.size).toBe(0);
    expect(closedAfterMs).toBeLessThanOrEqual(ttlMs + 1_000);
  }, 20_000);
});
