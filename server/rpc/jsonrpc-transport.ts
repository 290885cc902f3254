import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { codeInfo, JsonRpcError } from '../../common/codes.js';
import { Header } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import type { Principals } from '../auth/principals.js';
import { logFailure, toRpcError } from '../errors/error-handler.js';
import { fingerprint, isLegacyFingerprint, legacyFingerprint } from '../idempotency/fingerprint.js';
import { isFinal, keyMissingError } from '../idempotency/policy.js';
import { type RunOutcome, runOnce } from '../idempotency/run-once.js';
import type { IdempotencyStore, StoredResponse } from '../idempotency/store.js';
import { batchCallContext, callContext } from './call-context.js';
import type { CallContext } from './context.js';
import { settleBy } from './deadlines.js';
import { sendStored } from './http-transport.js';
import {
  deadlineBeforeStartError,
  deadlinePassedError,
  invoke,
  type MethodRegistry,
  type RegisteredMethod,
} from './registry.js';
import { utf8Text } from './unicode.js';
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
  /** Most calls in one batch: a larger one is refused whole (Invalid Request), nothing runs. */
  maxBatchCalls: number;
  /** Where keyed requests are recorded (a key covers the whole request, batch or single). */
  idempotency: IdempotencyStore;
  /** Refuse requests holding a non-idempotent call when they carry no Idempotency-Key. */
  requireIdempotencyKey: boolean;
  /** The OpenRPC document `rpc.discover` returns. */
  openrpc: () => unknown;
  /**
   * Most bytes of answers one request builds (--max-response-bytes): once a
   * batch's answers pass it, its later calls do not run and answer
   * resource_exhausted (response_too_large).
   */
  maxResponseBytes: number;
  /** Called once per executed call (metrics). */
  observe?: (method: string, code: string, seconds: number) => void;
}

/** The error of a batch's call left unrun because the answers before it are already too large. */
function responseTooLarge(limit: number): RpcError {
  return new RpcError({
    code: 'resource_exhausted',
    message: `the answers of this batch's earlier calls passed ${limit} bytes (--max-response-bytes): this call did not run; send it in another request`,
    details: { reason: 'response_too_large', limitBytes: limit },
  });
}

const failure = (id: Id, code: number, message: string, data?: unknown): JsonRpcResponse =>
  data === undefined
    ? { jsonrpc: '2.0', id, error: { code, message } }
    : { jsonrpc: '2.0', id, error: { code, message, data } };

/**
 * -32600 for a message that is not a JSON-RPC 2.0 request: the message says
 * what is wrong and `data` is the contract's error body naming the member.
 */
function invalidRequest(id: Id, problem: string, field?: string): JsonRpcResponse {
  const error = new RpcError({
    code: 'invalid_argument',
    message: `Invalid Request: ${problem}`,
    details: field === undefined ? { reason: 'invalid_request' } : { reason: 'invalid_request', field },
  });
  return failure(id, JsonRpcError.InvalidRequest, error.message, error.toBody());
}

/** What is wrong with a request object's members, and which; undefined when they are well formed. */
function malformed(m: Record<string, unknown>, hasId: boolean): [problem: string, field: string] | undefined {
  if (m.jsonrpc !== '2.0') return ['"jsonrpc" must be "2.0"', 'jsonrpc'];
  if (typeof m.method !== 'string') return ['"method" must be a string', 'method'];
  if (hasId && !isId(m.id)) return ['"id" must be a string, a number or null', 'id'];
  if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null))
    return ['"params" must be an object or an array', 'params'];
  return undefined;
}

/** The JSON-RPC error object of an application error: `data.code` is the contract's string code. */
export function jsonRpcError(id: Id, error: RpcError): JsonRpcResponse {
  return failure(id, codeInfo[error.code].jsonRpcCode, error.message, error.toBody());
}

const isId = (v: unknown): v is Id =>
  v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** One message of a request, checked and validated before anything runs. */
interface Message {
  /** The valid call to run; undefined when the message is answered without running. */
  readonly method: RegisteredMethod | undefined;
  readonly id: Id;
  /** Whether a response is owed (false for notifications). */
  readonly hasId: boolean;
  /** Validated params (defaults filled, unknown fields dropped). */
  readonly params: unknown;
  /** The answer of a message that does not run (protocol error, invalid params, rpc.discover). */
  readonly response: JsonRpcResponse | undefined;
}

/** The progress of one request's calls, run in order. */
interface Run {
  /** Each message's answer as JSON text (undefined: none owed). */
  readonly responses: (string | undefined)[];
  /** UTF-8 bytes of `responses` so far. */
  bytes: number;
  /** Index of the message running or next to run. */
  next: number;
  /** Whether a call succeeded or failed finally (see idempotency/policy.ts): then a keyed request is stored. */
  final: boolean;
  /** Lease-Remaining-Ms of a single call. */
  leaseRemainingMs: number | undefined;
}

/**
 * JSON-RPC 2.0 at `POST /jsonrpc`: single calls, batches (run in order), notifications
 * (run, never answered) and the specification's error codes. The body is parsed here,
 * not by Fastify, so that malformed JSON is answered with -32700 in JSON-RPC form.
 *
 * An Idempotency-Key covers the whole request: the whole response body is stored
 * and replayed. It is stored unless no call in it succeeded or failed finally
 * (every call was invalid, or failed in a way a retry may fix: see
 * idempotency/policy.ts), since then running it again is safe. Request-level
 * refusals (bad headers, a missing, reused or in-use key) answer every call of
 * the request with the same error object, and nothing runs.
 */
export function registerJsonRpcTransport(app: FastifyInstance, options: JsonRpcTransportOptions): void {
  const { registry, principals, maxDeadlineMs, observe, idempotency, maxResponseBytes } = options;

  function answered(hasId: boolean, response: JsonRpcResponse): Message {
    return {
      method: undefined,
      id: response.id,
      hasId,
      params: undefined,
      response: hasId ? response : undefined,
    };
  }

  function prepare(message: unknown): Message {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return answered(true, invalidRequest(null, 'a request must be a JSON object'));
    }
    const m = message as Record<string, unknown>;
    const hasId = Object.hasOwn(m, 'id');
    const id: Id = hasId && isId(m.id) ? m.id : null;
    const wrong = malformed(m, hasId);
    if (wrong !== undefined) return answered(true, invalidRequest(id, ...wrong));
    const name = m.method as string; // a string: malformed() checked it
    if (name === 'rpc.discover') return answered(hasId, { jsonrpc: '2.0', id, result: options.openrpc() });
    const method = registry.byName.get(name);
    if (method === undefined)
      return answered(hasId, failure(id, JsonRpcError.MethodNotFound, 'Method not found', { method: name }));
    let params = m.params ?? {};
    let invalid: RpcError | undefined;
    if (Array.isArray(params)) {
      if (params.length === 1) params = params[0];
      else {
        invalid = new RpcError({
          code: 'invalid_argument',
          message: 'params must be one object (by name), or an array holding one object',
          details: { reason: 'invalid_params' },
        });
      }
    }
    if (invalid === undefined && !method.validate(params)) invalid = validationError(method.validate.errors);
    if (invalid !== undefined) {
      observe?.(method.fullName, invalid.code, 0);
      return answered(hasId, jsonRpcError(id, invalid));
    }
    return { method, id, hasId, params, response: undefined };
  }

  function settled(
    run: Run,
    message: Message,
    ctx: CallContext,
    started: number,
    result: JsonRpcResponse,
    code: string,
  ) {
    place(run, message.hasId ? result : undefined);
    run.leaseRemainingMs = ctx.leaseRemainingMs;
    run.next++;
    observe?.((message.method as RegisteredMethod).fullName, code, (performance.now() - started) / 1000);
  }

  /**
   * A call that ran. Its result is shaped by the method's response schema; a
   * result that does not fit it (an implementation's bug) answers this call
   * with an internal error, and the batch's other calls still run and answer.
   * The call did run, so the answer is final either way.
   */
  function succeeded(run: Run, message: Message, ctx: CallContext, started: number, result: unknown): void {
    run.final = true;
    let shaped: unknown;
    try {
      shaped = (message.method as RegisteredMethod).project(result);
    } catch (error) {
      failed(run, message, ctx, started, error);
      return;
    }
    settled(run, message, ctx, started, { jsonrpc: '2.0', id: message.id, result: shaped }, 'ok');
  }

  function failed(run: Run, message: Message, ctx: CallContext, started: number, error: unknown): void {
    const rpcError = toRpcError(error);
    logFailure(app.log, error, rpcError, { method: message.method?.fullName, principal: ctx.principal });
    if (isFinal(rpcError)) run.final = true;
    settled(run, message, ctx, started, jsonRpcError(message.id, rpcError), rpcError.code);
  }

  /** Records the answer of message `run.next` (not advancing). */
  function place(run: Run, response: JsonRpcResponse | undefined): void {
    const text = textOf(response);
    run.responses[run.next] = text;
    if (text !== undefined) run.bytes += Buffer.byteLength(text);
  }

  /** Runs the calls from `run.next` on, synchronously until one returns a promise. */
  function step(run: Run, messages: readonly Message[], base: CallContext): void | Promise<void> {
    while (run.next < messages.length) {
      const message = messages[run.next] as Message;
      if (message.method === undefined) {
        place(run, message.response);
        run.next++;
        continue;
      }
      if (run.bytes > maxResponseBytes && message.hasId) {
        place(run, jsonRpcError(message.id, responseTooLarge(maxResponseBytes)));
        run.next++;
        continue;
      }
      const ctx = batchCallContext(base);
      const started = performance.now();
      let out: unknown;
      try {
        out = invoke(message.method, message.params, ctx);
      } catch (error) {
        failed(run, message, ctx, started, error);
        continue;
      }
      if (out instanceof Promise) {
        return out
          .then(
            (result: unknown) => succeeded(run, message, ctx, started, result),
            (error: unknown) => failed(run, message, ctx, started, error),
          )
          .then(() => step(run, messages, base));
      }
      succeeded(run, message, ctx, started, out);
    }
  }

  function execute(
    run: Run,
    messages: readonly Message[],
    base: CallContext,
    batch: boolean,
  ): RunOutcome | Promise<RunOutcome> {
    const outcome = (): RunOutcome => ({
      response: responseOf(run.responses, batch, run.leaseRemainingMs),
      final: run.final,
    });
    const running = step(run, messages, base);
    return running === undefined ? outcome() : running.then(outcome);
  }

  /** The answer when the deadline passes mid-request: finished calls as they are, the rest deadline_exceeded. */
  function lateResponse(run: Run, messages: readonly Message[], batch: boolean): StoredResponse {
    const responses = messages.map((message, i) => {
      if (i < run.next) return run.responses[i];
      if (message.method === undefined || !message.hasId) return textOf(message.response);
      return textOf(
        jsonRpcError(message.id, i === run.next ? deadlinePassedError() : deadlineBeforeStartError()),
      );
    });
    return responseOf(responses, batch, undefined);
  }

  /** Answers every call of a refused request with `error`; nothing runs. */
  function refuse(
    reply: FastifyReply,
    messages: readonly Message[],
    batch: boolean,
    error: RpcError,
  ): FastifyReply {
    const responses = messages.map((m) =>
      textOf(m.method !== undefined && m.hasId ? jsonRpcError(m.id, error) : m.response),
    );
    if (error.retryAfterSeconds !== undefined)
      reply.header(Header.RetryAfter, String(error.retryAfterSeconds));
    return sendStored(reply, responseOf(responses, batch, undefined), false);
  }

  function handle(request: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<FastifyReply> {
    const principal = principals.resolve(request.headers.authorization);
    if (request.body === notUtf8Body)
      return reply.send(failure(null, JsonRpcError.ParseError, 'Parse error: the body is not valid UTF-8'));
    let payload: unknown;
    try {
      payload = JSON.parse(String(request.body ?? ''));
    } catch {
      return reply.send(failure(null, JsonRpcError.ParseError, 'Parse error'));
    }
    const batch = Array.isArray(payload);
    if (batch && (payload as unknown[]).length === 0)
      return reply.send(failure(null, JsonRpcError.InvalidRequest, 'Invalid Request: empty batch'));
    if (batch && (payload as unknown[]).length > options.maxBatchCalls) {
      const message = `Invalid Request: a batch holds at most ${options.maxBatchCalls} calls (--max-batch-calls)`;
      return reply.send(failure(null, JsonRpcError.InvalidRequest, message));
    }
    const messages = (batch ? (payload as unknown[]) : [payload]).map(prepare);
    let base: CallContext;
    try {
      base = callContext(principal, request.headers, maxDeadlineMs, request.raw.rawHeaders);
    } catch (error) {
      return refuse(reply, messages, batch, toRpcError(error));
    }
    const key = base.idempotencyKey;
    if (key === undefined && options.requireIdempotencyKey) {
      const unkeyed = messages.find((m) => m.method !== undefined && !m.method.method.idempotent)?.method;
      if (unkeyed !== undefined) return refuse(reply, messages, batch, keyMissingError(unkeyed.fullName));
    }
    const run: Run = { responses: [], bytes: 0, next: 0, final: false, leaseRemainingMs: undefined };
    const late = () => ({ response: lateResponse(run, messages, batch), replayed: false });

    if (key === undefined) {
      const outcome = execute(run, messages, base, batch);
      if (!(outcome instanceof Promise)) return sendStored(reply, outcome.response, false);
      return settleBy<{ response: StoredResponse }>(outcome, base.deadline, late).then((o) =>
        sendStored(reply, o.response, false),
      );
    }
    const refused = (error: unknown) => refuse(reply, messages, batch, toRpcError(error));
    try {
      const answer = runOnce(idempotency, {
        scope: base.principal,
        key,
        fingerprint: fingerprint('jsonrpc', '', fingerprinted(messages, batch)),
        deadline: base.deadline,
        run: () => execute(run, messages, base, batch),
        // execute gives the outcome itself and maps every call's error into it.
        outcome: (result) => result as RunOutcome,
        failure: (error) => {
          throw error;
        },
        late,
        legacyFingerprint: (stored) => olderFingerprint(stored, payload),
      });
      if (!(answer instanceof Promise)) return sendStored(reply, answer.response, answer.replayed);
      return answer.then((a) => sendStored(reply, a.response, a.replayed), refused);
    } catch (error) {
      return refused(error);
    }
  }

  app.register(async (scope) => {
    // Parse here, so that bad JSON is a JSON-RPC parse error (-32700), not an HTTP 400.
    scope.removeAllContentTypeParsers();
    // Bytes that are not UTF-8 are not JSON text: a parse error, not U+FFFD in a name.
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body: Buffer, done) =>
      done(null, utf8Text(body) ?? notUtf8Body),
    );
    scope.post('/jsonrpc', { config: { rpcMethod: 'jsonrpc' } }, handle);
  });
}

/**
 * What a keyed request's fingerprint covers: each message as the server reads
 * it, a call by its id, method and validated params (unknown members and
 * fields left out, as a retry may differ in them), a message answered without
 * running by its id and error. The raw payload could be nested thousands of
 * levels deep in a member nothing reads.
 */
function fingerprinted(messages: readonly Message[], batch: boolean): unknown {
  return [
    batch,
    messages.map((m) => {
      if (m.method !== undefined) return [m.hasId, m.id, m.method.fullName, m.params];
      const r = m.response;
      return [m.hasId, m.id, r === undefined ? null : 'error' in r ? r.error : 'result'];
    }),
  ];
}

/**
 * A request's fingerprint in the older form a record may hold: the first
 * (SHA-256, 32 characters), or the raw payload's (16 characters, before
 * {@link fingerprinted}; records live 24 h by default, so a retry across the
 * upgrade still replays). Undefined when the payload cannot be walked (nested
 * too deep: no record of it can exist).
 */
function olderFingerprint(stored: string, payload: unknown): string | undefined {
  try {
    return isLegacyFingerprint(stored)
      ? legacyFingerprint('jsonrpc', '', payload)
      : fingerprint('jsonrpc', '', payload);
  } catch {
    return undefined;
  }
}

/** What the body parser hands over for bytes that are not UTF-8. */
const notUtf8Body = Symbol('not UTF-8');

/** The HTTP response of a request's JSON-RPC responses: one object, an array, or 204 when none is owed. */
function responseOf(
  responses: readonly (string | undefined)[],
  batch: boolean,
  leaseRemainingMs: number | undefined,
): StoredResponse {
  if (!batch) {
    const single = responses[0];
    return single === undefined
      ? { status: 204, body: '', leaseRemainingMs }
      : { status: 200, body: single, leaseRemainingMs };
  }
  const owed = responses.filter((r) => r !== undefined);
  return owed.length === 0
    ? { status: 204, body: '', leaseRemainingMs: undefined }
    : { status: 200, body: `[${owed.join(',')}]`, leaseRemainingMs: undefined };
}

const textOf = (response: JsonRpcResponse | undefined): string | undefined =>
  response === undefined ? undefined : JSON.stringify(response);
