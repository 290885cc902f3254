import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Header } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import type { Principals } from '../auth/principals.js';
import { sendError, toRpcError } from '../errors/error-handler.js';
import { fingerprint, isLegacyFingerprint, legacyFingerprint } from '../idempotency/fingerprint.js';
import { isFinal, keyMissingError } from '../idempotency/policy.js';
import { type KeyedAnswer, type KeyedCall, type RunOutcome, runOnce } from '../idempotency/run-once.js';
import type { IdempotencyStore, StoredResponse } from '../idempotency/store.js';
import { callContext } from './call-context.js';
import type { CallContext } from './context.js';
import { settleBy } from './deadlines.js';
import { failLate, invoke, type MethodRegistry, type RegisteredMethod } from './registry.js';

/** What the per-method transport needs. */
export interface HttpTransportOptions {
  registry: MethodRegistry;
  principals: Principals;
  maxDeadlineMs: number;
  /** Where keyed calls are recorded. */
  idempotency: IdempotencyStore;
  /** Refuse non-idempotent calls without an Idempotency-Key (400 idempotency_key_missing). */
  requireIdempotencyKey: boolean;
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

/**
 * Sends a response body that is already serialised: a keyed call's first
 * answer or its replay. Both transports send stored responses this way.
 */
export function sendStored(reply: FastifyReply, response: StoredResponse, replayed: boolean): FastifyReply {
  if (response.leaseRemainingMs !== undefined)
    reply.header(Header.LeaseRemainingMs, String(response.leaseRemainingMs));
  if (replayed) reply.header(Header.IdempotentReplayed, 'true');
  reply.code(response.status);
  if (response.status >= 400) reply.rpcCode = storedCode(response.body);
  if (response.body === '') return reply.send();
  return reply.type('application/json; charset=utf-8').send(response.body);
}

/** The error code of a stored error body (metrics label of a replayed error). */
function storedCode(body: string): string {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Sends a keyed call's answer: a failed first run goes through the error handler, like an unkeyed one. */
function sendAnswer(reply: FastifyReply, answer: KeyedAnswer): FastifyReply {
  if (answer.error !== undefined) throw answer.error;
  return sendStored(reply, answer.response, answer.replayed);
}

/**
 * A call with an Idempotency-Key on the per-method transport, as runOnce takes
 * it (see idempotency/run-once.ts): one object, no closure per call. Its
 * outcome is the route's serialisation of the result, or the error's body.
 */
class HttpKeyedCall implements KeyedCall {
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly deadline: number;
  readonly late = failLate;

  constructor(
    private readonly method: RegisteredMethod,
    private readonly body: unknown,
    private readonly ctx: CallContext,
    private readonly serialize: (result: unknown) => string,
  ) {
    this.scope = ctx.principal;
    this.key = ctx.idempotencyKey as string;
    this.fingerprint = fingerprint('http', method.fullName, body);
    this.deadline = ctx.deadline;
    ctx.answerFingerprint = this.fingerprint;
  }

  run(): unknown {
    return invoke(this.method, this.body, this.ctx);
  }

  outcome(result: unknown): RunOutcome {
    const { ctx } = this;
    return {
      response: { status: 200, body: this.serialize(result), leaseRemainingMs: ctx.leaseRemainingMs },
      final: true,
      logged: ctx.answerLogged,
    };
  }

  failure(thrown: unknown): RunOutcome {
    const error = toRpcError(thrown);
    const response = {
      status: error.httpStatus,
      body: JSON.stringify(error.toBody()),
      leaseRemainingMs: this.ctx.leaseRemainingMs,
    };
    return { response, final: isFinal(error), error };
  }

  get settlesThisTurn(): boolean {
    return this.ctx.settlesThisTurn;
  }

  legacyFingerprint(stored: string): string | undefined {
    if (!isLegacyFingerprint(stored)) return undefined;
    return legacyFingerprint('http', this.method.fullName, this.body);
  }
}

/** A call with an Idempotency-Key: run at most once, replayed after (see idempotency/run-once.ts). */
function keyedCall(
  store: IdempotencyStore,
  method: RegisteredMethod,
  body: unknown,
  ctx: CallContext,
  reply: FastifyReply,
): FastifyReply | Promise<FastifyReply> {
  const serialize =
    (reply.getSerializationFunction('200') as ((result: unknown) => string) | undefined) ?? JSON.stringify;
  const answer = runOnce(store, new HttpKeyedCall(method, body, ctx, serialize));
  return answer instanceof Promise ? answer.then((a) => sendAnswer(reply, a)) : sendAnswer(reply, answer);
}

/** 405 for a known path asked with another HTTP method. */
function notAllowed(reply: FastifyReply, method: string, allow: string, use: string): FastifyReply {
  reply.header('allow', allow);
  return sendError(
    reply,
    new RpcError({
      code: 'unimplemented',
      message: `${method} is not allowed here: use ${use}`,
      details: { reason: 'method_not_allowed' },
      httpStatus: 405,
    }),
  );
}

/** One `POST /v1/{Service}/{Method}` route per method, validated and serialised by the method's schemas. */
export function registerHttpTransport(app: FastifyInstance, options: HttpTransportOptions): void {
  const { registry, principals, maxDeadlineMs, idempotency } = options;
  for (const method of registry.byName.values()) {
    const keyRequired = options.requireIdempotencyKey && !method.method.idempotent;
    app.post(method.path, {
      schema: {
        body: { $ref: method.requestRef },
        response: { 200: { $ref: method.responseRef } },
      },
      // The registry's validator, compiled once for both transports (the route's schema stays for Fastify's docs).
      validatorCompiler: () => method.validate,
      config: { rpcMethod: method.fullName },
      handler: (request: FastifyRequest, reply: FastifyReply) => {
        const ctx = callContext(
          principals.resolve(request.headers.authorization),
          request.headers,
          maxDeadlineMs,
          request.raw.rawHeaders,
        );
        if (ctx.idempotencyKey !== undefined) return keyedCall(idempotency, method, request.body, ctx, reply);
        if (keyRequired) throw keyMissingError(method.fullName);
        // The hot path: RemotePrint's promise settles within this turn (its print batch), so it is not raced.
        const out = invoke(method, request.body, ctx);
        if (!(out instanceof Promise)) return finish(reply, ctx, out);
        const answered = ctx.settlesThisTurn ? out : settleBy(out, ctx.deadline, failLate);
        return answered.then((result) => finish(reply, ctx, result));
      },
    });
  }

  const knownPaths = new Set([
    '/jsonrpc',
    ...[...registry.byName.values()].map((m: RegisteredMethod) => m.path),
  ]);
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    if (knownPaths.has(url)) return notAllowed(reply, request.method, 'POST', 'POST');
    if (request.method !== 'GET' && request.method !== 'HEAD' && app.hasRoute({ method: 'GET', url }))
      return notAllowed(reply, request.method, 'GET, HEAD', 'GET');
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
    return sendError(
      reply,
      new RpcError({
        code: 'not_found',
        message: `no such page: ${url}`,
        details: { reason: 'unknown_path' },
      }),
    );
  });
}
