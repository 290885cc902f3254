import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { stringifyOpenApiYaml } from '../../codegen/documents/openapi.js';

/** The documents a server serves about the services it hosts. */
export interface ServedDocuments {
  openapi: Record<string, unknown>;
  openrpc: Record<string, unknown>;
}

/**
 * `GET /openapi.json`, `/openapi.yaml`, `/openrpc.json` and the interactive
 * reference at `/docs` (Swagger UI, its assets served from the installed
 * package: no CDN, works offline).
 */
export async function registerDocs(app: FastifyInstance, documents: ServedDocuments): Promise<void> {
  // The same serialiser as npm run gen's openapi.yaml: the served text is the checked-in file's, but for its banner line.
  const yaml = stringifyOpenApiYaml(documents.openapi as never);
  const json = JSON.stringify(documents.openapi);
  const openrpc = JSON.stringify(documents.openrpc);
  app.get('/openapi.json', { schema: { hide: true } }, (_req, reply) =>
    reply.type('application/json').send(json),
  );
  app.get('/openapi.yaml', { schema: { hide: true } }, (_req, reply) =>
    reply.type('application/yaml').send(yaml),
  );
  app.get('/openrpc.json', { schema: { hide: true } }, (_req, reply) =>
    reply.type('application/json').send(openrpc),
  );

  await app.register(swagger, { mode: 'static', specification: { document: documents.openapi as never } });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // BaseLayout: the reference without Swagger's "Explore" bar, which would invite loading other documents.
    uiConfig: {
      docExpansion: 'list',
      deepLinking: true,
      tryItOutEnabled: true,
      validatorUrl: null,
      layout: 'BaseLayout',
    },
    theme: { title: 'leasegate API reference' },
    staticCSP: true,
    // "Try it out" must call the server that serves the page, whatever its host and port: the
    // document's own servers entry names the default address only.
    transformSpecification: (document) => ({
      ...document,
      servers: [{ url: '/', description: 'this server' }],
    }),
  });
}
