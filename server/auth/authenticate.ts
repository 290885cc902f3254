import type { FastifyInstance } from 'fastify';
import type { Principals } from './principals.js';

/**
 * With tokens, refuses an RPC request without a valid one (401) as soon as its
 * headers are in, before its body is read, parsed and validated: a client
 * without a token gets 401 rather than a 400 about its body, and cannot make
 * the server read and parse bodies up to --body-limit. The transports resolve
 * the principal again from the same header (a Map lookup). Without tokens
 * every request is the anonymous principal's, and no hook runs.
 */
export function registerAuthentication(app: FastifyInstance, principals: Principals): void {
  if (!principals.authenticates) return;
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config?.rpcMethod === undefined) return done();
    try {
      principals.resolve(request.headers.authorization);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
}
