import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Header } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import type { Principals } from '../auth/principals.js';
import { sendError } from '../errors/error-handler.js';
import { callContext } from './call-context.js';
import type { CallContext } from './context.js';
import { invoke, type MethodRegistry, type RegisteredMethod } from './registry.js';

/** What the per-method transport needs. */
export interface HttpTransportOptions {
  registry: MethodRegistry;
  principals: Principals;
  maxDeadlineMs: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `Service.Method` of an RPC route (metrics label). */
    rpcMethod?: string;
  }
}

function finish(reply: FastifyReply, ctx: CallContext, result: unknown): FastifyReply {
  if (ctx.leaseRemainingMs !== undefined) reply.header(Header.LeaseRemainingMs, String(ctx.leaseRemainingMs));
  return reply.send(result);
}

/** One `POST /v1/{Service}/{Method}` route per method, validated and serialised by the method's schemas. */
export function registerHttpTransport(app: FastifyInstance, options: HttpTransportOptions): void {
  const { registry, principals, maxDeadlineMs } = options;
  for (const method of registry.byName.values()) {
    app.post(method.path, {
      schema: {
        body: { $ref: method.requestRef },
        response: { 200: { $ref: method.responseRef } },
      },
      config: { rpcMethod: method.fullName },
      handler: (request: FastifyRequest, reply: FastifyReply) => {
        const ctx = callContext(principals.resolve(request.headers.authorization), request.headers, maxDeadlineMs);
        const out = invoke(method, request.body, ctx);
        if (out instanceof Promise) return out.then((result) => finish(reply, ctx, result));
        return finish(reply, ctx, out);
      },
    });
  }

  const knownPaths = new Set(['/jsonrpc', ...[...registry.byName.values()].map((m: RegisteredMethod) => m.path)]);
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    if (knownPaths.has(url)) {
      reply.header('allow', 'POST');
      return sendError(
        reply,
        new RpcError({
          code: 'unimplemented',
          message: `${request.method} is not allowed here: use POST`,
          details: { reason: 'method_not_allowed' },
          httpStatus: 405,
        }),
      );
    }
    if (url.startsWith('/v1/')) {
      return sendError(
        reply,
        new RpcError({
          code: 'unimplemented',
          message: `no such method: ${url.slice(4).replace('/', '.')}`,
          details: { reason: 'unknown_method' },
          httpStatus: 404,
        }),
      );
    }
    return sendError(reply, new RpcError({ code: 'not_found', message: `no such page: ${url}`, details: { reason: 'unknown_path' } }));
  });
}
