/**
 * `leasegate serve` as a real child process: the listening line, TCP and Unix
 * socket listeners, a clean exit 0 on SIGTERM/SIGINT, --help, LEASEGATE_*
 * environment variables, the non-loopback guard, and exit 2 on bad options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveNodeFlags } from '../../cli/node-flags.js';
import { optionDefinitions } from '../../server/options.js';
import { type LeasegateRun, repo, spawnLeasegate, tsxLoader } from '../helpers/server-process.js';

let tmp: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'leasegate-cli-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

/** A running `leasegate` child: its output so far and how it ended. */
type Run = LeasegateRun;

/** Spawns `leasegate ARGS` from the sources (tsx), in `cwd`, with extra environment variables. */
function leasegate(args: string[], env: Record<string, string> = {}, cwd = tmp): Run {
  const run = spawnLeasegate(args, env, cwd);
  children.add(run.child);
  run.exit.then(() => children.delete(run.child));
  return run;
}

/** Waits until the child printed its listening line(s); returns the TCP URL and/or socket path. */
async function listening(
  run: Run,
  want: { tcp: boolean; socket: boolean },
): Promise<{ url?: string; socket?: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = run.out();
    const tcp = /leasegate listening on (http:\/\/127\.0\.0\.1:\d+) \(docs: \1\/docs\)/.exec(out);
    const unix = /leasegate listening on unix:(\S+) /.exec(out);
    if ((!want.tcp || tcp) && (!want.socket || unix)) return { url: tcp?.[1], socket: unix?.[1] };
    if (run.child.exitCode !== null) throw new Error(`leasegate exited early: ${run.out()}\n${run.err()}`);
    if (Date.now() > deadline) throw new Error(`no listening line: ${run.out()}\n${run.err()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const stat0 = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/Directories/Stat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: '{"path":"/"}',
  });

/** The status of GET /healthz over a Unix socket. */
async function healthOverSocket(socket: string): Promise<number> {
  const agent = new Agent({ connect: { socketPath: socket } });
  try {
    const r = await request('http://localhost/healthz', { dispatcher: agent });
    await r.body.dump();
    return r.statusCode;
  } finally {
    await agent.close();
  }
}

describe('leasegate serve', () => {
  it('prints the listening line, serves, creates root and state folders, and exits 0 on SIGTERM', async () => {
    const root = join(tmp, 'root-a');
    const state = join(tmp, 'state-a');
    const run = leasegate(['serve', '--port', '0', '--root', root, '--state-dir', state]);
    const { url } = await listening(run, { tcp: true, socket: false });
    const r = await stat0(url as string);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ isDirectory: true });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await stat(root)).isDirectory()).toBe(true);
    expect((await stat(state)).isDirectory()).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('runs without a redo log when --state-dir is empty', async () => {
    const cwd = join(tmp, 'no-state');
    await mkdir(cwd);
    const run = leasegate(['serve', '--port', '0', '--root', 'files', '--state-dir', ''], {}, cwd);
    const { url } = await listening(run, { tcp: true, socket: false });
    expect((await stat0(url as string)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(await readdir(cwd)).toEqual(['files']);
  });

  it('exits 1 with a message, not a stack, when the state directory is in use by another server', async () => {
    const state = join(tmp, 'state-locked');
    const first = leasegate(['serve', '--port', '0', '--root', join(tmp, 'root-l'), '--state-dir', state]);
    await listening(first, { tcp: true, socket: false });
    const second = leasegate(['serve', '--port', '0', '--root', join(tmp, 'root-l'), '--state-dir', state]);
    expect((await second.exit).code).toBe(1);
    expect(second.err()).toMatch(/leasegate serve: state directory .* is in use by process \d+/);
    expect(second.err()).not.toMatch(/\n\s+at /);
    first.child.kill('SIGTERM');
    expect(await first.exit).toEqual({ code: 0, signal: null });
  });

  it.each(['SIGINT', 'SIGHUP'] as const)('exits 0 on %s too', async (signal) => {
    const run = leasegate([
      'serve',
      '--port',
      '0',
      '--root',
      join(tmp, `root-${signal}`),
      '--state-dir',
      join(tmp, `state-${signal}`),
    ]);
    await listening(run, { tcp: true, socket: false });
    run.child.kill(signal);
    // Not killed by the signal (Node's default for SIGHUP): stopped, exit code 0.
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('exits 1 naming the folder when the root or the state directory is a file', async () => {
    const file = join(tmp, 'a-file');
    await writeFile(file, 'x');
    const root = leasegate(['serve', '--port', '0', '--root', file, '--state-dir', '']);
    expect((await root.exit).code).toBe(1);
    expect(root.err()).toContain(
      `leasegate serve: the served root ${file} is a file (or lies under one), not a folder`,
    );
    const state = leasegate(['serve', '--port', '0', '--root', join(tmp, 'root-f'), '--state-dir', file]);
    expect((await state.exit).code).toBe(1);
    expect(state.err()).toContain(`leasegate serve: the state directory ${file} is a file`);
  });

  it('serves only the Unix socket when given --socket alone', async () => {
    const socket = join(tmp, 'only.sock');
    const run = leasegate([
      'serve',
      '--socket',
      socket,
      '--root',
      join(tmp, 'root-c'),
      '--state-dir',
      join(tmp, 'state-c'),
    ]);
    const where = await listening(run, { tcp: false, socket: true });
    expect(where.socket).toBe(socket);
    expect(run.out()).not.toMatch(/listening on http:/);
    const agent = new Agent({ connect: { socketPath: socket } });
    try {
      const r = await request('http://localhost/v1/Directories/Stat', {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: '{"path":"/"}',
      });
      expect(r.statusCode).toBe(200);
      expect(await r.body.json()).toMatchObject({ isDirectory: true });
      const rpc = await request('http://localhost/jsonrpc', {
        method: 'POST',
        dispatcher: agent,
        body: '{"jsonrpc":"2.0","id":1,"method":"Leases.Grant","params":{}}',
      });
      expect(await rpc.body.json()).toMatchObject({ id: 1, result: { lease: { ttlMs: 30_000 } } });
    } finally {
      await agent.close();
    }
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('serves TCP and the socket together with --socket and --port 0', async () => {
    const socket = join(tmp, 'both.sock');
    const run = leasegate([
      'serve',
      '--socket',
      socket,
      '--port',
      '0',
      '--root',
      join(tmp, 'root-d'),
      '--state-dir',
      join(tmp, 'state-d'),
    ]);
    const { url } = await listening(run, { tcp: true, socket: true });
    expect((await stat0(url as string)).status).toBe(200);
    expect(await healthOverSocket(socket)).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('replaces a stale socket left by a killed server, but never a file that is not a socket', async () => {
    const socket = join(tmp, 'stale.sock');
    const args = [
      'serve',
      '--socket',
      socket,
      '--root',
      join(tmp, 'root-s'),
      '--state-dir',
      join(tmp, 'state-s'),
    ];
    const killed = leasegate(args);
    await listening(killed, { tcp: false, socket: true });
    killed.child.kill('SIGKILL');
    await killed.exit;
    expect((await stat(socket)).isSocket()).toBe(true);
    const again = leasegate(args);
    await listening(again, { tcp: false, socket: true });
    again.child.kill('SIGTERM');
    expect((await again.exit).code).toBe(0);

    const plain = join(tmp, 'not-a-socket');
    await writeFile(plain, 'keep me');
    const refused = leasegate([
      'serve',
      '--socket',
      plain,
      '--root',
      join(tmp, 'root-s'),
      '--state-dir',
      join(tmp, 'state-s'),
    ]);
    expect((await refused.exit).code).toBe(1);
    expect(refused.err()).toMatch(/cannot listen/);
    expect((await stat(plain)).isFile()).toBe(true);
  });

  it('refuses a socket a running server listens on, and leaves that server serving', async () => {
    const socket = join(tmp, 'live.sock');
    const args = (n: string) => [
      'serve',
      '--socket',
      socket,
      '--root',
      join(tmp, `root-${n}`),
      '--state-dir',
      '',
    ];
    const first = leasegate(args('live1'));
    await listening(first, { tcp: false, socket: true });
    const second = leasegate(args('live2'));
    expect((await second.exit).code).toBe(1);
    expect(second.err()).toMatch(
      /cannot listen: .*live\.sock is in use by a running server: stop it, or give another --socket/,
    );
    expect(await healthOverSocket(socket)).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exit).toEqual({ code: 0, signal: null });
  });

  it('reads options from LEASEGATE_* environment variables', async () => {
    const root = join(tmp, 'root-env');
    const run = leasegate(['serve'], {
      LEASEGATE_PORT: '0',
      LEASEGATE_ROOT: root,
      LEASEGATE_STATE_DIR: join(tmp, 'state-env'),
      LEASEGATE_LEASE_DEFAULT_TTL_MS: '4321',
    });
    const { url } = await listening(run, { tcp: true, socket: false });
    const grant = await fetch(`${url}/v1/Leases/Grant`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await grant.json()).toMatchObject({ lease: { ttlMs: 4321 } });
    expect((await stat(root)).isDirectory()).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('lets a flag override its environment variable', async () => {
    const run = leasegate(
      ['serve', '--port', '0', '--root', join(tmp, 'root-f'), '--state-dir', join(tmp, 'state-f')],
      {
        LEASEGATE_PORT: '1',
      },
    );
    const { url } = await listening(run, { tcp: true, socket: false });
    expect(url).not.toMatch(/:1$/);
    run.child.kill('SIGTERM');
    expect((await run.exit).code).toBe(0);
  });

  it('refuses a non-loopback host without tokens, unless --insecure or --tokens', async () => {
    const base = [
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--root',
      join(tmp, 'root-h'),
      '--state-dir',
      join(tmp, 'state-h'),
    ];
    const refused = leasegate(base);
    expect((await refused.exit).code).toBe(2);
    expect(refused.err()).toMatch(/refusing to listen on 0\.0\.0\.0 without --tokens.*--insecure/);

    const insecure = leasegate([...base, '--insecure']);
    await expect
      .poll(() => insecure.out(), { timeout: 20_000 })
      .toMatch(/leasegate listening on http:\/\/0\.0\.0\.0:\d+/);
    insecure.child.kill('SIGTERM');
    expect((await insecure.exit).code).toBe(0);

    const tokens = join(tmp, 'tokens.json');
    await writeFile(tokens, JSON.stringify({ tok: { principal: 'alice' } }));
    const withTokens = leasegate([...base, '--tokens', tokens]);
    await expect
      .poll(() => withTokens.out(), { timeout: 20_000 })
      .toMatch(/leasegate listening on http:\/\/0\.0\.0\.0:(\d+)/);
    const port = /0\.0\.0\.0:(\d+)/.exec(withTokens.out())?.[1];
    expect((await stat0(`http://127.0.0.1:${port}`)).status).toBe(401);
    expect((await stat0(`http://127.0.0.1:${port}`, { authorization: 'Bearer tok' })).status).toBe(200);
    withTokens.child.kill('SIGTERM');
    expect((await withTokens.exit).code).toBe(0);
  });

  it.each([
    [['--port', 'abc'], /--port must be a whole number >= 0, got "abc"/],
    [['--port', '70000'], /--port must be at most 65535/],
    [['--port', '-1'], /--port must be a whole number/],
    [
      ['--log-level', 'loud'],
      /--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"/,
    ],
    [['--fsync', 'sometimes'], /--fsync must be one of always, batch, never/],
    [['--fsync-batch-ms', '0'], /--fsync-batch-ms must be between 1 and 1000/],
    [['--fsync-batch-ms', '1001'], /--fsync-batch-ms must be between 1 and 1000/],
    [['--max-batch-calls', '0'], /--max-batch-calls must be at least 1/],
    [['--request-timeout-ms', '0'], /--request-timeout-ms must be at least 1/],
    [['--max-deadline-ms', '0'], /--max-deadline-ms must be at least 100: a shorter cap fails calls/],
    [['--body-limit', '10'], /--body-limit must be at least 1024/],
    [['--max-handles-per-principal', '0'], /--max-handles-per-principal must be at least 1/],
    [['--max-leases-per-principal', '0'], /--max-leases-per-principal must be at least 1/],
    [['--idempotency-retention-ms', '0'], /--idempotency-retention-ms must be at least 1000/],
    [['--idempotency-max-entries', '0'], /--idempotency-max-entries must be at least 1/],
    [
      ['--lease-default-ttl-ms', '500'],
      /--lease-default-ttl-ms \(500\) must lie between --lease-min-ttl-ms \(1000\) and --lease-max-ttl-ms \(600000\)/,
    ],
    [['--lease-min-ttl-ms', '60000'], /--lease-default-ttl-ms \(30000\) must lie between/],
    [['--request-timeout-ms', '2147483648'], /--request-timeout-ms must be between 1 and 2147483647/],
    [['--insecure='], /--insecure must be true or false, got ""/],
    [['--shutdown-grace-ms', '2147483648'], /--shutdown-grace-ms must be at most 2147483647/],
    [['--insecure=maybe'], /--insecure must be true or false/],
    [['--body-limit', '1.5'], /--body-limit must be a whole number/],
    [
      ['--lease-min-ttl-ms', '5000', '--lease-max-ttl-ms', '1000'],
      /--lease-min-ttl-ms must not exceed --lease-max-ttl-ms/,
    ],
    [['--no-such-option'], /unknown option --no-such-option/],
    [['--root'], /--root needs a value/],
    [['stray'], /unexpected argument "stray"/],
  ])('exits 2 with a clear message for %j', async (args, message) => {
    const run = leasegate(['serve', ...args]);
    expect((await run.exit).code).toBe(2);
    expect(run.err()).toMatch(message);
    expect(run.err()).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('refuses an empty boolean variable rather than reading it as true', async () => {
    const run = leasegate(['serve', '--host', '0.0.0.0', '--port', '0'], { LEASEGATE_INSECURE: '' });
    expect((await run.exit).code).toBe(2);
    expect(run.err()).toMatch(/LEASEGATE_INSECURE: --insecure must be true or false, got ""/);
  });

  it('exits 2 naming the variable when an environment value is bad', async () => {
    const run = leasegate(['serve'], { LEASEGATE_PORT: 'eighty' });
    expect((await run.exit).code).toBe(2);
    expect(run.err()).toMatch(/LEASEGATE_PORT: --port must be a whole number/);
  });

  it('exits 2 for an unknown command, and prints usage', async () => {
    const run = leasegate(['frobnicate']);
    expect((await run.exit).code).toBe(2);
    expect(run.err()).toMatch(/unknown command "frobnicate"/);
    expect(run.err()).toMatch(/serve/);
  });
});

describe('leasegate serve --help', () => {
  it('lists every option with its default and environment variable, and exits 0', async () => {
    const run = leasegate(['serve', '--help']);
    expect((await run.exit).code).toBe(0);
    const help = run.out();
    expect(help).toMatch(/^Usage: leasegate serve/);
    for (const d of optionDefinitions) {
      const block = help.slice(help.indexOf(`--${d.flag}`));
      expect(help, d.flag).toContain(`--${d.flag}`);
      expect(block.split('\n').slice(0, 3).join('\n'), d.flag).toMatch(
        new RegExp(`Default: .+\\. Env: ${d.env}`),
      );
    }
    expect(help).toMatch(/--port <value>\n.*Default: 8080\. Env: LEASEGATE_PORT/);
    expect(help).toMatch(/--host <value>\n.*Default: 127\.0\.0\.1\./);
    expect(help).toMatch(/--root <value>\n.*Default: \.\/data\./);
    expect(help).toMatch(/--state-dir <value>\n.*Default: \.\/\.leasegate\./);
  });

  it('is also reached by `leasegate --help` for the command list', async () => {
    const run = leasegate(['--help']);
    expect((await run.exit).code).toBe(0);
    expect(run.out()).toMatch(/serve/);
    expect(run.out()).toMatch(/gen/);
  });
});

describe('node flags of leasegate serve', () => {
  it('are the same in the bin shebang, npm start and cli/node-flags.ts, and the shebang runs', async () => {
    const flags = serveNodeFlags.join(' ');
    const main = await readFile(join(repo, 'cli/main.ts'), 'utf8');
    const shebang = main.split('\n')[0] as string;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${flags}`);
    const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    expect(pkg.scripts.start).toContain(`node ${flags} dist/cli/main.js serve`);
    // What the kernel runs for the shebang: env splits the line and starts node with the flags.
    const [interpreter, ...shebangArgs] = shebang.slice(2).split(' ') as [string, ...string[]];
    const child = spawn(
      interpreter,
      [...shebangArgs, '--import', tsxLoader, join(repo, 'cli/main.ts'), 'serve', '--help'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(out).toContain('Usage: leasegate serve');
  });
});
