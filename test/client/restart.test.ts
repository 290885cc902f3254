/**
 * The client's defaults ride out a server's crash and restart: a print sent
 * while the server is down is retried until the restarted server answers, and
 * lands once, in order. With the earlier defaults (5 attempts from 50 ms, a
 * 10-token throttle) it failed with unavailable after ~0.8 s.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient, type LeasegateClient } from '../../client/index.js';
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js';

let dir: string;
let server: ServerProcess | undefined;
let client: LeasegateClient | undefined;

const serverArgs = (port: number) => [
  '--port',
  String(port),
  '--root',
  join(dir, 'root'),
  '--state-dir',
  join(dir, 'state'),
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-restart-'));
});
afterAll(async () => {
  await client?.close();
  server?.child.kill('SIGKILL');
  await server?.exit;
  await rm(dir, { recursive: true, force: true });
});

it('retries a print across kill -9 and a restart with its default policy, and it lands once', async () => {
  server = await startServerProcess(serverArgs(0));
  const { port } = server;
  client = createClient({ baseUrl: server.url });
  const file = await client.files.remoteOpen({ path: 'log.txt', mode: 'append', create: true });
  await client.files.remotePrint({ handle: file.handle, data: 'one\n' });

  server.child.kill('SIGKILL');
  await server.exit;
  const started = performance.now();
  const during = client.files.remotePrint({ handle: file.handle, data: 'two\n' });
  server = await startServerProcess(serverArgs(port));
  const restartedMs = performance.now() - started;

  await expect(during).resolves.toMatchObject({ bytesWritten: 4 });
  await client.files.remotePrint({ handle: file.handle, data: 'three\n' });
  expect(await readFile(join(dir, 'root', 'log.txt'), 'utf8')).toBe('one\ntwo\nthree\n');
  // The server was really away for a while (a restart through tsx takes a second or more).
  expect(restartedMs).toBeGreaterThan(300);
});
