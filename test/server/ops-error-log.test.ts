/**
 * How failures are logged, read from a real server process's log: a call
 * past its deadline (504, the client's doing) is a warn line with its code and
 * reason and no stack, not an error with one; a refused request (no valid
 * token, a read-only token writing) is a warn line naming who and why; other
 * 4xx answers are not logged.
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

/** Bearer tokens of the server: one full, one read-only. */
const full = { authorization: 'Bearer full-token' };
const readOnly = { authorization: 'Bearer reader-token' };

/** A server with the tests' Slow service (it cannot come from `leasegate serve`), logging at warn. */
const script = (root: string, tokens: string) => `
import { buildServer } from ${JSON.stringify(pathToFileURL(join(repo, 'server/index.ts')).href)};
import { slowService } from ${JSON.stringify(pathToFileURL(join(repo, 'test/server/idempotency-fixtures.ts')).href)};
const app = await buildServer({ root: ${JSON.stringify(root)}, tokens: ${JSON.stringify(tokens)}, logLevel: 'warn', services: [slowService(new Map())] });
await app.listen({ host: '127.0.0.1', port: 0 });
process.stderr.write('port ' + app.server.address().port + '\\n');
`;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-log-'));
  const file = join(tmp, 'server.mjs');
  const tokens = join(tmp, 'tokens.json');
  await writeFile(
    tokens,
    JSON.stringify({
      'full-token': { principal: 'ann' },
      'reader-token': { principal: 'rita', readOnly: true },
    }),
  );
  await writeFile(file, script(join(tmp, 'root'), tokens));
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
      headers: { ...full, 'content-type': 'application/json', 'rpc-timeout-ms': '50' },
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
      headers: { ...full, 'content-type': 'application/json', 'rpc-timeout-ms': '100' },
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

describe('a refused request', () => {
  /** The warn lines logged since `before` with message `msg`, once `count` are there. */
  async function logged(before: number, msg: string, count: number) {
    await expect
      .poll(
        () =>
          lines()
            .slice(before)
            .filter((l) => l.msg === msg).length,
      )
      .toBe(count);
    return lines()
      .slice(before)
      .filter((l) => l.msg === msg);
  }

  it('is logged at warn when its token is unknown or missing, with the address it came from', async () => {
    const before = lines().length;
    for (const headers of [{ authorization: 'Bearer wrong' }, {}] as Record<string, string>[]) {
      const r = await fetch(`${url}/v1/Directories/ListDirectory`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ path: '/' }),
      });
      expect(r.status).toBe(401);
    }
    const refused = await logged(before, 'request refused', 2);
    expect(refused[0]).toMatchObject({ level: 40, code: 'unauthenticated', reason: 'invalid_token' });
    expect(refused[1]).toMatchObject({ level: 40, code: 'unauthenticated', reason: 'missing_token' });
    expect(refused[0]?.remoteAddress).toBe('127.0.0.1');
    expect(JSON.stringify(refused)).not.toContain('wrong');
  });

  it('is logged at warn when a read-only principal writes, over either transport, naming the principal', async () => {
    const before = lines().length;
    const r = await fetch(`${url}/v1/Directories/MakeDirectory`, {
      method: 'POST',
      headers: { ...readOnly, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'nope' }),
    });
    expect(r.status).toBe(403);
    const rpc = await fetch(`${url}/jsonrpc`, {
      method: 'POST',
      headers: { ...readOnly, 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'Directories.MakeDirectory',
        params: { path: 'nope' },
      }),
    });
    expect(((await rpc.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'permission_denied',
    );
    const refused = await logged(before, 'request refused', 2);
    expect(refused[0]).toMatchObject({ level: 40, code: 'permission_denied', remoteAddress: '127.0.0.1' });
    expect(refused[1]).toMatchObject({
      level: 40,
      code: 'permission_denied',
      method: 'Directories.MakeDirectory',
      principal: 'rita',
    });
  });

  it('is not logged when it is only wrong (a 404, a bad argument)', async () => {
    const before = lines().length;
    const r = await fetch(`${url}/v1/Directories/ListDirectory`, {
      method: 'POST',
      headers: { ...full, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'missing' }),
    });
    expect(r.status).toBe(404);
    const bad = await fetch(`${url}/v1/Directories/ListDirectory`, {
      method: 'POST',
      headers: { ...full, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 7 }),
    });
    expect(bad.status).toBe(400);
    // A refusal after them shows the log has caught up, and nothing else came before it.
    await fetch(`${url}/v1/Directories/ListDirectory`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/' }),
    });
    await logged(before, 'request refused', 1);
    expect(lines().slice(before)).toHaveLength(1);
  });
});
