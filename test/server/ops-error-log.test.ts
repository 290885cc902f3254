/**
 * How failures are logged, read from a real server process's log: a call
 * past its deadline (504, the client's doing) is a warn line with its code and
 * reason and no stack, not an error with one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repo, tsxLoader } from '../helpers/server-process.js';

let tmp: string;
let child: ChildProcess;
let out = '';
let url: string;

/** A server with the tests' Slow service (it cannot come from `leasegate serve`), logging at warn. */
const script = (root: string) => `
import { buildServer } from ${JSON.stringify(pathToFileURL(join(repo, 'server/index.ts')).href)};
import { slowService } from ${JSON.stringify(pathToFileURL(join(repo, 'test/server/idempotency-fixtures.ts')).href)};
const app = await buildServer({ root: ${JSON.stringify(root)}, logLevel: 'warn', services: [slowService(new Map())] });
await app.listen({ host: '127.0.0.1', port: 0 });
process.stderr.write('port ' + app.server.address().port + '\\n');
`;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-log-'));
  const file = join(tmp, 'server.mjs');
  await writeFile(file, script(join(tmp, 'root')));
  child = spawn(process.execPath, ['--import', tsxLoader, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 20_000;
  while (!/port \d+/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no port: ${err}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  url = `http://127.0.0.1:${/port (\d+)/.exec(err)?.[1]}`;
});
afterAll(async () => {
  child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

/** The log lines printed so far, parsed. */
const lines = () =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('a call past its deadline', () => {
  it('is logged at warn with its code and reason, without a stack', async () => {
    const r = await fetch(`${url}/v1/Slow/Sleep`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'rpc-timeout-ms': '50' },
      body: JSON.stringify({ tag: 't', ms: 300 }),
    });
    expect(r.status).toBe(504);
    await expect.poll(() => lines().length).toBeGreaterThan(0);
    const failed = lines().filter((l) => l.msg === 'request failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      level: 40,
      code: 'deadline_exceeded',
      reason: 'deadline_passed_while_running',
    });
    expect(JSON.stringify(failed[0])).not.toMatch(/stack|\n\s+at /);
  });

  it('is logged the same way when it is a call of a JSON-RPC batch', async () => {
    const before = lines().length;
    // The first call outlives the request's deadline; the second then never starts (deadline passed before start).
    const r = await fetch(`${url}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'rpc-timeout-ms': '100' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'Slow.Sleep', params: { tag: 'b1', ms: 200 } },
        { jsonrpc: '2.0', id: 2, method: 'Slow.Bump', params: { tag: 'b2' } },
      ]),
    });
    expect(r.status).toBe(200);
    await expect
      .poll(
        () =>
          lines()
            .slice(before)
            .filter((l) => l.msg === 'request failed').length,
      )
      .toBe(1);
    const failed = lines()
      .slice(before)
      .filter((l) => l.msg === 'request failed');
    expect(failed[0]).toMatchObject({ level: 40, code: 'deadline_exceeded', method: 'Slow.Bump' });
    expect(JSON.stringify(failed[0])).not.toMatch(/stack|\n\s+at /);
  });
});
