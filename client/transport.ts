/**
 * The HTTP transport: one undici Pool with keep-alive connections to the
 * server (TCP or a Unix domain socket), POSTing JSON. It knows nothing of
 * retries or error codes; it returns the raw reply or throws what undici threw.
 */
import { Pool } from 'undici';
import { Header } from '../common/headers.js';
import type { AttemptAbort } from './deadline.js';
import type { ResponseHeaders } from './errors.js';
import type { ResolvedTransportOptions } from './options.js';

/** A raw reply: status, headers and the body text. */
export interface TransportReply {
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly text: string;
}

/** POSTs JSON bodies to one server over a pool of keep-alive connections. */
export class HttpTransport {
  readonly #pool: Pool;
  readonly #options: ResolvedTransportOptions;
  /**
   * The headers every request carries, built once, as undici's flat list of
   * names and values. A call's own headers are appended to a copy of it; an
   * object spread of fixed and own headers (`{ ...fixed, ...own }`) made each
   * call's objects outlive scavenges and be promoted (185 bytes a call in a
   * sequential run, --trace-gc-nvp), which the list does not.
   */
  readonly #fixedHeaders: readonly string[];

  constructor(options: ResolvedTransportOptions) {
    this.#options = options;
    this.#fixedHeaders = [
      'content-type',
      'application/json',
      'accept',
      'application/json',
      ...(options.token === undefined ? [] : [Header.Authorization, `Bearer ${options.token}`]),
    ];
    this.#pool = new Pool(options.origin, {
      connections: options.connections,
      ...(options.socketPath ? { connect: { socketPath: options.socketPath } } : {}),
    });
  }

  /** The request path of a method (`/v1/Files/RemoteOpen`, after the baseUrl's path prefix). */
  methodPath(service: string, method: string): string {
    return `${this.#options.pathPrefix}/v1/${service}/${method}`;
  }

  /**
   * POSTs `body` (JSON text) to `path` with the fixed headers, the
   * Idempotency-Key and the Rpc-Timeout-Ms (each when given); resolves with
   * the whole reply, whatever its status.
   */
  async post(
    path: string,
    body: string,
    idempotencyKey: string | undefined,
    rpcTimeoutMs: string | undefined,
    signal: AttemptAbort,
  ): Promise<TransportReply> {
    const headers = this.#fixedHeaders.slice();
    if (idempotencyKey !== undefined) headers.push(Header.IdempotencyKey, idempotencyKey);
    if (rpcTimeoutMs !== undefined) headers.push(Header.RpcTimeoutMs, rpcTimeoutMs);
    const response = await this.#pool.request({
      method: 'POST',
      path,
      headers,
      body,
      signal,
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text };
  }

  /** Closes every connection once in-flight requests end. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
