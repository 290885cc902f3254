/**
 * Builds the OpenAPI 3.1 document of the per-method HTTP transport
 * (`POST /v1/{Service}/{Method}`) and of `POST /jsonrpc`, from the runtime
 * service tables. Pure: the generator writes its result to openapi.yaml and a
 * running server calls it at startup for whatever services it hosts.
 */
import { stringify } from 'yaml';
import type { MethodDescriptor, ServiceDefinitions } from '../../common/service-table.js';
import type { JsonObject } from '../json.js';
import { componentSchemas } from './components.js';
import { type DocumentInfo, defaultDocumentInfo } from './info.js';
import { jsonRpcPathItem, jsonRpcTag } from './openapi-jsonrpc.js';
import {
  errorResponseName,
  errorResponses,
  errorStatuses,
  headerParameters,
  ref,
  responseHeaders,
  securitySchemes,
} from './openapi-parts.js';

/** Default `info.description` of the OpenAPI document. */
export const defaultOpenApiDescription =
  'Per-method HTTP transport: `POST /v1/{Service}/{Method}` with the request message as a JSON body, answered by 200 and the response message. The same methods are served over JSON-RPC 2.0 at `POST /jsonrpc`. Every error reply carries an ErrorBody with a code from a closed set; send an Idempotency-Key to make retries of non-idempotent methods safe.';

/** The OpenAPI 3.1.0 document for `defs` (a plain JSON object, ready for JSON or YAML). */
export function buildOpenApiDocument(defs: ServiceDefinitions, info: DocumentInfo = {}): JsonObject {
  const services = Object.values(defs.services);
  const paths: JsonObject = {};
  for (const service of services) {
    for (const method of Object.values(service.methods)) {
      paths[`/v1/${service.name}/${method.name}`] = { post: operation(service.name, method) };
    }
  }
  paths['/jsonrpc'] = jsonRpcPathItem(defs);
  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? defaultDocumentInfo.title,
      description: info.description ?? defaultOpenApiDescription,
      version: info.version ?? defaultDocumentInfo.version,
    },
    servers: [{ url: info.serverUrl ?? defaultDocumentInfo.serverUrl }],
    security: [{}, { bearerAuth: [] }],
    tags: [...services.map((s) => ({ name: s.name, description: s.description })), jsonRpcTag],
    paths,
    components: {
      schemas: componentSchemas(defs, '#/components/schemas/'),
      parameters: headerParameters(),
      headers: responseHeaders(),
      responses: errorResponses(),
      securitySchemes: securitySchemes(),
    },
  };
}

function operation(service: string, method: MethodDescriptor): JsonObject {
  const responses: JsonObject = {
    '200': {
      description: `Success: the ${method.response} message.`,
      headers: {
        'Idempotent-Replayed': ref('headers', 'IdempotentReplayed'),
        'Lease-Remaining-Ms': ref('headers', 'LeaseRemainingMs'),
      },
      content: { 'application/json': { schema: ref('schemas', method.response) } },
    },
  };
  for (const status of errorStatuses())
    responses[String(status)] = ref('responses', errorResponseName(status));
  return {
    operationId: `${service}_${method.name}`,
    summary: method.description || `${service}.${method.name}`,
    description: method.idempotent
      ? 'Idempotent: a retry is safe without an Idempotency-Key.'
      : 'Not idempotent: send an Idempotency-Key to make retries safe.',
    tags: [service],
    'x-idempotent': method.idempotent,
    parameters: [
      ref('parameters', method.idempotent ? 'IdempotencyKeyForIdempotentMethod' : 'IdempotencyKey'),
      ref('parameters', 'RpcTimeoutMs'),
    ],
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('schemas', method.request) } },
    },
    responses,
  };
}

/**
 * The document as YAML, the way openapi.yaml is written (no anchors or
 * aliases, no line folding), so a server can serve byte-equal text.
 */
export function stringifyOpenApiYaml(document: JsonObject): string {
  return stringify(document, { aliasDuplicateObjects: false, lineWidth: 0 });
}
