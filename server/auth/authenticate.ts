import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { Principals } from './principals.js';

/**
 * With tokens, refuses an RPC request without a valid one (401) as soon as its
 * headers are in, before its body is read, parsed and validated: a client
 * without a token gets 401 rather than a 400 about its body, and cannot make
 * the server read and parse bodies up to --body-limit. The transports resolve
 * the principal again from the same header (a Map lookup). Without tokens
 * every request is the anonymous principal's, and no hook is added.
 *
 * The hook is the RPC routes' own, added after the rate limit's (which
 * @fastify/rate-limit also adds per route, from its own onRoute hook
 * registered before this one): a client without a token is still counted.
 */
export function registerAuthentication(app: FastifyInstance, principals: Principals): void {
  if (!principals.authenticates) return;
  const authenticate: onRequestHookHandler = (request, _reply, done) => {
    try {
      principals.resolve(request.headers.authorization);
    } catch (error) {
      return done(error as Error);
    }
    done();
  };
  app.addHook('onRoute', (route) => {
    if (route.config?.rpcMethod === undefined) return;
    const own = route.onRequest;
    route.onRequest =
      own === undefined ? [authenticate] : [...(Array.isArray(own) ? own : [own]), authenticate];
  });
}
