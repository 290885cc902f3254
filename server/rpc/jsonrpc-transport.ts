import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { codeInfo, JsonRpcError } from '../../common/codes.js';
import { Header } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import type { Principals } from '../auth/principals.js';
import { toRpcError } from '../errors/error-handler.js';
import { callContext } from './call-context.js';
import type { CallContext } from './context.js';
import { invoke, type MethodRegistry } from './registry.js';
import { validationError } from './validation.js';

type Id = string | number | null;

/** A JSON-RPC 2.0 response object. */
export type JsonRpcResponse =
  | { jsonrpc: '2.0'; id: Id; result: unknown }
  | { jsonrpc: '2.0'; id: Id; error: { code: number; message: string; data?: unknown } };

/** What the JSON-RPC transport needs. */
export interface JsonRpcTransportOptions {
  registry: MethodRegistry;
  principals: Principals;
  maxDeadlineMs: number;
  /** The OpenRPC document `rpc.discover` returns. */
  openrpc: () => unknown;
  /** Called once per executed call (metrics). */
  observe?: (method: string, code: string, seconds: number) => void;
}

const failure = (id: Id, code: number, message: string, data?: unknown): JsonRpcResponse =>
  data === undefined ? { jsonrpc: '2.0', id, error: { code, message } } : { jsonrpc: '2.0', id, error: { code, message, data } };

/** The JSON-RPC error object of an application error: `data.code` is the contract's string code. */
export function jsonRpcError(id: Id, error: RpcError): JsonRpcResponse {
  return failure(id, codeInfo[error.code].jsonRpcCode, error.message, error.toBody());
}

const isId = (v: unknown): v is Id => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/**
 * JSON-RPC 2.0 at `POST /jsonrpc`: single calls, batches (run in order), notifications
 * (run, never answered) and the specification's error codes. The body is parsed here,
 * not by Fastify, so that malformed JSON is answered with -32700 in JSON-RPC form.
 */
export function registerJsonRpcTransport(app: FastifyInstance, options: JsonRpcTransportOptions): void {
  const { registry, principals, maxDeadlineMs, observe } = options;

  async function runOne(message: unknown, ctxFor: () => CallContext): Promise<{ response?: JsonRpcResponse; ctx?: CallContext }> {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return { response: failure(null, JsonRpcError.InvalidRequest, 'Invalid Request') };
    }
    const m = message as Record<string, unknown>;
    const hasId = Object.hasOwn(m, 'id');
    const id: Id = hasId && isId(m.id) ? m.id : null;
    if (m.jsonrpc !== '2.0' || typeof m.method !== 'string' || (hasId && !isId(m.id))) {
      return { response: failure(id, JsonRpcError.InvalidRequest, 'Invalid Request') };
    }
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) {
      return { response: failure(id, JsonRpcError.InvalidRequest, 'Invalid Request: params must be an object or an array') };
    }
    const answer = (r: JsonRpcResponse): { response?: JsonRpcResponse } => (hasId ? { response: r } : {});
    if (m.method === 'rpc.discover') return answer({ jsonrpc: '2.0', id, result: options.openrpc() });
    const method = registry.byName.get(m.method);
    if (method === undefined) return answer(failure(id, JsonRpcError.MethodNotFound, 'Method not found', { method: m.method }));

    const started = performance.now();
    let code = 'ok';
    let ctx: CallContext | undefined;
    try {
      let params = m.params ?? {};
      if (Array.isArray(params)) {
        if (params.length !== 1) throw new RpcError({ code: 'invalid_argument', message: 'params must be one object (by name), or an array holding one object', details: { reason: 'invalid_params' } });
        params = params[0];
      }
      if (!method.validate(params)) throw validationError(method.validate.errors);
      ctx = ctxFor();
      const result = await invoke(method, params, ctx);
      return { ...answer({ jsonrpc: '2.0', id, result }), ctx };
    } catch (error) {
      const rpcError = toRpcError(error);
      code = rpcError.code;
      if (rpcError.httpStatus >= 500) app.log.error({ err: error, method: method.fullName }, 'call failed');
      return answer(jsonRpcError(id, rpcError));
    } finally {
      observe?.(method.fullName, code, (performance.now() - started) / 1000);
    }
  }

  app.register(async (scope) => {
    // Parse here, so that bad JSON is a JSON-RPC parse error (-32700), not an HTTP 400.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

    scope.post('/jsonrpc', { config: { rpcMethod: 'jsonrpc' } }, async (request: FastifyRequest, reply: FastifyReply) => {
      const principal = principals.resolve(request.headers.authorization);
      const ctxFor = (): CallContext => callContext(principal, request.headers, maxDeadlineMs);
      let payload: unknown;
      try {
        payload = JSON.parse(String(request.body ?? ''));
      } catch {
        return reply.send(failure(null, JsonRpcError.ParseError, 'Parse error'));
      }
      if (Array.isArray(payload)) {
        if (payload.length === 0) return reply.send(failure(null, JsonRpcError.InvalidRequest, 'Invalid Request: empty batch'));
        const responses: JsonRpcResponse[] = [];
        for (const message of payload) {
          const { response } = await runOne(message, ctxFor);
          if (response) responses.push(response);
        }
        return responses.length === 0 ? reply.code(204).send() : reply.send(responses);
      }
      const { response, ctx } = await runOne(payload, ctxFor);
      if (ctx?.leaseRemainingMs !== undefined) reply.header(Header.LeaseRemainingMs, String(ctx.leaseRemainingMs));
      return response ? reply.send(response) : reply.code(204).send();
    });
  });
}
