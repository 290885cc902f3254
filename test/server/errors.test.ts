/**
 * Every error code of the contract that the foundation can produce, over both
 * transports: the HTTP status of the contract's map, the JSON-RPC error number
 * with `data.code`, the reason and the named field. And no error message ever
 * names the server's absolute root path.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCodes, type Code, codeInfo, JsonRpcError } from '../../common/codes.js';
import {
  type CallOutcome,
  startTestServer,
  type TestServer,
  type Transport,
  transports,
} from '../helpers/server.js';

/** The HTTP status map of the contract (shared/spec/protocol.md section 4), copied by hand on purpose. */
const contractStatus: Record<Code, number> = {
  canceled: 499,
  unknown: 500,
  internal: 500,
  data_loss: 500,
  invalid_argument: 400,
  failed_precondition: 400,
  out_of_range: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  aborted: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  unimplemented: 501,
  unavailable: 503,
  unauthenticated: 401,
};

/** Checks one failed call against the contract: code, reason, field and the transport's status. */
function expectError(
  r: CallOutcome,
  t: Transport,
  code: Code,
  reason?: string,
  field?: string,
  httpStatus = contractStatus[code],
): void {
  expect(r.ok, `expected ${code}, the call succeeded`).toBe(false);
  expect({ code: r.code, reason: r.reason, field: r.field }).toEqual({
    code,
    reason: reason ?? r.reason,
    field: field ?? r.field,
  });
  if (t === 'http') {
    expect(r.status).toBe(httpStatus);
  } else {
    expect(r.status).toBe(codeInfo[code].jsonRpcCode);
  }
  // Validation errors name the offending field in the message too.
  if (field !== undefined && code === 'invalid_argument') expect(r.message).toContain(field);
}

describe('the code table', () => {
  it('maps every code to the HTTP status of the contract', () => {
    expect(Object.fromEntries(allCodes.map((c) => [c, codeInfo[c].httpStatus]))).toEqual(contractStatus);
  });

  it('gives every code its own JSON-RPC number, in the application range or the spec’s own', () => {
    const numbers = allCodes.map((c) => codeInfo[c].jsonRpcCode);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const c of allCodes) {
      const n = codeInfo[c].jsonRpcCode;
      const inRange = n >= -32099 && n <= -32000;
      expect(inRange || n === JsonRpcError.InvalidParams || n === JsonRpcError.Internal, `${c}: ${n}`).toBe(
        true,
      );
    }
    expect(codeInfo.invalid_argument.jsonRpcCode).toBe(JsonRpcError.InvalidParams);
  });
});

describe('errors of the default server', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
    await mkdir(join(s.root, 'dir/sub'), { recursive: true });
    await writeFile(join(s.root, 'dir/file.txt'), 'text');
  });
  afterAll(async () => {
    expect(s.leaks()).toEqual([]);
    await s.close();
  });

  type Case = [
    name: string,
    method: string,
    params: (t: Transport) => Promise<object> | object,
    headers: Record<string, string>,
    code: Code,
    reason?: string,
    field?: string,
  ];
  const readHandle = async (t: Transport) =>
    (await s.ok(t, 'Files.RemoteOpen', { path: 'dir/file.txt', mode: 'read' })).handle as string;

  const cases: Case[] = [
    ['a missing field', 'Directories.Stat', () => ({}), {}, 'invalid_argument', 'missing_field', 'path'],
    [
      'a field of the wrong type',
      'Directories.Stat',
      () => ({ path: 42 }),
      {},
      'invalid_argument',
      'invalid_field',
      'path',
    ],
    [
      'an empty path',
      'Directories.Stat',
      () => ({ path: '' }),
      {},
      'invalid_argument',
      'invalid_field',
      'path',
    ],
    [
      'a value outside an enum',
      'Files.RemoteOpen',
      () => ({ path: 'x', mode: 'delete' }),
      {},
      'invalid_argument',
      undefined,
      'mode',
    ],
    [
      'a number out of range',
      'Leases.Grant',
      () => ({ ttlMs: 0 }),
      {},
      'invalid_argument',
      undefined,
      'ttlMs',
    ],
    [
      'a boolean given as a string',
      'Directories.Remove',
      () => ({ path: 'x', recursive: 'yes' }),
      {},
      'invalid_argument',
      undefined,
      'recursive',
    ],
    [
      'a path with a lone surrogate (it would become U+FFFD on disk)',
      'Directories.MakeDirectory',
      () => ({ path: 'dir/\ud800' }),
      {},
      'invalid_argument',
      'invalid_unicode',
      'path',
    ],
    [
      'printed data with a lone surrogate',
      'Files.RemotePrint',
      async (t) => ({
        handle: (
          await s.ok(t, 'Files.RemoteOpen', { path: `dir/surrogate-${t}.txt`, mode: 'append', create: true })
        ).handle,
        data: 'x\udfff',
      }),
      {},
      'invalid_argument',
      'invalid_unicode',
      'data',
    ],
    [
      'a name too long for the file system',
      'Directories.Stat',
      () => ({ path: 'n'.repeat(300) }),
      {},
      'invalid_argument',
      'name_too_long',
    ],
    [
      'a malformed Rpc-Timeout-Ms',
      'Directories.Stat',
      () => ({ path: '/' }),
      { 'rpc-timeout-ms': 'soon' },
      'invalid_argument',
      'invalid_header',
      'Rpc-Timeout-Ms',
    ],
    [
      'Rpc-Timeout-Ms of 0',
      'Directories.Stat',
      () => ({ path: '/' }),
      { 'rpc-timeout-ms': '0' },
      'invalid_argument',
      'invalid_header',
      'Rpc-Timeout-Ms',
    ],
    [
      'a negative Rpc-Timeout-Ms',
      'Directories.Stat',
      () => ({ path: '/' }),
      { 'rpc-timeout-ms': '-5' },
      'invalid_argument',
      'invalid_header',
      'Rpc-Timeout-Ms',
    ],
    [
      'a fractional Rpc-Timeout-Ms',
      'Directories.Stat',
      () => ({ path: '/' }),
      { 'rpc-timeout-ms': '1.5' },
      'invalid_argument',
      'invalid_header',
      'Rpc-Timeout-Ms',
    ],
    [
      'an Idempotency-Key over 255 characters',
      'Directories.MakeDirectory',
      () => ({ path: 'k' }),
      { 'idempotency-key': 'k'.repeat(256) },
      'invalid_argument',
      'invalid_idempotency_key',
      'Idempotency-Key',
    ],
    ['a missing file', 'Directories.Stat', () => ({ path: 'dir/nothing' }), {}, 'not_found', 'no_such_file'],
    [
      'an unknown handle',
      'Files.RemoteRead',
      () => ({ handle: 'h_unknown' }),
      {},
      'not_found',
      'handle_not_found',
      'handle',
    ],
    [
      'an unknown lease',
      'Leases.KeepAlive',
      () => ({ leaseId: 'l_unknown' }),
      {},
      'not_found',
      'lease_not_found',
      'leaseId',
    ],
    [
      'a folder that exists',
      'Directories.MakeDirectory',
      () => ({ path: 'dir' }),
      {},
      'already_exists',
      'file_exists',
    ],
    [
      'an exclusive create of an existing file',
      'Files.RemoteOpen',
      () => ({ path: 'dir/file.txt', mode: 'write', create: true, exclusive: true }),
      {},
      'already_exists',
    ],
    [
      'a path above the root',
      'Directories.Stat',
      () => ({ path: '../etc/passwd' }),
      {},
      'permission_denied',
      'path_outside_root',
      'path',
    ],
    [
      'removing the root',
      'Directories.Remove',
      () => ({ path: '/' }),
      {},
      'permission_denied',
      'root_not_removable',
    ],
    [
      'opening a folder',
      'Files.RemoteOpen',
      () => ({ path: 'dir', mode: 'read' }),
      {},
      'failed_precondition',
      'is_a_directory',
    ],
    [
      'listing a file',
      'Directories.ListDirectory',
      () => ({ path: 'dir/file.txt' }),
      {},
      'failed_precondition',
      'not_a_directory',
    ],
    [
      'removing a non-empty folder',
      'Directories.Remove',
      () => ({ path: 'dir' }),
      {},
      'failed_precondition',
      'directory_not_empty',
    ],
    [
      'printing to a read handle',
      'Files.RemotePrint',
      async (t) => ({ handle: await readHandle(t), data: 'x' }),
      {},
      'failed_precondition',
      'handle_not_writable',
      'handle',
    ],
    [
      'bad base64',
      'Files.RemotePrint',
      async (t) => ({ handle: await readHandle(t), data: '*', encoding: 'base64' }),
      {},
      'invalid_argument',
      'invalid_base64',
      'data',
    ],
  ];

  describe.each(transports)('over %s', (t) => {
    it.each(cases)('%s: %s answers %s', async (_name, method, params, headers, code, reason, field) => {
      const r = await s.call(t, method, await params(t), headers);
      expectError(r, t, code, reason, field);
    });

    it('sends the contract error body: code, message and details only', async () => {
      const r = await s.call(t, 'Directories.Stat', { path: 'dir/nothing' });
      expect(r.message).toBe('no such file or directory: /dir/nothing');
      const raw =
        t === 'http'
          ? (await s.post('Directories.Stat', { path: 'dir/nothing' })).body
          : (
              (
                await s.jsonrpc({
                  jsonrpc: '2.0',
                  id: 'e',
                  method: 'Directories.Stat',
                  params: { path: 'dir/nothing' },
                })
              ).body as {
                error: { data: unknown };
              }
            ).error.data;
      expect(Object.keys(raw as object).sort()).toEqual(['code', 'details', 'message']);
    });

    it('ignores unknown extra fields (forward compatibility)', async () => {
      expect(await s.ok(t, 'Directories.Stat', { path: 'dir', future: { nested: [1, 2] } })).toMatchObject({
        isDirectory: true,
      });
      const g = await s.ok(t, 'Leases.Grant', { ttlMs: 2_000, priority: 'high' });
      expect(g).toEqual({ lease: expect.objectContaining({ ttlMs: 2_000 }) });
      const listing = await s.ok(t, 'Directories.ListDirectory', {
        path: 'dir',
        filter: '*.txt',
        pageSize: 1,
      });
      expect(listing.entries).toHaveLength(1);
    });

    it('fills missing optional fields with their defaults', async () => {
      expect(((await s.ok(t, 'Leases.Grant', {})).lease as { ttlMs: number }).ttlMs).toBe(30_000);
      const noParents = await s.call(t, 'Directories.MakeDirectory', { path: `defaults-${t}/a/b` });
      expect(noParents.code).toBe('not_found');
      const r = await s.ok(t, 'Files.RemoteRead', { handle: await readHandle(t) });
      expect(r).toEqual({ data: 'text', encoding: 'utf8', offset: 0, eof: true });
    });

    it('accepts a well-formed Rpc-Timeout-Ms and Idempotency-Key', async () => {
      const headers = { 'rpc-timeout-ms': '5000', 'idempotency-key': `"key-${t}"` };
      expect((await s.call(t, 'Directories.Stat', { path: '/' }, headers)).ok).toBe(true);
    });
  });

  describe('over per-method HTTP', () => {
    it.each([
      ['/v1/Nope/Stat', 'Nope.Stat'],
      ['/v1/Directories/Nope', 'Directories.Nope'],
      ['/v1/directories/stat', 'directories.stat'],
      ['/v1/Directories', 'Directories'],
    ])('answers 404 unimplemented for the unknown method path %s', async (path, name) => {
      const r = await s.send('POST', path, '{}', { 'content-type': 'application/json' });
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 'unimplemented', details: { reason: 'unknown_method' } });
      expect((r.body as { message: string }).message).toContain(name);
    });

    it.each(['GET', 'PUT', 'DELETE', 'PATCH'])(
      'answers 405 unimplemented with Allow: POST to %s on a method path',
      async (verb) => {
        for (const path of ['/v1/Directories/Stat', '/v1/Files/RemoteOpen', '/jsonrpc']) {
          const r = await s.send(verb, path);
          expect(r.status).toBe(405);
          expect(r.headers.allow).toBe('POST');
          expect(r.body).toMatchObject({ code: 'unimplemented', details: { reason: 'method_not_allowed' } });
        }
      },
    );

    it.each(['/healthz', '/metrics', '/openapi.yaml', '/openrpc.json', '/docs'])(
      'answers 405 unimplemented with Allow: GET, HEAD to a POST on the page %s',
      async (path) => {
        const r = await s.send('POST', path, '{}', { 'content-type': 'application/json' });
        expect(r.status).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
        expect(r.body).toMatchObject({ code: 'unimplemented', details: { reason: 'method_not_allowed' } });
      },
    );

    it.each(['/v1/Directories/%E0%A4%A', '/%zz'])(
      'answers 400 invalid_argument malformed_url to %s',
      async (path) => {
        const r = await s.send('POST', path, '{}', { 'content-type': 'application/json' });
        expect(r.status).toBe(400);
        expect(r.body).toEqual({
          code: 'invalid_argument',
          message: expect.any(String),
          details: { reason: 'malformed_url' },
        });
      },
    );

    it('refuses a body that is not UTF-8 as malformed JSON, on both transports, creating nothing', async () => {
      const bad = Buffer.concat([Buffer.from('{"path":"dir/'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      const http = await s.send('POST', '/v1/Directories/MakeDirectory', bad, {
        'content-type': 'application/json',
      });
      expect([http.status, (http.body as { details: { reason: string } }).details.reason]).toEqual([
        400,
        'malformed_json',
      ]);
      const noType = await s.send('POST', '/v1/Directories/MakeDirectory', bad);
      expect(noType.status).toBe(400);
      const rpc = Buffer.concat([
        Buffer.from('{"jsonrpc":"2.0","id":1,"method":"Directories.MakeDirectory","params":{"path":"dir/'),
        Buffer.from([0xff]),
        Buffer.from('"}}'),
      ]);
      const r = await s.send('POST', '/jsonrpc', rpc, { 'content-type': 'application/json' });
      expect((r.body as { error: { code: number } }).error.code).toBe(-32700);
      expect((await s.ok('http', 'Directories.ListDirectory', { path: 'dir' })).entries).not.toContainEqual(
        expect.objectContaining({ name: expect.stringContaining('\ufffd') }),
      );
    });

    it.each([
      [
        'a malformed Content-Length',
        'POST /v1/Directories/Stat HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
        400,
        'malformed_http',
      ],
      [
        'headers over Node’s limit',
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'headers_too_large',
      ],
    ])(
      'answers %s, which Node’s parser refuses, with the contract body',
      async (_name, request, status, reason) => {
        const url = new URL(s.url);
        const socket = connect(Number(url.port), url.hostname);
        socket.write(request);
        let raw = '';
        for await (const chunk of socket) raw += String(chunk);
        expect(raw.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
        const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
        expect(body).toEqual({ code: 'invalid_argument', message: expect.any(String), details: { reason } });
      },
    );

    it('drops a "__proto__" or "constructor" member like any unknown field', async () => {
      for (const body of [
        '{"path":"dir","__proto__":{"x":1}}',
        '{"path":"dir","constructor":{"prototype":{"x":1}}}',
      ]) {
        const r = await s.send('POST', '/v1/Directories/Stat', body, { 'content-type': 'application/json' });
        expect([r.status, (r.body as { isDirectory?: boolean }).isDirectory]).toEqual([200, true]);
      }
    });

    it('answers 404 not_found for a path that is neither a method nor a document', async () => {
      const r = await s.send('GET', '/nothing/here');
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 'not_found' });
    });

    it.each([
      ['malformed JSON', '{"path": '],
      ['a JSON array', '[{"path": "/"}]'],
      ['a JSON string', '"/"'],
      ['JSON null', 'null'],
    ])('answers 400 invalid_argument to a body of %s', async (_name, body) => {
      const r = await s.send('POST', '/v1/Directories/Stat', body, { 'content-type': 'application/json' });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'invalid_argument' });
    });

    it('reads a body sent as text/plain (fetch’s default for a string body) as JSON', async () => {
      const r = await s.send('POST', '/v1/Directories/Stat', '{"path":"dir"}', {
        'content-type': 'text/plain;charset=UTF-8',
      });
      expect(r.status).toBe(200);
    });

    it('reads a body sent without a JSON Content-Type as JSON (plain curl -d)', async () => {
      const r = await s.send('POST', '/v1/Directories/Stat', '{"path":"dir"}', {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ isDirectory: true });
    });
  });

  it('never names the absolute root in an error caused by the file system', async () => {
    await symlink('/', join(s.root, 'to-host-root'));
    for (const t of transports) {
      for (const path of [
        'dir/file.txt/x',
        'to-host-root/etc',
        'n'.repeat(300),
        'dir/nothing',
        'to-host-root',
      ]) {
        const r = await s.call(t, 'Directories.Stat', { path });
        expect(r.ok).toBe(false);
        expect(r.message).not.toContain(s.root);
      }
    }
  });
});

describe('authentication and authorization (tokens file)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      tokenTable: {
        tok: { principal: 'alice' },
        ro: { principal: 'bob', readOnly: true },
        sub: { principal: 'carol', root: 'carol' },
      },
    });
    await mkdir(join(s.root, 'shared'), { recursive: true });
    await writeFile(join(s.root, 'shared/readme.txt'), 'read me');
    await mkdir(join(s.root, 'carol'), { recursive: true });
  });
  afterAll(async () => {
    expect(s.leaks()).toEqual([]);
    await s.close();
  });
  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  describe.each(transports)('over %s', (t) => {
    it.each([
      ['no Authorization header', {}, 'missing_token'],
      ['an unknown token', as('nope'), 'invalid_token'],
      ['a Basic credential', { authorization: 'Basic dG9rOg==' }, 'invalid_token'],
      ['an empty bearer', { authorization: 'Bearer ' }, 'invalid_token'],
    ])('answers 401 unauthenticated to %s', async (_name, headers, reason) => {
      const r = await s.call(t, 'Directories.Stat', { path: '/' }, headers);
      expectError(r, t, 'unauthenticated', reason);
      expect(r.httpStatus).toBe(401);
    });

    it('lets a valid token through, with any case of the scheme', async () => {
      expect((await s.call(t, 'Directories.Stat', { path: '/' }, as('tok'))).ok).toBe(true);
      expect((await s.call(t, 'Directories.Stat', { path: '/' }, { authorization: 'bearer tok' })).ok).toBe(
        true,
      );
    });

    it('lets a read-only principal read, and refuses every change with permission_denied', async () => {
      expect((await s.call(t, 'Directories.ListDirectory', { path: 'shared' }, as('ro'))).ok).toBe(true);
      const opened = await s.ok(t, 'Files.RemoteOpen', { path: 'shared/readme.txt', mode: 'read' }, as('ro'));
      expect(await s.ok(t, 'Files.RemoteRead', { handle: opened.handle }, as('ro'))).toMatchObject({
        data: 'read me',
      });
      const changes: [string, object][] = [
        ['Directories.MakeDirectory', { path: `ro-${t}` }],
        ['Directories.Remove', { path: 'shared/readme.txt' }],
        ['Files.RemoteOpen', { path: 'shared/readme.txt', mode: 'write' }],
        ['Files.RemoteOpen', { path: 'shared/readme.txt', mode: 'append' }],
        ['Files.RemoteOpen', { path: `shared/new-${t}`, mode: 'write', create: true }],
      ];
      for (const [method, params] of changes) {
        expectError(await s.call(t, method, params, as('ro')), t, 'permission_denied', 'read_only_principal');
      }
    });

    it('confines a principal with a root to its sub-folder', async () => {
      await s.ok(t, 'Directories.MakeDirectory', { path: `mine-${t}` }, as('sub'));
      const own = await s.ok(t, 'Directories.ListDirectory', { path: '/' }, as('sub'));
      expect((own.entries as { name: string }[]).map((e) => e.name)).toContain(`mine-${t}`);
      const all = await s.ok(t, 'Directories.ListDirectory', { path: 'carol' }, as('tok'));
      expect((all.entries as { name: string }[]).map((e) => e.name)).toContain(`mine-${t}`);
      // The served root's own files are above carol's root.
      expectError(
        await s.call(t, 'Directories.Stat', { path: '../shared/readme.txt' }, as('sub')),
        t,
        'permission_denied',
        'path_outside_root',
      );
      expectError(
        await s.call(t, 'Directories.Stat', { path: '/shared/readme.txt' }, as('sub')),
        t,
        'not_found',
      );
    });

    it('keeps handles and leases to the principal that made them: others get not_found', async () => {
      const opened = await s.ok(
        t,
        'Files.RemoteOpen',
        { path: 'shared/readme.txt', mode: 'read' },
        as('tok'),
      );
      const leaseId = (opened.lease as { leaseId: string }).leaseId;
      expectError(
        await s.call(t, 'Files.RemoteRead', { handle: opened.handle }, as('ro')),
        t,
        'not_found',
        'handle_not_found',
      );
      expectError(
        await s.call(t, 'Files.RemoteClose', { handle: opened.handle }, as('sub')),
        t,
        'not_found',
        'handle_not_found',
      );
      expectError(await s.call(t, 'Leases.Revoke', { leaseId }, as('ro')), t, 'not_found', 'lease_not_found');
      expect(await s.ok(t, 'Files.RemoteRead', { handle: opened.handle }, as('tok'))).toMatchObject({
        data: 'read me',
      });
    });
  });

  it('refuses a symbolic link out of a principal’s sub-root', async () => {
    await symlink(join(s.root, 'shared'), join(s.root, 'carol', 'escape'));
    for (const t of transports) {
      expectError(
        await s.call(t, 'Directories.ListDirectory', { path: 'escape' }, as('sub')),
        t,
        'permission_denied',
        'path_outside_root',
      );
      expect((await s.call(t, 'Directories.ListDirectory', { path: 'carol/escape' }, as('tok'))).ok).toBe(
        true,
      );
    }
  });

  it.each([
    ['a body its method refuses', '/v1/Directories/Stat', JSON.stringify({ path: 7 })],
    ['a body that is not JSON', '/v1/Directories/Stat', '{"path":'],
    [
      'a body over the body limit',
      '/v1/Files/RemotePrint',
      JSON.stringify({ handle: 'h', data: 'x'.repeat(2_000_000) }),
    ],
    ['a JSON-RPC body that is not JSON', '/jsonrpc', '[{'],
  ])('answers 401 before looking at %s', async (_name, path, body) => {
    const r = await s.send('POST', path, body, { 'content-type': 'application/json' });
    expect(r.status).toBe(401);
    expect(JSON.stringify(r.body)).toContain('missing_token');
  });

  it('answers a JSON-RPC batch without a token with one unauthenticated error', async () => {
    const r = await s.jsonrpc([{ jsonrpc: '2.0', id: 1, method: 'Directories.Stat', params: { path: '/' } }]);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: { code: codeInfo.unauthenticated.jsonRpcCode, data: { code: 'unauthenticated' } },
    });
  });
});

describe('limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ bodyLimit: 4_096 });
  });
  afterAll(async () => {
    expect(s.leaks()).toEqual([]);
    await s.close();
  });

  it.each(transports)('answers resource_exhausted (429) to a body over bodyLimit over %s', async (t) => {
    const r = await s.call(t, 'Directories.Stat', { path: 'x'.repeat(5_000) });
    expectError(r, t, 'resource_exhausted', 'body_too_large');
    expect(r.httpStatus).toBe(429);
    // It names the limit, and asks for no wait: waiting does not help.
    expect(r.message).toBe('request body is larger than the server accepts (4096 bytes: --body-limit)');
    expect(r.details).toMatchObject({ limitBytes: 4_096 });
    expect(r.headers['retry-after']).toBeUndefined();
    const under = await s.call(t, 'Directories.Stat', { path: 'yyyyyyyyy/'.repeat(300) });
    expect(under.code).toBe('not_found');
  });

  it('answers resource_exhausted with Retry-After past the rate limit, on both transports', async () => {
    const limited = await startTestServer({ rateLimit: 3 });
    try {
      // All at once, so that they land in one one-second window even on a slow machine.
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () => limited.call('http', 'Directories.Stat', { path: '/' })),
      );
      expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
      const refused = outcomes.filter((o) => !o.ok);
      for (const r of refused) {
        expectError(r, 'http', 'resource_exhausted', 'rate_limited');
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
      const rpc = await limited.call('jsonrpc', 'Directories.Stat', { path: '/' });
      expectError(rpc, 'jsonrpc', 'resource_exhausted', 'rate_limited');
      expect(rpc.httpStatus).toBe(429);
      // Documents and health are not rate limited.
      expect((await limited.send('GET', '/healthz')).status).toBe(200);
      expect(limited.leaks()).toEqual([]);
    } finally {
      await limited.close();
    }
  });
});
