import { randomBytes } from 'node:crypto';
import type { ServerOptions as HttpServerOptions, Server } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { DocumentInfo } from '../codegen/documents/info.js';
import { buildOpenApiDocument } from '../codegen/documents/openapi.js';
import { buildOpenRpcDocument } from '../codegen/documents/openrpc.js';
import { createAjv } from '../common/ajv.js';
import { Header } from '../common/headers.js';
import { RpcError } from '../common/rpc-error.js';
import type { ServiceDefinitions } from '../common/service-table.js';
import { schemaBundle, services } from '../generated/index.js';
import { registerAuthentication } from './auth/authenticate.js';
import { Principals } from './auth/principals.js';
import { type Clock, systemClock } from './clock/clock.js';
import { registerDocs } from './docs/docs-plugin.js';
import { clientErrorHandler } from './errors/client-errors.js';
import { registerErrorHandler, sendError, toRpcError } from './errors/error-handler.js';
import { HandleTable } from './handles/handle-table.js';
import { MemoryIdempotencyStore } from './idempotency/memory-store.js';
import type { IdempotencyStore } from './idempotency/store.js';
import { sweepPeriodically } from './idempotency/sweeper.js';
import { LeaseTable } from './leases/lease-table.js';
import { Metrics } from './metrics/metrics.js';
import { checkOptions, defaultServerOptions, type ServerOptions } from './options.js';
import { noDurabilityLog } from './redo-log/durability-log.js';
import { DurableIdempotencyStore } from './redo-log/durable-idempotency-store.js';
import { holdRepliesUntilLogged, openServerLog, restoreServerState } from './redo-log/server-state.js';
import { registerHttpTransport } from './rpc/http-transport.js';
import { registerJsonRpcTransport } from './rpc/jsonrpc-transport.js';
import { MethodRegistry } from './rpc/registry.js';
import { notUtf8, utf8Text } from './rpc/unicode.js';
import { Sandbox } from './sandbox/sandbox.js';
import { directoriesService } from './services/directories.js';
import type { FileState } from './services/file-state.js';
import { filesService } from './services/files.js';
import { leasesService } from './services/leases.js';

/** A user's own generated services with their implementations, served beside the built-in ones. */
export interface ExtraServices {
  definitions: ServiceDefinitions;
  /** Implementations keyed by wire service name (`Greeter`), as the generated `Implementations` interface says. */
  implementations: Record<string, object>;
}

/** What `buildServer` takes: any server option, plus injected parts. */
export interface BuildOptions extends Partial<ServerOptions> {
  /** Time source (tests pass a ManualClock). */
  clock?: Clock;
  /** More services to serve (from `leasegate gen` on a user's schemas). */
  services?: ExtraServices[];
  /**
   * Whether to serve the built-in Directories, Files and Leases services
   * (default true). With false, only `services` are served, documented and
   * validated (the root folder is still made: handles and leases live there).
   */
  builtinServices?: boolean;
  /** Title, version and description of the served OpenAPI and OpenRPC documents (/docs). */
  docs?: Pick<DocumentInfo, 'title' | 'version' | 'description'>;
  /** Idempotency store (default: in memory, bounded by the idempotency options). */
  idempotencyStore?: IdempotencyStore;
}

/** The built-in services' definitions (generated from schemas/). */
export const builtinDefinitions: ServiceDefinitions = { services, schemas: schemaBundle };

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's live state: handles, leases and metrics. */
    leasegate: FileState & { metrics: Metrics; options: ServerOptions };
  }
  interface FastifyReply {
    /** The contract code this reply carries (metrics). */
    rpcCode: string;
  }
}

/** Per-process random prefix of request ids; a counter makes each unique (a UUID per request cost 1 µs). */
const requestIdPrefix = randomBytes(6).toString('base64url');
let requestCount = 0;
const nextRequestId = (): string => `${requestIdPrefix}-${(++requestCount).toString(36)}`;

/**
 * Builds a ready-to-listen leasegate app: both transports, docs, health and
 * metrics. It never listens; the CLI (or a test) calls `listen`.
 */
export async function buildServer(build: BuildOptions = {}): Promise<FastifyInstance> {
  const {
    clock = systemClock,
    services: extra = [],
    idempotencyStore,
    builtinServices = true,
    docs = {},
    ...given
  } = build;
  const options: ServerOptions = { ...defaultServerOptions, ...stripUndefined(given) };
  checkOptions(options);

  const app = Fastify({
    logger: { level: options.logLevel },
    bodyLimit: options.bodyLimit,
    // Fastify 5's default is 0 (no limit): a client that stalls mid-request would hold its socket forever.
    requestTimeout: options.requestTimeoutMs,
    http: requestTimeouts(options.requestTimeoutMs),
    // Per-request lines come from the onResponse hook below, at debug level: info stays quiet under load.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: Header.RequestId,
    genReqId: nextRequestId,
    // A request that arrives on a connection still open while closing is served (Fastify's 503 body is not
    // the contract's), and Fastify's answer to it says Connection: close; see registerShutdown.
    return503OnClosing: false,
    // A JSON key "__proto__" or "constructor.prototype" is dropped like any unknown field (Fastify's
    // default refused the body as malformed JSON, which it is not).
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    // A URL the router cannot decode gets the contract's error body, not Fastify's.
    frameworkErrors: (error, request, reply) =>
      sendError(reply, toRpcError(error, request.routeOptions.bodyLimit)),
    clientErrorHandler,
  });

  if (!builtinServices && extra.length === 0)
    throw new Error('builtinServices: false leaves nothing to serve: pass your own in services');
  const definitions = [...(builtinServices ? [builtinDefinitions] : []), ...extra.map((e) => e.definitions)];
  const merged = mergeDefinitions(definitions); // before anything opens: it may refuse a clash
  const ajv = createAjv(definitions.map((d) => d.schemas));
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  for (const d of definitions) app.addSchema(d.schemas as never);

  const root = await Sandbox.create(options.root);
  const principals = await Principals.load(root, options.tokens);
  // With a state directory, recovery (which redoes logged writes) runs before anything else touches the files.
  const opened =
    options.stateDir === undefined || options.stateDir === '' // '' as on the CLI: no redo log
      ? undefined
      : await openServerLog({
          stateDir: options.stateDir,
          root: root.realRoot,
          fsync: options.fsync,
          batchMs: options.fsyncBatchMs,
          clock,
        });
  // What the closures below keep: the log, not `opened`, whose recovered state (a JS object per
  // idempotency record: 312 MiB of heap at 10^6 records) is let go once restored.
  const redoLog = opened?.log;
  const log = redoLog ?? noDurabilityLog;
  const leases = new LeaseTable({
    clock,
    defaultTtlMs: options.leaseDefaultTtlMs,
    minTtlMs: options.leaseMinTtlMs,
    maxTtlMs: options.leaseMaxTtlMs,
    maxPerPrincipal: options.maxLeasesPerPrincipal,
    log,
  });
  const handles = new HandleTable({
    clock,
    leases,
    maxDescriptors: options.maxDescriptors,
    maxPerPrincipal: options.maxHandlesPerPrincipal,
    log,
  });
  const state: FileState = { clock, leases, handles };
  const metrics = new Metrics(state);
  app.decorate('leasegate', { ...state, metrics, options });
  app.decorateReply('rpcCode', 'ok');

  const registry = new MethodRegistry(ajv);
  if (builtinServices) {
    registry.add(builtinDefinitions, {
      Directories: directoriesService(log),
      Files: filesService(state),
      Leases: leasesService(state),
    });
  }
  for (const e of extra) registry.add(e.definitions, e.implementations);

  const openapi = buildOpenApiDocument(merged, docs) as Record<string, unknown>;
  const openrpc = buildOpenRpcDocument(merged, docs) as Record<string, unknown>;

  registerErrorHandler(app);
  const shutdown = registerShutdown(app, options.shutdownGraceMs);
  // Any body on an RPC route is read as JSON, so that `curl -d '{...}'` works without a Content-Type header.
  // text/plain too: it is what fetch sends for a string body, and Fastify's own text parser would win over '*'.
  // Bytes that are not UTF-8 are refused, not decoded to U+FFFD (two names would name one file).
  app.removeContentTypeParser(['text/plain', 'application/json']);
  const parseJson = app.getDefaultJsonParser('remove', 'remove');
  const parseUtf8Json = (
    request: FastifyRequest,
    body: Buffer,
    done: (error: Error | null, value?: unknown) => void,
  ) => {
    const text = utf8Text(body);
    if (text === undefined) done(notUtf8());
    else parseJson(request, text, done);
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseUtf8Json);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, parseUtf8Json);

  if (options.rateLimit > 0) {
    await app.register(rateLimit, {
      max: options.rateLimit,
      timeWindow: 1000,
      keyGenerator: rateLimitKey(principals),
      allowList: (request) => !request.url.startsWith('/v1/') && !request.url.startsWith('/jsonrpc'),
      errorResponseBuilder: (_request, context) =>
        new RpcError({
          code: 'resource_exhausted',
          message: `rate limit: at most ${context.max} requests per second`,
          details: { reason: 'rate_limited' },
          retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
        }),
    });
  }

  registerAuthentication(app, principals);

  const debugLogs = ['debug', 'trace'].includes(options.logLevel);
  app.addHook('onResponse', (request, reply, done) => {
    const method = request.routeOptions.config.rpcMethod;
    if (method !== undefined && method !== 'jsonrpc') {
      metrics.observe(method, reply.statusCode === 200 ? 'ok' : reply.rpcCode, reply.elapsedTime / 1000);
    }
    if (debugLogs)
      request.log.debug(
        { method: method ?? request.url, status: reply.statusCode, ms: reply.elapsedTime },
        'request done',
      );
    done();
  });

  const memoryStore = () =>
    new MemoryIdempotencyStore({
      clock,
      retentionMs: options.idempotencyRetentionMs,
      maxEntries: options.idempotencyMaxEntries,
      maxBytes: options.idempotencyMaxBytes,
    });
  // A store given by the caller is used as it is; the built-in one is made durable by the redo log.
  const durableStore =
    redoLog && idempotencyStore === undefined
      ? new DurableIdempotencyStore(memoryStore(), redoLog, clock)
      : undefined;
  const idempotency = idempotencyStore ?? durableStore ?? memoryStore();
  metrics.watchIdempotency(idempotency);
  if (opened !== undefined) {
    restoreServerState(opened.log, opened.recovered, { clock, leases, handles, idempotency: durableStore });
    app.log.info(
      { recovery: opened.recovered.stats, leases: leases.size, handles: handles.size },
      'redo log recovered',
    );
    holdRepliesUntilLogged(app, opened.log);
  }
  const keys = { idempotency, requireIdempotencyKey: options.requireIdempotencyKey };
  registerHttpTransport(app, { registry, principals, maxDeadlineMs: options.maxDeadlineMs, ...keys });
  registerJsonRpcTransport(app, {
    registry,
    principals,
    maxDeadlineMs: options.maxDeadlineMs,
    maxBatchCalls: options.maxBatchCalls,
    maxResponseBytes: options.maxResponseBytes,
    ...keys,
    openrpc: () => openrpc,
    observe: (method, code, seconds) => metrics.observe(method, code, seconds),
  });
  await registerDocs(app, { openapi, openrpc });

  // 503 while shutting down or while the redo log cannot take writes (its last write failed, or its
  // writer gave up), so that a load balancer stops sending here and monitoring sees why.
  app.get('/healthz', { schema: { hide: true } }, (_request, reply) => {
    const health = redoLog?.health ?? 'none';
    const status = shutdown.closing
      ? 'shutting_down'
      : health === 'failing' || health === 'broken'
        ? `redo_log_${health}`
        : 'ok';
    return reply
      .code(status === 'ok' ? 200 : 503)
      .send({ status, redoLog: health, openHandles: handles.size, activeLeases: leases.size });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.redirect('/docs'));

  leases.start();
  const stopSweeping = sweepPeriodically(idempotency);
  app.addHook('onClose', async () => {
    stopSweeping();
    // The checkpoint first: it keeps the leases and handles that shutdown then closes in memory only.
    await redoLog
      ?.close()
      .catch((error: unknown) => app.log.error({ err: error }, 'shutdown checkpoint failed'));
    leases.close();
    handles.closeAll();
  });
  return app;
}

/**
 * The rate limit's bucket: the caller's principal, resolved as the
 * transports resolve it, so that `bearer t`, `Bearer  t` and another token of
 * the same principal share one (keyed on the raw header, each got a fresh
 * bucket). Without tokens, or with a missing or unknown token, the client's
 * address: a made-up header must not buy a fresh bucket either.
 */
function rateLimitKey(principals: Principals): (request: FastifyRequest) => string {
  return (request) => {
    if (principals.authenticates) {
      try {
        return `principal:${principals.resolve(request.headers.authorization).name}`;
      } catch {
        // Unauthenticated: counted by address below (the transport then answers 401).
      }
    }
    return `ip:${request.ip}`;
  };
}

/** Whether closing has begun (/healthz). */
function registerShutdown(app: FastifyInstance, graceMs: number): { readonly closing: boolean } {
  const state = { closing: false };
  app.addHook('preClose', (done) => {
    state.closing = true;
    done();
  });
  drainOnClose(app, app.server, graceMs);
  return state;
}

/**
 * What shutdown (`app.close()`) does to the connections of `server`: the
 * app's own (which Fastify closes) or a second listener of it, the CLI's Unix
 * socket (`listener`: closed here, and the app's onClose hooks, such as the
 * shutdown checkpoint registered earlier, wait for it). Node closes the
 * connections idle when closing starts; one whose request is in flight would
 * then idle for the keep-alive timeout (72 s) after its answer, delaying exit:
 * so the timeout drops to 1 ms and it closes right after its answer. (Done on
 * the server rather than by a per-request hook that adds `Connection: close`
 * once closing: two such hooks cost every call ~6 000 instructions, 4 %,
 * callgrind at 16 connections.) A request that arrives on a connection still
 * open is served, and Fastify's answer says `Connection: close`. After
 * `graceMs` the connections still open are closed, so that the onClose hooks
 * (the redo log's shutdown checkpoint) run before a supervisor's SIGKILL.
 */
export function drainOnClose(app: FastifyInstance, server: Server, graceMs: number, listener = false): void {
  let closed: Promise<void> = Promise.resolve();
  let grace: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    if (listener) {
      if (!server.listening) return done();
      closed = new Promise((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
    }
    server.keepAliveTimeout = 1;
    grace = setTimeout(() => {
      app.log.warn({ graceMs }, 'shutdown grace over: closing the connections still open');
      server.closeAllConnections();
    }, graceMs).unref();
    done();
  });
  app.addHook('onClose', async () => {
    await closed;
    clearTimeout(grace);
  });
}

/**
 * Node's HTTP server settings that bound how long a client may take to send
 * one request (the app's server and the CLI's Unix socket server both use
 * them). headersTimeout is kept at or below requestTimeout because Node swaps
 * the two when it is larger, which left a stalled body its 60 s headers
 * default. Node looks for expired requests every connectionsCheckingInterval
 * (30 s by default, which would double a 30 s timeout), so here every second,
 * or as often as the timeout itself when it is shorter.
 */
export function requestTimeouts(
  requestTimeoutMs: number,
): Pick<HttpServerOptions, 'requestTimeout' | 'headersTimeout' | 'connectionsCheckingInterval'> {
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs),
  };
}

/**
 * The built-in and the user's services as one document's worth (the served
 * OpenAPI and OpenRPC documents have one namespace of services and of
 * schemas). A service name or a schema name used twice would hide the first
 * from the docs (and a service from the typed client), so it is refused,
 * naming both bundles; the same schema given twice, word for word, is fine.
 */
function mergeDefinitions(list: readonly ServiceDefinitions[]): ServiceDefinitions {
  if (list.length === 1) return list[0] as ServiceDefinitions;
  const services: Record<string, ServiceDefinitions['services'][string]> = {};
  const definitions: Record<string, object> = {};
  const serviceFrom = new Map<string, string>();
  const definitionFrom = new Map<string, string>();
  for (const d of list) {
    const from = d.schemas.$id;
    for (const [name, service] of Object.entries(d.services)) {
      const first = serviceFrom.get(name);
      if (first !== undefined)
        throw new Error(`service ${name} of ${from} clashes with service ${name} of ${first}: rename one`);
      serviceFrom.set(name, from);
      services[name] = service;
    }
    for (const [name, schema] of Object.entries(d.schemas.definitions)) {
      const first = definitionFrom.get(name);
      if (first !== undefined && !isDeepStrictEqual(definitions[name], schema))
        throw new Error(
          `schema ${name} of ${from} clashes with a different schema ${name} of ${first} ` +
            '(the served docs have one namespace of schemas): rename one',
        );
      definitionFrom.set(name, first ?? from);
      definitions[name] = schema;
    }
  }
  return { services, schemas: { $id: list[0]?.schemas.$id ?? 'leasegate.json', definitions } };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
