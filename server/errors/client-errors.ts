import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { RpcError } from '../../common/rpc-error.js';

/** Node's parser errors before a request exists: the status it would send, and our reason and message. */
function describe(code: string | undefined): [number, string, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return [408, 'request_timeout', 'the request was not received in time'];
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large', 'the request headers are too large'];
  return [400, 'malformed_http', 'the request is not valid HTTP/1.1'];
}

/**
 * Answers a request Node's HTTP parser refused (bad Content-Length, oversized
 * headers, a client too slow to send) with the contract's error body rather
 * than Fastify's, keeping Node's status, then closes the connection (Fastify's
 * `clientErrorHandler` option).
 */
export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Socket,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] = describe(error.code);
  const body = JSON.stringify(
    new RpcError({ code: 'invalid_argument', message, details: { reason } }).toBody(),
  );
  this.log.debug({ err: error }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
