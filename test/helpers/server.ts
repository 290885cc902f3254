/**
 * The shared server fixture of the tests: a real leasegate server on TCP port 0
 * (and, when asked, a Unix socket) over a temporary root folder, with helpers that call it over both
 * transports and remember every reply, so a test file can check that no reply
 * ever names the server's absolute root path.
 */
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import type { TokenEntry } from '../../server/auth/principals.js';
import { type BuildOptions, buildServer } from '../../server/index.js';

/** One reply as a test sees it. */
export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON (undefined when empty or not JSON). */
  readonly body: unknown;
  /** The body as text. */
  readonly text: string;
}

/** A contract error as either transport reports it, normalised for table-driven assertions. */
export interface CallOutcome {
  /** True when the call succeeded. */
  readonly ok: boolean;
  /** The response object on success. */
  readonly result: Record<string, unknown>;
  /** On failure: the contract's string code (`not_found`, ...). */
  readonly code: string | undefined;
  /** On failure: `details.reason`. */
  readonly reason: string | undefined;
  /** On failure: `details.field`. */
  readonly field: string | undefined;
  /** On failure: the error message. */
  readonly message: string | undefined;
  /** On failure: `details` (empty when the error has none). */
  readonly details: Record<string, unknown>;
  /** HTTP status (per-method transport) or the JSON-RPC error number. */
  readonly status: number;
  /** The HTTP status of the reply, on either transport. */
  readonly httpStatus: number;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** The two transports of the contract. */
export type Transport = 'http' | 'jsonrpc';
export const transports: readonly Transport[] = ['http', 'jsonrpc'];

/** A running server and helpers to call it. */
export interface TestServer {
  readonly app: FastifyInstance;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The Unix socket the same app also serves (with `unixSocket: true`). */
  readonly socketPath: string | undefined;
  /** The served root folder (its real path). */
  readonly root: string;
  /** The temporary folder holding root and state (removed by close). */
  readonly dir: string;
  /** Every reply body seen through these helpers, for leak checks. */
  readonly seen: string[];
  /** Sends any HTTP request to the server; the reply is recorded. */
  send(
    method: string,
    path: string,
    body?: string | Buffer,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  /** `POST /v1/{Service}/{Method}` with a JSON body. */
  post(method: string, body: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** `POST /jsonrpc` with a raw JSON-RPC payload (object, batch array, or text). */
  jsonrpc(payload: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** Calls `Service.Method` over one transport and normalises the outcome. */
  call(
    transport: Transport,
    method: string,
    params: unknown,
    headers?: Record<string, string>,
  ): Promise<CallOutcome>;
  /** Like call, but throws unless it succeeded; returns the response object. */
  ok(
    transport: Transport,
    method: string,
    params: unknown,
    headers?: Record<string, string>,
  ): Promise<Record<string, unknown>>;
  /** Replies that contain the absolute root (or temp folder) path: should always be empty. */
  leaks(): string[];
  close(): Promise<void>;
}

let rpcId = 0;

/**
 * Starts a server on 127.0.0.1:0 with a fresh temporary root; options override the defaults.
 * `tokenTable`: the tokens file's contents, written into the server's temporary folder.
 */
export async function startTestServer(
  options: Omit<BuildOptions, 'root'> & {
    root?: string;
    unixSocket?: boolean;
    tokenTable?: Record<string, TokenEntry>;
  } = {},
): Promise<TestServer> {
  const { unixSocket, tokenTable, ...build } = options;
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'leasegate-test-')));
  if (tokenTable !== undefined) {
    build.tokens = join(dir, 'tokens.json');
    await writeFile(build.tokens, JSON.stringify(tokenTable));
  }
  const root = join(dir, 'root');
  const app = await buildServer({ root, stateDir: join(dir, 'state'), logLevel: 'silent', ...build });
  await app.listen({ host: '127.0.0.1', port: 0 });
  // Beside TCP, the same routes on a Unix socket (as `leasegate serve --socket` with --port does).
  const socketPath = unixSocket === true ? join(dir, 'leasegate.sock') : undefined;
  const socketServer =
    socketPath === undefined ? undefined : createServer((req, res) => app.routing(req, res));
  if (socketServer !== undefined) {
    await new Promise<void>((resolve) => socketServer.listen(socketPath, resolve));
  }
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const seen: string[] = [];

  const send: TestServer['send'] = async (method, path, body, headers = {}) => {
    const res = await request(`${url}${path}`, { method: method as 'GET', body, headers });
    const text = await res.body.text();
    seen.push(text);
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, headers: res.headers, body: parsed, text };
  };
  const post: TestServer['post'] = (method, body, headers = {}) =>
    send('POST', `/v1/${method.replace('.', '/')}`, JSON.stringify(body), {
      'content-type': 'application/json',
      ...headers,
    });
  const jsonrpc: TestServer['jsonrpc'] = (payload, headers = {}) =>
    send('POST', '/jsonrpc', typeof payload === 'string' ? payload : JSON.stringify(payload), {
      'content-type': 'application/json',
      ...headers,
    });

  const call: TestServer['call'] = async (transport, method, params, headers) => {
    if (transport === 'http') {
      const r = await post(method, params, headers);
      const b = (r.body ?? {}) as Record<string, unknown>;
      const details = (b.details ?? {}) as Record<string, unknown>;
      return r.status === 200
        ? outcome(true, b, undefined, {}, undefined, r.status, r)
        : outcome(false, {}, b.code as string, details, b.message as string, r.status, r);
    }
    const id = ++rpcId;
    const r = await jsonrpc({ jsonrpc: '2.0', id, method, params }, headers);
    const b = r.body as { id: unknown; result?: Record<string, unknown>; error?: Record<string, unknown> };
    // id null: the request failed before any call ran (authentication, limits).
    const requestLevel = b?.id === null && b.error !== undefined;
    if (b?.id !== id && !requestLevel)
      throw new Error(`JSON-RPC reply has id ${String(b?.id)}, expected ${id}: ${r.text}`);
    if (b.error === undefined) return outcome(true, b.result ?? {}, undefined, {}, undefined, 200, r);
    const data = (b.error.data ?? {}) as Record<string, unknown>;
    const details = (data.details ?? {}) as Record<string, unknown>;
    return outcome(
      false,
      {},
      data.code as string,
      details,
      b.error.message as string,
      b.error.code as number,
      r,
    );
  };

  const ok: TestServer['ok'] = async (transport, method, params, headers) => {
    const r = await call(transport, method, params, headers);
    if (!r.ok)
      throw new Error(`${method} over ${transport} failed: ${r.code} ${r.reason ?? ''} ${r.message ?? ''}`);
    return r.result;
  };

  return {
    app,
    url,
    socketPath,
    root,
    dir,
    seen,
    send,
    post,
    jsonrpc,
    call,
    ok,
    leaks: () => seen.filter((text) => text.includes(dir)),
    async close() {
      if (socketServer?.listening) {
        const closed = new Promise((resolve) => socketServer.close(resolve));
        socketServer.closeAllConnections();
        await closed;
      }
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function outcome(
  ok: boolean,
  result: Record<string, unknown>,
  code: string | undefined,
  details: Record<string, unknown>,
  message: string | undefined,
  status: number,
  reply: Reply,
): CallOutcome {
  return {
    ok,
    result,
    code,
    reason: details.reason as string | undefined,
    field: details.field as string | undefined,
    message,
    details,
    status,
    httpStatus: reply.status,
    headers: reply.headers,
  };
}
